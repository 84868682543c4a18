"""The FastAPI app: `create_app(settings)`; run it with `w2s serve` (or uvicorn and `app_from_env`)."""

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import Depends, FastAPI

from debate import ReplicaPool
from service.api import batches, debates, files, fine_tuning, health, models, pages, runs
from service.api.errors import ERROR_RESPONSES, install_error_handlers
from service.api.limits import BodySizeLimit, check_strings
from service.api.prometheus import ApiMetrics
from service.settings import Settings
from service.store import make_engine, make_session_factory


def app_from_env() -> FastAPI:
    """Factory for `uvicorn service.api.main:app_from_env --factory` (settings from W2S_*)."""
    return create_app(Settings())


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        app.state.settings = settings
        app.state.sessions = make_session_factory(engine)
        app.state.metrics = metrics
        metrics.watch(app.state.sessions)
        async with AsyncExitStack() as stack:
            # No strong model configured: stored runs, reports and debates are still served (read-only).
            app.state.client = app.state.readiness = None
            if settings.vllm_targets():
                pool = await stack.enter_async_context(
                    ReplicaPool(
                        settings.vllm_targets(),
                        api_key=settings.vllm_api_key or None,
                        affinity=settings.vllm_pool_affinity,
                        check_interval_s=settings.vllm_health_interval_s,
                    )
                )
                app.state.client = pool
                app.state.readiness = health.StrongModelReadiness(pool, settings.strong_model, settings.health_cache_s)
                metrics.watch_pool(pool)
            yield
        engine.dispose()

    metrics = ApiMetrics()
    app = FastAPI(
        title="debate-w2s",
        version="0.1.0",
        lifespan=lifespan,
        dependencies=[Depends(check_strings)],
        description="Debate-augmented weak-to-strong supervision. Errors: "
        '{"error": {"message", "type", "code", "param"}}.',
    )
    install_error_handlers(app)  # first: its catch-all middleware sits inside the metrics one, which counts 500s
    app.middleware("http")(metrics.middleware)
    app.add_middleware(BodySizeLimit, settings=settings)
    for module in (debates, batches, runs, files, fine_tuning, models, health, pages):
        app.include_router(module.router, responses=ERROR_RESPONSES)
    app.include_router(pages.public, responses=ERROR_RESPONSES)
    return app
