"""GameCache: the game-domain cache API on top of a slotgate client.

The methods are those of the Node.js cache service slotgate replaces (and of
the TypeScript GameCache), in snake_case: user sessions, room state, asset
metadata, game-system templates, batches, invalidation, a cached query with
fleet-wide single fill (leases), health and statistics. Values are stored as
compact JSON (UTF-8), so services in other languages read them too.

Key layout (PROTOCOL.md section 6: one hash tag per entity, so an entity's
keys share a slot and an invalidation is pinned to one shard):

    user session        keyspace "session"     {user:<id>}:session
    room state          keyspace "room"        {room:<id>}:state
    asset metadata      keyspace "asset"       {asset:<id>}:meta
    game-system tmpl    keyspace "gamesystem"  {gamesystem:<id>}:template
    cached query        keyspace ""            {query:<key>}
    mget / mset         keyspace ""            the keys as given

TTLs are in seconds, as in the original service; None uses the defaults
below (the same as the keyspace defaults of deploy/local/slotgate.yaml).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import (
    Any,
    Awaitable,
    Callable,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Tuple,
    TypeVar,
    Union,
)

from . import _aio
from .errors import LeaseInvalid, SlotgateError, Timeout

__all__ = [
    "GameCache",
    "CacheStats",
    "KeyspaceStats",
    "HealthStatus",
    "TtlPolicy",
    "Layout",
    "encode_json",
    "decode_json",
]

T = TypeVar("T")


@dataclass(frozen=True)
class TtlPolicy:
    """Default TTLs in seconds (the original service's values)."""

    session: int = 3600
    room: int = 1800
    asset: int = 3600
    gamesystem: int = 7200
    query: int = 300


@dataclass(frozen=True)
class Layout:
    """Where each domain object lives: keyspaces and key templates."""

    session_keyspace: str = "session"
    room_keyspace: str = "room"
    asset_keyspace: str = "asset"
    gamesystem_keyspace: str = "gamesystem"
    query_keyspace: str = ""
    generic_keyspace: str = ""

    @staticmethod
    def user_tag(user_id: str) -> str:
        return "{user:" + user_id + "}"

    @staticmethod
    def room_tag(room_id: str) -> str:
        return "{room:" + room_id + "}"

    def session_key(self, user_id: str) -> str:
        return self.user_tag(user_id) + ":session"

    def room_key(self, room_id: str) -> str:
        return self.room_tag(room_id) + ":state"

    @staticmethod
    def asset_key(asset_id: str) -> str:
        return "{asset:" + asset_id + "}:meta"

    @staticmethod
    def gamesystem_key(system_id: str) -> str:
        return "{gamesystem:" + system_id + "}:template"

    @staticmethod
    def query_key(key: str) -> str:
        return "{query:" + key + "}"

    @staticmethod
    def escape_glob(text: str) -> str:
        """text with Redis glob characters escaped, for use in a pattern."""
        return "".join("\\" + c if c in "*?[]\\" else c for c in text)


@dataclass(frozen=True)
class KeyspaceStats:
    """Server counters of one keyspace ("" is reported as "default")."""

    hits: int
    misses: int
    hit_rate: float  # hits / (hits + misses); 0.0 before any read
    sets: int = 0
    lease_grants: int = 0
    lease_waits: int = 0
    invalidated: int = 0
    counters: Dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class CacheStats:
    """get_stats(): hit rate overall and per keyspace, and every counter."""

    hits: int
    misses: int
    hit_rate: float
    keyspaces: Dict[str, KeyspaceStats]
    server: Dict[str, int]


@dataclass(frozen=True)
class HealthStatus:
    """health_check(): healthy means a PING was answered."""

    healthy: bool
    latency_ms: float
    error: Optional[str] = None
    server_version: Optional[str] = None


def encode_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def decode_json(data: Optional[bytes]) -> Any:
    return None if data is None else json.loads(data)


def parse_stats(raw: Mapping[str, int]) -> CacheStats:
    """Group `keyspace.<name>.<counter>` counters by keyspace."""
    per: Dict[str, Dict[str, int]] = {}
    for name, value in raw.items():
        if name.startswith("keyspace."):
            ks, _, counter = name[len("keyspace.") :].rpartition(".")
            if ks:
                per.setdefault(ks, {})[counter] = int(value)
    keyspaces: Dict[str, KeyspaceStats] = {}
    hits = misses = 0
    for ks, c in sorted(per.items()):
        h, m = c.get("hits", 0), c.get("misses", 0)
        hits += h
        misses += m
        keyspaces[ks] = KeyspaceStats(
            hits=h,
            misses=m,
            hit_rate=h / (h + m) if h + m else 0.0,
            sets=c.get("sets", 0),
            lease_grants=c.get("lease_grants", 0),
            lease_waits=c.get("lease_waits", 0),
            invalidated=c.get("invalidated", 0),
            counters=c,
        )
    return CacheStats(
        hits=hits,
        misses=misses,
        hit_rate=hits / (hits + misses) if hits + misses else 0.0,
        keyspaces=keyspaces,
        server=dict(raw),
    )


MSetItems = Union[Mapping[str, Any], Iterable[Tuple[str, Any, Optional[int]]], Iterable[Tuple[str, Any]]]


def _mset_items(items: MSetItems, ttl_seconds: Optional[int]) -> List[Tuple[str, bytes, Optional[int]]]:
    """(key, JSON bytes, ttl_ms) for each item; an item's own TTL (seconds)
    wins over ttl_seconds."""
    out: List[Tuple[str, bytes, Optional[int]]] = []
    pairs: Iterable[Any] = items.items() if isinstance(items, Mapping) else items
    for item in pairs:
        ttl = item[2] if len(item) > 2 and item[2] is not None else ttl_seconds
        out.append((item[0], encode_json(item[1]), ttl * 1000 if ttl else None))
    return out


class GameCache:
    """The game-domain API over the asyncio client (or MemorySlotgate).

        sg = slotgate.asyncio.Slotgate(host=..., ssl_ca=..., token=...)
        cache = GameCache(sg)
        await cache.set_user_session("123", {"name": "Ada"}, ttl_seconds=3600)
        session = await cache.get_user_session("123")
    """

    def __init__(
        self,
        client: _aio.Slotgate,
        *,
        ttl: TtlPolicy = TtlPolicy(),
        layout: Layout = Layout(),
        lease_ttl_ms: int = 10000,
        query_wait_ms: int = 30000,
    ) -> None:
        self.client = client
        self.ttl = ttl
        self.layout = layout
        self.lease_ttl_ms = lease_ttl_ms
        self.query_wait_ms = query_wait_ms

    async def __aenter__(self) -> "GameCache":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        await self.client.aclose()

    # one key per entity

    async def _get(self, keyspace: str, key: str) -> Any:
        return decode_json(await self.client.get(key, keyspace=keyspace))

    async def _set(self, keyspace: str, key: str, value: Any, ttl_seconds: Optional[int], default: int) -> None:
        ttl = ttl_seconds if ttl_seconds is not None else default
        await self.client.set(key, encode_json(value), ttl_ms=ttl * 1000 if ttl else None, keyspace=keyspace)

    async def get_user_session(self, user_id: str) -> Any:
        """The session stored for user_id, or None."""
        return await self._get(self.layout.session_keyspace, self.layout.session_key(user_id))

    async def set_user_session(self, user_id: str, session: Any, ttl_seconds: Optional[int] = None) -> None:
        await self._set(
            self.layout.session_keyspace, self.layout.session_key(user_id), session, ttl_seconds, self.ttl.session
        )

    async def get_room_state(self, room_id: str) -> Any:
        return await self._get(self.layout.room_keyspace, self.layout.room_key(room_id))

    async def set_room_state(self, room_id: str, state: Any, ttl_seconds: Optional[int] = None) -> None:
        """Large states are compressed by the server (keyspace room: auto)."""
        await self._set(self.layout.room_keyspace, self.layout.room_key(room_id), state, ttl_seconds, self.ttl.room)

    async def get_asset_metadata(self, asset_id: str) -> Any:
        return await self._get(self.layout.asset_keyspace, self.layout.asset_key(asset_id))

    async def set_asset_metadata(self, asset_id: str, metadata: Any, ttl_seconds: Optional[int] = None) -> None:
        await self._set(
            self.layout.asset_keyspace, self.layout.asset_key(asset_id), metadata, ttl_seconds, self.ttl.asset
        )

    async def get_game_system_template(self, system_id: str) -> Any:
        return await self._get(self.layout.gamesystem_keyspace, self.layout.gamesystem_key(system_id))

    async def set_game_system_template(
        self, system_id: str, template: Any, ttl_seconds: Optional[int] = None
    ) -> None:
        await self._set(
            self.layout.gamesystem_keyspace,
            self.layout.gamesystem_key(system_id),
            template,
            ttl_seconds,
            self.ttl.gamesystem,
        )

    # batches (keyspace "", keys as given)

    async def mget(self, keys: List[str]) -> List[Any]:
        """Values in key order, None for misses (BatchError if keys failed)."""
        if not keys:
            return []
        values = await self.client.mget(keys, keyspace=self.layout.generic_keyspace)
        return [decode_json(v) for v in values]

    async def mset(self, items: MSetItems, ttl_seconds: Optional[int] = None) -> None:
        """items: {key: value}, or (key, value[, ttl_seconds]) tuples."""
        prepared = _mset_items(items, ttl_seconds)
        if prepared:
            await self.client.mset(prepared, keyspace=self.layout.generic_keyspace)

    # invalidation

    async def invalidate_user_data(self, user_id: str) -> int:
        """Delete the user's session and every key tagged {user:<id>} in the
        generic keyspace; each pattern is pinned to the user's shard."""
        tag = self.layout.escape_glob(self.layout.user_tag(user_id))
        n = await self.client.invalidate(tag + "*", keyspace=self.layout.session_keyspace)
        if self.layout.generic_keyspace != self.layout.session_keyspace:
            n += await self.client.invalidate(tag + "*", keyspace=self.layout.generic_keyspace)
        return n

    async def invalidate_room_data(self, room_id: str) -> int:
        """Delete the room's state and every key tagged {room:<id>} in the
        generic keyspace (pinned to the room's shard)."""
        tag = self.layout.escape_glob(self.layout.room_tag(room_id))
        n = await self.client.invalidate(tag + "*", keyspace=self.layout.room_keyspace)
        if self.layout.generic_keyspace != self.layout.room_keyspace:
            n += await self.client.invalidate(tag + "*", keyspace=self.layout.generic_keyspace)
        return n

    async def invalidate_pattern(self, pattern: str, keyspace: Optional[str] = None) -> int:
        """Delete every key matching the Redis glob in one keyspace (default:
        the generic one; keyspace "" sees every keyspace's Redis keys)."""
        ks = self.layout.generic_keyspace if keyspace is None else keyspace
        return await self.client.invalidate(pattern, keyspace=ks)

    # cached query with single fill

    async def get_cached_query(
        self, key: str, compute: Callable[[], Awaitable[T]], ttl_seconds: Optional[int] = None
    ) -> T:
        """The cached result of compute(), computing it on a miss. With many
        concurrent callers in any number of processes, compute runs once:
        the first caller gets the lease and fills the key, the others wait
        for the value. If compute raises, the lease is given up (the key is
        deleted) and the error propagates; a waiter then takes the lease."""
        ks = self.layout.query_keyspace
        k = self.layout.query_key(key)
        ttl = ttl_seconds if ttl_seconds is not None else self.ttl.query
        give_up = time.monotonic() + self.query_wait_ms / 1000.0
        while True:
            r = await self.client.get_or_lease(k, ttl_ms=self.lease_ttl_ms, keyspace=ks)
            if r.hit:
                value: T = decode_json(r.value)
                return value
            if r.granted:
                assert r.lease is not None
                try:
                    result = await compute()
                except BaseException:
                    try:
                        await self.client.delete(k, keyspace=ks)
                    except SlotgateError:
                        pass  # the lease expires by itself
                    raise
                try:
                    await self.client.set_with_lease(
                        k, encode_json(result), r.lease, ttl_ms=ttl * 1000 if ttl else None, keyspace=ks
                    )
                except LeaseInvalid:
                    pass  # lease expired during compute: the result is still right for this caller
                return result
            if time.monotonic() >= give_up:
                raise Timeout(f"cached query {key!r} still being computed by another caller")
            await asyncio.sleep((r.retry_after_ms or 10) / 1000.0)

    # operations

    async def health_check(self) -> HealthStatus:
        """PING round trip; never raises."""
        t0 = time.perf_counter()
        try:
            await self.client.ping()
        except SlotgateError as err:
            return HealthStatus(False, (time.perf_counter() - t0) * 1000.0, f"{err.code}: {err.message}")
        info = self.client.server_info
        return HealthStatus(
            True, (time.perf_counter() - t0) * 1000.0, None, info.server_version if info is not None else None
        )

    async def get_stats(self) -> CacheStats:
        """Server counters with hit rate per keyspace."""
        return parse_stats(await self.client.stats())
