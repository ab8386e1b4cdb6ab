"""The gateway application: both documented APIs in front of a chat engine and an embedding engine."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI

from reference_server.access_log import AccessLogMiddleware
from reference_server.auth import Authenticator
from reference_server.config import ServerConfig
from reference_server.engines.base import ChatEngine, EmbedEngine
from reference_server.errors import install_error_handlers
from reference_server.limits import ConcurrencyLimiter, KvBudget
from reference_server.routes import chat, embeddings, health, models, token

__all__ = ["Gateway", "create_app"]


@dataclass
class Gateway:
    """Everything a route needs, kept on ``app.state.gateway``."""

    config: ServerConfig
    chat: ChatEngine
    embed: EmbedEngine
    auth: Authenticator
    limiter: ConcurrencyLimiter
    kv: KvBudget


def create_app(config: ServerConfig, chat_engine: ChatEngine, embed_engine: EmbedEngine) -> FastAPI:
    app = FastAPI(title="conform42 reference server", docs_url=None, redoc_url=None, openapi_url=None)
    budget = config.kv_budget_tokens if config.kv_budget_tokens is not None else chat_engine.kv_budget_tokens
    app.state.gateway = Gateway(
        config=config,
        chat=chat_engine,
        embed=embed_engine,
        auth=Authenticator.from_config(config),
        limiter=ConcurrencyLimiter(config.retry_after_429_s),
        kv=KvBudget(budget, config.retry_after_503_s),
    )
    install_error_handlers(app)
    app.add_middleware(AccessLogMiddleware)
    for router in (health.router, token.router, models.router, chat.router, embeddings.router):
        app.include_router(router)
    return app
