"""What the integration endpoints work with (the live event feed, API keys), built when the
app starts and put in the app's state: a lifespan of its own beside api/services.py's."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from litestar import Litestar

from api.api_keys import ApiKeys, KeyHasher, KeyUsage
from api.config import ApiConfig
from api.event_feed import LiveFeed
from api.services import Services
from projections.public_events import PublicEvents


def integrations(settings: ApiConfig) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """Enters after the Services' lifespan (it uses their pool and store)."""

    @asynccontextmanager
    async def run(app: Litestar) -> AsyncIterator[None]:
        services: Services = app.state.services
        feed = LiveFeed(
            services.store,
            PublicEvents(services.store),
            settings.database_url,
            capacity=settings.event_stream_buffer,
            heartbeat=settings.event_stream_heartbeat,
            max_streams=settings.event_stream_max,
        )
        usage = KeyUsage(services.pool)
        app.state.event_feed = feed
        app.state.api_keys = ApiKeys(services.store, KeyHasher(settings.secret_key), usage)
        try:
            yield
        finally:
            await feed.stop()
            await usage.stop()

    return run
