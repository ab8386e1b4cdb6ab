"""The gateway's parts, and the FastAPI dependencies through which the routes reach them.

``create_app`` builds one ``Gateway`` and keeps it on the app (``attach_gateway``); a route asks for it
with a ``GatewayDep`` parameter and for its caller with ``CallerDep``. Tests that build an app of their
own replace the gateway with ``app.dependency_overrides[get_gateway]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from starlette.applications import Starlette

from reference_server.auth import Authenticator, Caller
from reference_server.batch import BatchService
from reference_server.config import ServerConfig
from reference_server.engines.base import ChatEngine, EmbedEngine
from reference_server.limits import ConcurrencyLimiter, KvBudget
from reference_server.pipeline import Template

__all__ = [
    "CallerDep",
    "Gateway",
    "GatewayDep",
    "attach_gateway",
    "gateway_of",
    "get_gateway",
    "require_caller",
]


@dataclass
class Gateway:
    """Everything a route needs."""

    config: ServerConfig
    chat: ChatEngine
    embed: EmbedEngine
    auth: Authenticator
    limiter: ConcurrencyLimiter
    kv: KvBudget
    batches: BatchService
    pipelines: dict[str, Template]


def attach_gateway(app: FastAPI, gateway: Gateway) -> None:
    """Make ``gateway`` the one ``app``'s routes are served by."""
    app.state.gateway = gateway


def gateway_of(app: Starlette) -> Gateway:
    """The gateway ``attach_gateway`` put on ``app``."""
    gateway: Gateway = app.state.gateway
    return gateway


# Async, as are the dependencies below: a plain ``def`` dependency runs in the thread pool, a hop that
# costs far more than this attribute read on every request.
async def get_gateway(request: Request) -> Gateway:
    """FastAPI dependency: the gateway of the app serving the request."""
    return gateway_of(request.app)


GatewayDep = Annotated[Gateway, Depends(get_gateway)]


async def require_caller(request: Request, gateway: GatewayDep) -> Caller:
    """FastAPI dependency: the authenticated caller, or 401 in the error envelope.

    Async on purpose: the work is a hash or an HMAC, far cheaper than a hop to the thread pool.
    """
    caller = gateway.auth.authenticate(request.headers.get("authorization"))
    # request.state writes into scope["state"], where the access log middleware reads it.
    request.state.caller_label = caller.label
    return caller


CallerDep = Annotated[Caller, Depends(require_caller)]
