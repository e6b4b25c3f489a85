"""Against the live slotgate of tests/conformance/run.sh (skipped outside it):
the blocking client and GameCache over TLS, the cached query computed once
by 100 callers in 4 processes, and TLS verification."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import pathlib
import secrets
from typing import Any, Dict, List

import pytest

import slotgate
from slotgate.asyncio import GameCache as AsyncGameCache
from slotgate.asyncio import Slotgate as AsyncSlotgate

LIVE = bool(os.environ.get("SG_CONF_HOST"))
pytestmark = pytest.mark.skipif(not LIVE, reason="needs tests/conformance/run.sh (SG_CONF_HOST)")


def options() -> Dict[str, Any]:
    env = os.environ
    return dict(
        host=env["SG_CONF_HOST"],
        port=int(env["SG_CONF_PORT"]),
        ssl_ca=env["SG_CONF_CA"],
        ssl_cert=env["SG_CONF_CERT"],
        ssl_key=env["SG_CONF_KEY"],
        server_hostname=env["SG_CONF_SERVER_NAME"],
        token=env["SG_CONF_TOKEN"],
    )


def test_blocking_client_and_game_cache() -> None:
    run = secrets.token_hex(4)
    with slotgate.Slotgate(**options()) as sg:
        info = sg.connect()
        assert info.server_name == "slotgate" and info.limits.max_inflight > 0
        assert sg.set(f"{{t:{run}}}:a", b"\x00\xff", ttl_ms=60000) is True
        assert sg.get(f"{{t:{run}}}:a") == b"\x00\xff"
        assert sg.mget([f"{{t:{run}}}:a", f"{{t:{run}}}:b"]) == [b"\x00\xff", None]
        cache = slotgate.GameCache(sg)
        cache.set_user_session(run, {"name": "Ada"})
        cache.set_room_state(run, {"tiles": ["x"] * 500})  # compressed by the server
        assert cache.get_user_session(run) == {"name": "Ada"}
        assert cache.get_room_state(run) == {"tiles": ["x"] * 500}
        assert cache.invalidate_user_data(run) == 1
        assert cache.get_user_session(run) is None
        assert cache.invalidate_room_data(run) == 1
        assert cache.health_check().healthy
        stats = cache.get_stats()
        assert "session" in stats.keyspaces and 0.0 <= stats.keyspaces["session"].hit_rate <= 1.0


def _query_worker(key: str, callers: int, queue: "multiprocessing.Queue[int]") -> None:
    async def main() -> int:
        computed = 0

        async def compute() -> Dict[str, int]:
            nonlocal computed
            computed += 1
            await asyncio.sleep(0.2)
            return {"rows": 1234}

        async with AsyncSlotgate(**options()) as sg:
            cache = AsyncGameCache(sg)
            got = await asyncio.gather(*(cache.get_cached_query(key, compute, 60) for _ in range(callers)))
            assert all(g == {"rows": 1234} for g in got)
        return computed

    queue.put(asyncio.run(main()))


def test_cached_query_computes_once_across_processes() -> None:
    key = "report:" + secrets.token_hex(4)
    ctx = multiprocessing.get_context("spawn")
    queue: "multiprocessing.Queue[int]" = ctx.Queue()
    procs = [ctx.Process(target=_query_worker, args=(key, 25, queue)) for _ in range(4)]
    for p in procs:
        p.start()
    counts: List[int] = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    assert sum(counts) == 1


def test_untrusted_server_certificate_fails_fast_and_typed() -> None:
    other = pathlib.Path(os.environ["SG_CONF_DIR"]) / "certs" / "other-ca.pem"
    if not other.exists():
        pytest.skip("no second CA in the scratch certificates")
    opts = options()
    opts["ssl_ca"] = str(other)

    async def main() -> None:
        sg = AsyncSlotgate(**opts)
        with pytest.raises(slotgate.ConnectionLost) as info:
            await sg.ping(deadline_ms=5000)
        assert not info.value.retriable
        await sg.aclose()

    asyncio.run(main())


def test_wrong_host_name_is_refused() -> None:
    opts = options()
    opts["server_hostname"] = "not-the-server.example"

    async def main() -> None:
        sg = AsyncSlotgate(**opts)
        with pytest.raises(slotgate.ConnectionLost):
            await sg.ping(deadline_ms=5000)
        await sg.aclose()

    asyncio.run(main())


def test_restart_under_load_loses_nothing() -> None:
    """SIGTERM drains slotgate while 20 callers keep writing until the new
    process is up: the client moves to the new process (requests the old one
    never read are resent there; whether any were depends on timing, so the
    deterministic proof of the resend is in test_faults.py), no call fails,
    and every write is stored."""
    run = secrets.token_hex(4)
    ctl = os.environ["SG_CONF_CTL"]

    async def main() -> None:
        async with AsyncSlotgate(**options()) as sg:
            written: List[int] = []
            failed: List[str] = []
            restarted = asyncio.Event()
            counter = iter(range(10**9))

            async def worker() -> None:
                while not restarted.is_set():
                    i = next(counter)
                    try:
                        await sg.set(f"rs:{run}:{i}", str(i), deadline_ms=5000)
                        written.append(i)
                    except slotgate.SlotgateError as err:
                        failed.append(repr(err))

            async def restart() -> None:
                while len(written) < 300:
                    await asyncio.sleep(0.001)
                proc = await asyncio.create_subprocess_exec(ctl, "restart-proxy")
                assert await proc.wait() == 0
                restarted.set()

            await asyncio.gather(restart(), *(worker() for _ in range(20)))
            assert failed == []
            assert sg.connects >= 2
            for start in range(0, len(written), 500):
                chunk = sorted(written)[start : start + 500]
                values = await sg.mget([f"rs:{run}:{i}" for i in chunk], deadline_ms=5000)
                assert values == [str(i).encode() for i in chunk]

    asyncio.run(main())
