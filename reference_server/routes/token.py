"""``POST /api/token``: the 42ai exchange of an API key for a 60-second task token (000, AUTH-001/010)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from reference_server.gateway import GatewayDep

__all__ = ["router"]

router = APIRouter()

# RFC 6749 5.1: a response carrying a credential must not be stored by caches on the way.
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@router.post("/api/token")
async def exchange_token(request: Request, gateway: GatewayDep) -> JSONResponse:
    """200 ``{"task_token": ...}``; 401 for a missing, malformed or unknown key; 404 in fortytwo.

    The body is optional and ignored (000 sends ``Content-Type: application/json`` and none), so it
    is never read: a stray or invalid body cannot turn a good exchange into a 400.
    """
    caller, token = gateway.auth.exchange_caller(request.headers.get("authorization"))
    request.state.caller_label = caller.label
    return JSONResponse({"task_token": token}, headers=_NO_STORE)
