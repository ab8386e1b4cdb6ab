"""``GET /health``: liveness and which engines serve, without authentication.

Unauthenticated because process supervisors and the CLI poll it before any key is at hand; it names
the engines only, nothing about keys, load or configuration.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

__all__ = ["router"]

router = APIRouter()


@router.get("/health")
async def health(request: Request) -> JSONResponse:
    gateway = request.app.state.gateway
    return JSONResponse({"status": "ok", "engines": {"chat": gateway.chat.name, "embed": gateway.embed.name}})
