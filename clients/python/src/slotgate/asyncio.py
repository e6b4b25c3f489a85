"""The asyncio API, like redis.asyncio:

    from slotgate.asyncio import Slotgate, GameCache

    async with Slotgate(host="127.0.0.1", port=7420, ssl_ca="ca.pem", token="secret") as sg:
        await sg.set("{user:1}:name", "Ada", keyspace="session")
        cache = GameCache(sg)
        session = await cache.get_user_session("1")
"""

from __future__ import annotations

from typing import Any, Optional

from ._aio import Slotgate
from .gamecache import CacheStats, GameCache, HealthStatus, Keyspaces, KeyspaceStats
from .memory import KeyspaceConfig, MemoryBackend, MemorySlotgate

__all__ = [
    "Slotgate",
    "GameCache",
    "MemorySlotgate",
    "MemoryGameCache",
    "MemoryBackend",
    "KeyspaceConfig",
    "CacheStats",
    "KeyspaceStats",
    "HealthStatus",
    "Keyspaces",
]


class MemoryGameCache(GameCache):
    """GameCache over the in-memory fake, for game-server unit tests without
    a proxy: same TTL, lease and version semantics. Several instances built
    with the same backend share their data (like processes sharing a proxy)."""

    def __init__(self, backend: Optional[MemoryBackend] = None, **options: Any) -> None:
        super().__init__(MemorySlotgate(backend), **options)

    @property
    def backend(self) -> MemoryBackend:
        client = self.client
        assert isinstance(client, MemorySlotgate)
        return client.backend
