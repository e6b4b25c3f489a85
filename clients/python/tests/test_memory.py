"""The in-memory fake (slotgate.memory) and GameCache over it: the same
semantics as the proxy for TTLs, conditions, leases, versions, keyspaces,
invalidation and statistics."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Coroutine, List, TypeVar

import pytest

import slotgate
from slotgate.asyncio import MemoryBackend, MemoryGameCache, MemorySlotgate
from slotgate.memory import glob_match

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 30))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_ttl_expiry_and_keyspace_defaults() -> None:
    clock = Clock()
    backend = MemoryBackend(clock=clock)
    sg = MemorySlotgate(backend)

    async def main() -> None:
        await sg.set("{u:1}:a", "x", ttl_ms=500)
        await sg.set("{u:1}:s", "y", keyspace="session")
        assert backend.pttl(b"{u:1}:a") == 500
        assert backend.pttl(b"session:{u:1}:s") == 3600000
        await sg.set("{u:1}:n", "z")
        assert backend.pttl(b"{u:1}:n") == -1
        clock.now += 0.5
        assert await sg.get("{u:1}:a") is None
        assert await sg.get("{u:1}:s", keyspace="session") == b"y"
        assert await sg.expire("{u:1}:n", 100) is True
        assert await sg.expire("{u:1}:missing", 100) is False
        clock.now += 0.1
        assert await sg.get("{u:1}:n") is None
        with pytest.raises(slotgate.TtlOutOfRange):
            await sg.set("k", "v", keyspace="session", ttl_ms=86400001)
        with pytest.raises(slotgate.TtlOutOfRange):
            await sg.expire("k", 0)
        with pytest.raises(slotgate.UnknownKeyspace):
            await sg.get("k", keyspace="default")
        with pytest.raises(slotgate.InvalidKey):
            await sg.get("")

    run(main())


def test_conditions_batches_and_binary() -> None:
    sg = MemorySlotgate()

    async def main() -> None:
        assert await sg.set("a", "1", xx=True) is False
        assert await sg.set("a", "1", nx=True) is True
        assert await sg.set("a", "2", nx=True) is False
        assert await sg.set(b"\x00\xff", b"") is True
        assert await sg.get(b"\x00\xff") == b""
        assert await sg.mset({"a": "3", "b": "4"}, nx=True) == [False, True]
        assert await sg.mget(["a", "b", "c"]) == [b"1", b"4", None]
        assert await sg.mdel(["a", "c"]) == 1
        assert await sg.delete("b") == 1
        assert await sg.delete("b") == 0
        with pytest.raises(slotgate.InvalidArgument):
            await sg.mget([])

    run(main())


def test_leases_and_versions() -> None:
    sg = MemorySlotgate()

    async def main() -> None:
        r = await sg.get_or_lease("k", keyspace="asset")
        assert r.granted and r.lease is not None and len(r.lease) == 32
        assert await sg.get("k", keyspace="asset") is None
        assert await sg.set("k", "x", nx=True, keyspace="asset") is False  # the marker exists
        w = await sg.get_or_lease("k", keyspace="asset")
        assert w.wait and 1 <= w.retry_after_ms <= 100
        await sg.set_with_lease("k", "filled", r.lease, keyspace="asset")
        assert (await sg.get_or_lease("k", keyspace="asset")).value == b"filled"
        with pytest.raises(slotgate.LeaseInvalid):
            await sg.set_with_lease("k", "again", r.lease, keyspace="asset")

        assert await sg.get_versioned("v") is None
        assert await sg.set_versioned("v", "a", 0) == 1
        assert await sg.set_versioned("v", "b", 1) == 2
        with pytest.raises(slotgate.VersionConflict) as info:
            await sg.set_versioned("v", "c", 1)
        assert info.value.version == 2
        assert await sg.get_versioned("v") == slotgate.Versioned(b"b", 2)
        await sg.set("v", "plain")
        assert await sg.get_versioned("v") == slotgate.Versioned(b"plain", 0)

    run(main())


def test_invalidate_globs_and_prefixes() -> None:
    assert glob_match(b"{user:1}*", b"{user:1}:token")
    assert not glob_match(b"{user:1}*", b"{user:12}:token")
    assert glob_match(b"a?c", b"abc") and not glob_match(b"a?c", b"ac")
    assert glob_match(b"[a-c]x", b"bx") and not glob_match(b"[^a-c]x", b"bx")
    assert glob_match(b"\\*x", b"*x") and not glob_match(b"\\*x", b"ax")
    sg = MemorySlotgate()

    async def main() -> None:
        await sg.set("{user:1}:token", "t", keyspace="session")
        await sg.set("{user:1}:inv", "i", keyspace="gamesystem")
        await sg.set("{user:2}:token", "t", keyspace="session")
        assert await sg.invalidate("{user:1}*", keyspace="room") == 0
        assert await sg.invalidate("*{user:1}*") == 2  # keyspace "" sees every prefix
        assert await sg.get("{user:2}:token", keyspace="session") == b"t"

    run(main())


def test_game_cache_domain_methods() -> None:
    async def main() -> None:
        cache = MemoryGameCache(MemoryBackend(clock=Clock()))
        await cache.set_user_session("123", {"name": "Ada", "level": 3}, ttl_seconds=60)
        assert await cache.get_user_session("123") == {"name": "Ada", "level": 3}
        assert cache.backend.pttl(b"session:{user:123}:session") == 60000
        await cache.set_room_state("r1", {"players": ["a", "b"]})
        assert cache.backend.pttl(b"room:{room:r1}:state") == 1800000  # the keyspace default
        await cache.set_asset_metadata("a1", {"w": 64})
        await cache.set_game_system_template("dnd5e", {"dice": "d20"})
        assert await cache.get_asset_metadata("a1") == {"w": 64}
        assert await cache.get_game_system_template("dnd5e") == {"dice": "d20"}
        assert cache.backend.pttl(b"gamesystem:{gamesystem:dnd5e}:template") == 7200000

        await cache.mset({"{user:123}:prefs": {"dark": True}, "{room:r1}:chat": ["hi"]})
        await cache.mset([("{user:9}:x", 1, 5)])
        assert cache.backend.pttl(b"{user:9}:x") == 5000
        assert cache.backend.pttl(b"{user:123}:prefs") == -1  # keyspace "" has no default TTL
        assert await cache.mget(["{user:123}:prefs", "{room:r1}:chat", "nope"]) == [{"dark": True}, ["hi"], None]

        assert await cache.invalidate_user_data("123") == 2  # session + generic key
        assert await cache.get_user_session("123") is None
        assert await cache.mget(["{user:123}:prefs"]) == [None]
        assert await cache.invalidate_room_data("r1") == 2
        assert await cache.get_room_state("r1") is None
        assert await cache.invalidate_pattern("{user:9}*") == 1
        with pytest.raises(slotgate.InvalidKey):
            await cache.get_user_session("a}b")
        assert await cache.delete("nope") == 0

        health = await cache.health_check()
        assert health.healthy and health.error is None
        await cache.get_asset_metadata("a1")
        await cache.get_asset_metadata("missing")
        stats = await cache.get_stats()
        assert stats.keyspaces["asset"].hits == 2 and stats.keyspaces["asset"].misses == 1
        assert stats.keyspaces["asset"].hit_rate == pytest.approx(2 / 3)
        await cache.close()

    run(main())


def test_cached_query_computes_once_for_100_callers_on_shared_backend() -> None:
    backend = MemoryBackend()
    caches = [MemoryGameCache(backend) for _ in range(4)]  # four "processes"
    calls = [0]

    async def compute() -> dict[str, int]:
        calls[0] += 1
        await asyncio.sleep(0.05)
        return {"answer": 42}

    async def main() -> None:
        got = await asyncio.gather(*(caches[i % 4].get_cached_query("leaderboard", compute, 60) for i in range(100)))
        assert calls[0] == 1
        assert all(g == {"answer": 42} for g in got)
        assert 50000 < backend.pttl(b"{query:leaderboard}") <= 60000

    run(main())


def test_cached_query_error_gives_the_lease_up() -> None:
    cache = MemoryGameCache()

    async def boom() -> int:
        raise RuntimeError("db down")

    async def ok() -> int:
        return 7

    async def main() -> None:
        with pytest.raises(RuntimeError):
            await cache.get_cached_query("q", boom)
        assert await cache.get_cached_query("q", ok) == 7  # no stale lease left behind

    run(main())


def test_blocking_memory_game_cache() -> None:
    with slotgate.MemoryGameCache() as cache:
        cache.set_user_session("u", {"a": 1})
        assert cache.get_user_session("u") == {"a": 1}
        calls: List[int] = []

        def compute() -> str:
            calls.append(1)
            return "v"

        results: List[str] = []
        threads = [
            threading.Thread(target=lambda: results.append(cache.get_cached_query("k", compute))) for _ in range(10)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert calls == [1] and results == ["v"] * 10
        assert cache.get_stats().keyspaces["session"].hits == 1
