"""``GET /health``: liveness and which engines serve, without authentication.

Unauthenticated because process supervisors and the CLI poll it before any key is at hand; it names
the engines only, nothing about keys, load or configuration.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from reference_server.gateway import GatewayDep

__all__ = ["router"]

router = APIRouter()


@router.get("/health")
async def health(gateway: GatewayDep) -> JSONResponse:
    return JSONResponse({"status": "ok", "engines": {"chat": gateway.chat.name, "embed": gateway.embed.name}})
