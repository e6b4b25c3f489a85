"""GameCache: the game-domain cache API on top of a slotgate client.

The methods are those of the Node.js cache service slotgate replaces, and of
the TypeScript GameCache (clients/typescript/src/gamecache.ts), in
snake_case: user sessions, room state, asset metadata, game-system
templates, batches, invalidation, a cached query with fleet-wide single fill
(leases), health and statistics. Values are JSON (UTF-8, compact), so a
Python service and a TypeScript one read each other's entries; misses are
None; TTLs are in seconds and default to the server keyspace's
default_ttl_ms when omitted.

Key layout, the same in every language (PROTOCOL.md section 6: one hash tag
per entity, first in the key, so an entity's keys share a slot and
invalidating it is pinned to one shard):

    role        keyspace      key
    session     session       {user:<id>}:session
    room        room          {room:<id>}:state
    asset       asset         {asset:<id>}:meta
    gamesystem  gamesystem    {gamesystem:<id>}:template
    general     ""            {query:<key>}      get_cached_query
    general     ""            <your key>         mget / mset / delete / invalidate_pattern
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
from .errors import InvalidKey, LeaseInvalid, SlotgateError, Timeout

__all__ = [
    "GameCache",
    "CacheStats",
    "KeyspaceStats",
    "HealthStatus",
    "Keyspaces",
    "encode_json",
    "decode_json",
    "glob_escape",
]

T = TypeVar("T")


@dataclass(frozen=True)
class Keyspaces:
    """Server keyspace of each GameCache role."""

    session: str = "session"
    room: str = "room"
    asset: str = "asset"
    gamesystem: str = "gamesystem"
    general: str = ""  # mget, mset, delete, invalidate_pattern, get_cached_query

    def roles(self) -> List[Tuple[str, str]]:
        return [
            ("session", self.session),
            ("room", self.room),
            ("asset", self.asset),
            ("gamesystem", self.gamesystem),
            ("general", self.general),
        ]


def glob_escape(text: str) -> str:
    """text with the Redis glob characters * ? [ ] \\ escaped."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def tag(kind: str, entity_id: Union[str, int]) -> str:
    """The hash tag of an entity: {kind:id}. Ids must be non-empty and
    without braces (they would move the tag)."""
    s = str(entity_id)
    if not s or "{" in s or "}" in s:
        raise InvalidKey(f"{kind} id must be non-empty and without {{ or }}")
    return "{" + kind + ":" + s + "}"


def user_key(user_id: Union[str, int]) -> str:
    return tag("user", user_id) + ":session"


def room_key(room_id: Union[str, int]) -> str:
    return tag("room", room_id) + ":state"


def asset_key(asset_id: Union[str, int]) -> str:
    return tag("asset", asset_id) + ":meta"


def game_system_key(system_id: Union[str, int]) -> str:
    return tag("gamesystem", system_id) + ":template"


def query_key(key: str) -> str:
    return tag("query", key)


@dataclass(frozen=True)
class KeyspaceStats:
    """Server counters of one GameCache role's keyspace."""

    hits: int
    misses: int
    hit_rate: float  # hits / (hits + misses); 0.0 before any read
    sets: int = 0
    invalidated: int = 0
    lease_grants: int = 0


@dataclass(frozen=True)
class CacheStats:
    """get_stats(): hit rate overall and per role (session, room, asset,
    gamesystem, general), and every server counter in `raw`."""

    hits: int
    misses: int
    hit_rate: float
    keyspaces: Dict[str, KeyspaceStats]
    raw: Dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class HealthStatus:
    """health_check(): status "healthy" when a PING was answered."""

    status: str
    latency_ms: float
    error: Optional[str] = None

    @property
    def healthy(self) -> bool:
        return self.status == "healthy"


def encode_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def decode_json(data: bytes) -> Any:
    return json.loads(data)


def parse_stats(raw: Mapping[str, int], keyspaces: Keyspaces) -> CacheStats:
    """Per-role counters from STATS (`keyspace.<name>.<counter>`, with
    `default` for the keyspace "")."""
    per: Dict[str, KeyspaceStats] = {}
    hits = misses = 0
    seen = set()
    for role, ks in keyspaces.roles():
        name = ks or "default"

        def c(counter: str) -> int:
            return int(raw.get(f"keyspace.{name}.{counter}", 0))

        h, m = c("hits"), c("misses")
        per[role] = KeyspaceStats(
            hits=h,
            misses=m,
            hit_rate=h / (h + m) if h + m else 0.0,
            sets=c("sets"),
            invalidated=c("invalidated"),
            lease_grants=c("lease_grants"),
        )
        if name not in seen:
            seen.add(name)
            hits += h
            misses += m
    return CacheStats(hits, misses, hits / (hits + misses) if hits + misses else 0.0, per, dict(raw))


# mset items: {key: value}, or (key, value) / (key, value, ttl_seconds).
MSetItems = Union[Mapping[str, Any], Iterable[Tuple[str, Any]], Iterable[Tuple[str, Any, Optional[float]]]]


def seconds_to_ms(ttl_seconds: Optional[float]) -> Optional[int]:
    """None or <= 0: the keyspace default (None)."""
    return None if ttl_seconds is None or ttl_seconds <= 0 else int(round(ttl_seconds * 1000))


def mset_items(
    items: MSetItems, serialize: Callable[[Any], bytes]
) -> List[Tuple[str, bytes, Optional[int]]]:
    out: List[Tuple[str, bytes, Optional[int]]] = []
    pairs: Iterable[Any] = items.items() if isinstance(items, Mapping) else items
    for item in pairs:
        ttl = item[2] if len(item) > 2 else None
        out.append((item[0], serialize(item[1]), seconds_to_ms(ttl)))
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
        keyspaces: Keyspaces = Keyspaces(),
        serialize: Callable[[Any], bytes] = encode_json,
        deserialize: Callable[[bytes], Any] = decode_json,
        query_lease_ttl_ms: int = 10000,
        query_ttl_seconds: float = 300,
        query_wait_ms: int = 30000,
    ) -> None:
        self.client = client
        self.keyspaces = keyspaces
        self.serialize = serialize
        self.deserialize = deserialize
        self.query_lease_ttl_ms = query_lease_ttl_ms
        self.query_ttl_seconds = query_ttl_seconds
        self.query_wait_ms = query_wait_ms

    async def __aenter__(self) -> "GameCache":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the underlying client (waits for calls in flight)."""
        await self.client.aclose()

    async def _read(self, keyspace: str, key: str) -> Any:
        data = await self.client.get(key, keyspace=keyspace)
        return None if data is None else self.deserialize(data)

    async def _write(self, keyspace: str, key: str, value: Any, ttl_seconds: Optional[float]) -> None:
        await self.client.set(key, self.serialize(value), ttl_ms=seconds_to_ms(ttl_seconds), keyspace=keyspace)

    async def get_user_session(self, user_id: Union[str, int]) -> Any:
        """The session stored for user_id, or None."""
        return await self._read(self.keyspaces.session, user_key(user_id))

    async def set_user_session(
        self, user_id: Union[str, int], session: Any, ttl_seconds: Optional[float] = None
    ) -> None:
        await self._write(self.keyspaces.session, user_key(user_id), session, ttl_seconds)

    async def get_room_state(self, room_id: Union[str, int]) -> Any:
        return await self._read(self.keyspaces.room, room_key(room_id))

    async def set_room_state(self, room_id: Union[str, int], state: Any, ttl_seconds: Optional[float] = None) -> None:
        """Large states are compressed by the server (keyspace room: auto)."""
        await self._write(self.keyspaces.room, room_key(room_id), state, ttl_seconds)

    async def get_asset_metadata(self, asset_id: Union[str, int]) -> Any:
        return await self._read(self.keyspaces.asset, asset_key(asset_id))

    async def set_asset_metadata(
        self, asset_id: Union[str, int], metadata: Any, ttl_seconds: Optional[float] = None
    ) -> None:
        await self._write(self.keyspaces.asset, asset_key(asset_id), metadata, ttl_seconds)

    async def get_game_system_template(self, system_id: Union[str, int]) -> Any:
        return await self._read(self.keyspaces.gamesystem, game_system_key(system_id))

    async def set_game_system_template(
        self, system_id: Union[str, int], template: Any, ttl_seconds: Optional[float] = None
    ) -> None:
        await self._write(self.keyspaces.gamesystem, game_system_key(system_id), template, ttl_seconds)

    async def mget(self, keys: List[str]) -> List[Any]:
        """Values of keys in the general keyspace, None per miss (one
        request; BatchError if some keys failed)."""
        if not keys:
            return []
        values = await self.client.mget(keys, keyspace=self.keyspaces.general)
        return [None if v is None else self.deserialize(v) for v in values]

    async def mset(self, items: MSetItems) -> None:
        """Store several values in the general keyspace: {key: value}, or
        (key, value[, ttl_seconds]) tuples (no TTL: the keyspace default)."""
        prepared = mset_items(items, self.serialize)
        if prepared:
            await self.client.mset(prepared, keyspace=self.keyspaces.general)

    async def delete(self, key: str) -> int:
        """Delete one key of the general keyspace; the number removed."""
        return await self.client.delete(key, keyspace=self.keyspaces.general)

    async def _invalidate_entity(self, kind: str, entity_id: Union[str, int]) -> int:
        """Every key tagged {kind:id} in each keyspace; each INVALIDATE is
        pinned to the one master owning the tag."""
        pattern = "{" + glob_escape(tag(kind, entity_id)[1:-1]) + "}*"
        spaces = list(dict.fromkeys(ks for _, ks in self.keyspaces.roles()))
        counts = await asyncio.gather(*(self.client.invalidate(pattern, keyspace=ks) for ks in spaces))
        return sum(counts)

    async def invalidate_user_data(self, user_id: Union[str, int]) -> int:
        """Remove all of a user's keys ({user:<id>}...) in every keyspace."""
        return await self._invalidate_entity("user", user_id)

    async def invalidate_room_data(self, room_id: Union[str, int]) -> int:
        """Remove all of a room's keys ({room:<id>}...) in every keyspace."""
        return await self._invalidate_entity("room", room_id)

    async def invalidate_pattern(self, pattern: str, keyspace: Optional[str] = None) -> int:
        """Delete every key matching a Redis glob. In the general keyspace ""
        the pattern sees the full Redis keys of every keyspace (as the
        ioredis service's pattern did); pass keyspace to restrict it."""
        ks = self.keyspaces.general if keyspace is None else keyspace
        return await self.client.invalidate(pattern, keyspace=ks)

    async def get_cached_query(
        self,
        key: str,
        compute: Callable[[], Awaitable[T]],
        ttl_seconds: Optional[float] = None,
    ) -> T:
        """The cached result of compute(), computing it on a miss, with
        fleet-wide single fill: the first caller anywhere (any process) gets
        the lease and runs compute; the others wait for its value. If compute
        raises, the lease is given up (the key deleted) so the next caller
        computes, and the error propagates. ttl_seconds defaults to
        query_ttl_seconds (300)."""
        ks = self.keyspaces.general
        k = query_key(key)
        ttl = self.query_ttl_seconds if ttl_seconds is None else ttl_seconds
        give_up = time.monotonic() + self.query_wait_ms / 1000.0
        while True:
            r = await self.client.get_or_lease(k, ttl_ms=self.query_lease_ttl_ms, keyspace=ks)
            if r.hit:
                assert r.value is not None
                value: T = self.deserialize(r.value)
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
                        k, self.serialize(result), r.lease, ttl_ms=seconds_to_ms(ttl), keyspace=ks
                    )
                except LeaseInvalid:
                    pass  # the lease expired while computing; the result is still this caller's answer
                return result
            if time.monotonic() >= give_up:
                raise Timeout(f"cached query {key!r} is still being computed by another caller")
            await asyncio.sleep((r.retry_after_ms or 10) / 1000.0)

    async def health_check(self) -> HealthStatus:
        """PING round trip; never raises."""
        t0 = time.perf_counter()
        try:
            await self.client.ping()
        except SlotgateError as err:
            return HealthStatus("unhealthy", (time.perf_counter() - t0) * 1000.0, f"{err.code}: {err.message}")
        return HealthStatus("healthy", (time.perf_counter() - t0) * 1000.0)

    async def get_stats(self) -> CacheStats:
        """Hit rate per role's keyspace (and overall) from the server's STATS
        counters since it started."""
        return parse_stats(await self.client.stats(), self.keyspaces)
