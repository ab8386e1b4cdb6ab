"""POST /v1/embeddings: the chat route's admission order without the context and KV checks.

The embedding engine is a separate process with its own memory, and an embedding request generates
nothing, so only the tier concurrency limit applies (it counts this request together with the key's
chat requests, LIMIT-010).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from reference_server.gateway import CallerDep, GatewayDep
from reference_server.models import resolve_model
from reference_server.schemas import EmbeddingRequest, parse_body

__all__ = ["router"]

router = APIRouter()


@router.post("/v1/embeddings")
async def create_embedding(request: Request, gateway: GatewayDep, caller: CallerDep) -> JSONResponse:
    req = parse_body(await request.body(), request.headers.get("content-type"), EmbeddingRequest)
    resolve_model(req.model, "embed", caller.tier)
    slot = gateway.limiter.try_acquire(caller.key_id, caller.tier)
    try:
        return JSONResponse(await gateway.embed.embed(req.model_dump(exclude_none=True)))
    finally:
        slot.release()
