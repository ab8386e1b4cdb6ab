"""The gateway application: both documented APIs in front of a chat engine and an embedding engine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from reference_server.access_log import AccessLogMiddleware
from reference_server.auth import Authenticator
from reference_server.batch import BatchService
from reference_server.config import ServerConfig
from reference_server.engines.base import ChatEngine, EmbedEngine
from reference_server.errors import install_error_handlers
from reference_server.gateway import Gateway, attach_gateway, gateway_of
from reference_server.limits import ConcurrencyLimiter, KvBudget
from reference_server.models import TIER_CONCURRENCY
from reference_server.pipeline import load_templates
from reference_server.routes import batch, chat, embeddings, health, models, pipeline, token

__all__ = ["create_app"]


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Batch workers live as long as the server: started (requeueing what a killed predecessor left
    # running) before the first request, stopped after the last one.
    gateway = gateway_of(app)
    await gateway.batches.start()
    try:
        yield
    finally:
        await gateway.batches.stop()


def create_app(config: ServerConfig, chat_engine: ChatEngine, embed_engine: EmbedEngine) -> FastAPI:
    app = FastAPI(
        title="conform42 reference server",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=_lifespan,
    )
    budget = config.kv_budget_tokens if config.kv_budget_tokens is not None else chat_engine.kv_budget_tokens
    kv = KvBudget(budget, config.retry_after_503_s)
    # Batch workers per key: the tier's concurrency, a fixed cap for the unlimited tier.
    pool_sizes: dict[str, int] = {
        tier: limit if limit is not None else config.batch_unlimited_tier_workers
        for tier, limit in TIER_CONCURRENCY.items()
    }
    attach_gateway(
        app,
        Gateway(
            config=config,
            chat=chat_engine,
            embed=embed_engine,
            auth=Authenticator.from_config(config),
            limiter=ConcurrencyLimiter(config.retry_after_429_s),
            kv=kv,
            batches=BatchService(config.data_dir, chat_engine, kv, pool_sizes, config.batch_task_timeout_s),
            # Loaded (and checked) now: a broken template stops the server at start, not a caller later.
            pipelines=load_templates(config.pipeline_dir),
        ),
    )
    install_error_handlers(app)
    app.add_middleware(AccessLogMiddleware)
    for router in (
        health.router,
        token.router,
        models.router,
        chat.router,
        embeddings.router,
        batch.router,
        pipeline.router,
    ):
        app.include_router(router)
    return app
