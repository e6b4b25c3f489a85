"""Connection faults and protocol rules, against a scripted server peer
(tests/fakeserver.py): bad server frames, SHUTTING_DOWN resend, EOF, a
silent proxy, out-of-order answers, max_inflight, local limit checks,
handshake errors and reconnect."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Coroutine, Dict, List, Tuple, TypeVar

import pytest

import slotgate
from fakeserver import FakeServer, Peer
from slotgate._proto import slotgate_pb2 as pb
from slotgate.asyncio import Slotgate

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 30))  # a hang fails, it does not block the suite


def client(port: int, **kw: Any) -> Slotgate:
    kw.setdefault("reconnect_backoff_ms", 1)
    return Slotgate("127.0.0.1", port, ssl=False, **kw)


async def serve_ok(peer: Peer) -> None:
    """A well-behaved peer: answers GET with the key as value."""
    await peer.handshake()
    while True:
        req = await peer.read_request()
        if req is None:
            return
        if req.op == pb.OP_GET:
            peer.respond(req.id, value=req.keys[0])
        else:
            peer.respond(req.id)


@pytest.mark.parametrize("bad", ["undecodable", "oversize"])
def test_bad_server_frame_fails_pending_calls_then_reconnects(bad: str) -> None:
    async def script(peer: Peer) -> None:
        if peer.index > 0:
            await serve_ok(peer)
            return
        await peer.handshake()
        for _ in range(3):
            assert await peer.read_request() is not None
        if bad == "undecodable":
            peer.send_raw(b"\x00\x00\x00\x03\xff\xff\xff")
        else:
            peer.send_raw((1 << 20).to_bytes(4, "big"))  # over the client cap below
        await peer.writer.drain()
        await peer.read_raw()

    async def main() -> None:
        async with FakeServer(script) as srv:
            sg = client(srv.port, max_frame_bytes=1024)
            await sg.connect()
            results = await asyncio.gather(*(sg.get(f"k{i}") for i in range(3)), return_exceptions=True)
            want = slotgate.BadFrame if bad == "undecodable" else slotgate.FrameTooLarge
            assert all(isinstance(r, want) for r in results), results
            assert await sg.get("again") == b"again"  # reconnected
            assert srv.accepted == 2
            await sg.aclose()

    run(main())


def test_shutting_down_resends_unanswered_requests() -> None:
    seen: Dict[int, List[bytes]] = {}

    async def script(peer: Peer) -> None:
        if peer.index > 0:
            await peer.handshake()
            while True:
                req = await peer.read_request()
                if req is None:
                    return
                seen.setdefault(peer.index, []).append(req.keys[0])
                peer.respond(req.id, value=req.keys[0])
        await peer.handshake()
        reqs = [await peer.read_request() for _ in range(4)]
        assert all(r is not None for r in reqs)
        seen[0] = [r.keys[0] for r in reqs if r is not None]
        first = reqs[0]
        assert first is not None
        peer.respond(first.id, value=b"answered-before-drain")
        peer.error(pb.CODE_SHUTTING_DOWN, "server is shutting down")
        await peer.writer.drain()

    async def main() -> None:
        async with FakeServer(script) as srv:
            sg = client(srv.port)
            await sg.connect()
            got = await asyncio.gather(*(sg.get(f"k{i}") for i in range(4)))
            assert got == [b"answered-before-drain", b"k1", b"k2", b"k3"]
            assert seen[1] == [b"k1", b"k2", b"k3"]  # the answered one is not resent
            assert sg.resent == 3
            await sg.aclose()

    run(main())


def test_eof_fails_calls_in_flight_without_resending() -> None:
    async def script(peer: Peer) -> None:
        if peer.index > 0:
            await serve_ok(peer)
            return
        await peer.handshake()
        assert await peer.read_request() is not None
        assert await peer.read_request() is not None
        peer.close()

    async def main() -> None:
        async with FakeServer(script) as srv:
            sg = client(srv.port)
            await sg.connect()
            results = await asyncio.gather(sg.set("a", "1"), sg.get("b"), return_exceptions=True)
            assert all(isinstance(r, slotgate.ConnectionLost) for r in results), results
            assert all(isinstance(r, slotgate.SlotgateError) and r.retriable for r in results)
            assert sg.resent == 0
            assert await sg.get("c") == b"c"
            await sg.aclose()

    run(main())


def test_other_connection_error_fails_pending_with_its_code() -> None:
    async def script(peer: Peer) -> None:
        if peer.index > 0:
            await serve_ok(peer)
            return
        await peer.handshake()
        assert await peer.read_request() is not None
        peer.error(pb.CODE_BAD_FRAME, "bad frame")
        await peer.writer.drain()

    async def main() -> None:
        async with FakeServer(script) as srv:
            sg = client(srv.port)
            await sg.connect()
            with pytest.raises(slotgate.BadFrame):
                await sg.get("x")
            assert await sg.get("y") == b"y"
            await sg.aclose()

    run(main())


def test_silent_proxy_fails_call_at_its_deadline() -> None:
    async def script(peer: Peer) -> None:
        await peer.handshake()
        while await peer.read_raw() is not None:
            pass  # reads, never answers

    async def main() -> None:
        async with FakeServer(script) as srv:
            sg = client(srv.port, deadline_margin_ms=100)
            await sg.connect()
            with pytest.raises(slotgate.Timeout) as info:
                await sg.get("k", deadline_ms=200)
            assert info.value.code == "TIMEOUT" and info.value.retriable
            await sg.aclose()

    run(main())


def test_out_of_order_answers_reach_their_callers() -> None:
    async def script(peer: Peer) -> None:
        await peer.handshake()
        reqs = [await peer.read_request() for _ in range(5)]
        for r in reversed(reqs):
            assert r is not None
            peer.respond(r.id, value=r.keys[0] + b"!")
        await peer.read_raw()

    async def main() -> None:
        async with FakeServer(script) as srv:
            sg = client(srv.port)
            await sg.connect()
            got = await asyncio.gather(*(sg.get(f"k{i}") for i in range(5)))
            assert got == [f"k{i}!".encode() for i in range(5)]
            await sg.aclose()

    run(main())


def test_never_more_than_max_inflight_outstanding() -> None:
    most = [0]

    async def script(peer: Peer) -> None:
        await peer.handshake(max_inflight=2)
        outstanding: List[pb.Request] = []
        while True:
            req = await peer.read_request()
            if req is None:
                return
            outstanding.append(req)
            most[0] = max(most[0], len(outstanding))
            assert len(outstanding) <= 2
            if len(outstanding) == 2:
                for r in outstanding:
                    peer.respond(r.id, value=r.keys[0])
                outstanding.clear()

    async def main() -> None:
        async with FakeServer(script) as srv:
            sg = client(srv.port)
            await sg.connect()
            got = await asyncio.gather(*(sg.get(f"k{i}") for i in range(20)))
            assert got == [f"k{i}".encode() for i in range(20)]
            assert most[0] == 2
            await sg.aclose()

    run(main())


def test_limits_checked_locally_without_a_round_trip() -> None:
    requests: List[pb.Request] = []

    async def script(peer: Peer) -> None:
        await peer.handshake(max_key_bytes=8, max_value_bytes=16, max_batch_keys=3, max_batch_bytes=40)
        while True:
            req = await peer.read_request()
            if req is None:
                return
            requests.append(req)
            peer.respond(req.id)

    async def main() -> None:
        async with FakeServer(script) as srv:
            sg = client(srv.port)
            await sg.connect()
            with pytest.raises(slotgate.KeyTooLarge):
                await sg.get("k" * 9)
            with pytest.raises(slotgate.KeyTooLarge):
                await sg.invalidate("p" * 9)
            with pytest.raises(slotgate.ValueTooLarge):
                await sg.set("k", "v" * 17)
            with pytest.raises(slotgate.BatchTooLarge):
                await sg.mget(["a", "b", "c", "d"])
            with pytest.raises(slotgate.BatchTooLarge):
                await sg.mset([("a", "v" * 16), ("b", "v" * 16), ("c", "v" * 16)])
            assert requests == []
            assert await sg.set("k" * 8, "v" * 16) is True  # at the limits: sent
            assert len(requests) == 1
            await sg.aclose()

    run(main())


def test_auth_failure_is_not_retried() -> None:
    async def script(peer: Peer) -> None:
        hello = await peer.read()
        assert hello is not None and hello.hello.auth_token == b"wrong"
        peer.error(pb.CODE_AUTH_FAILED, "authentication failed")
        await peer.writer.drain()

    async def main() -> None:
        async with FakeServer(script) as srv:
            sg = client(srv.port, token="wrong")
            results = await asyncio.gather(sg.ping(), sg.get("k"), return_exceptions=True)
            assert all(isinstance(r, slotgate.AuthFailed) for r in results), results
            assert isinstance(results[0], slotgate.AuthFailed) and not results[0].retriable
            assert srv.accepted == 1
            await sg.aclose()

    run(main())


def test_reconnects_with_backoff_after_refused_handshakes() -> None:
    async def script(peer: Peer) -> None:
        if peer.index < 3:
            await peer.read()
            peer.error(pb.CODE_TOO_MANY_CONNECTIONS, "full")  # retriable
            await peer.writer.drain()
            return
        await serve_ok(peer)

    async def main() -> None:
        async with FakeServer(script) as srv:
            sg = client(srv.port, deadline_ms=5000)
            assert await sg.get("k") == b"k"
            assert srv.accepted == 4
            await sg.aclose()

    run(main())


def test_unknown_code_is_a_failure_classified_by_range() -> None:
    async def script(peer: Peer) -> None:
        await peer.handshake()
        for code in (250, 350, 7):
            req = await peer.read_request()
            assert req is not None
            peer.respond(req.id, code)
        await peer.read_raw()

    async def main() -> None:
        async with FakeServer(script) as srv:
            sg = client(srv.port)
            for number, retriable in ((250, False), (350, True), (7, False)):
                with pytest.raises(slotgate.UnknownCode) as info:
                    await sg.get("k")
                assert info.value.number == number and info.value.retriable is retriable
                assert info.value.code == f"UNKNOWN_{number}"
            await sg.aclose()

    run(main())


def test_closed_client_refuses_calls() -> None:
    async def main() -> None:
        async with FakeServer(serve_ok) as srv:
            sg = client(srv.port)
            assert await sg.get("a") == b"a"
            await sg.aclose()
            with pytest.raises(slotgate.ClientClosed):
                await sg.get("b")

    run(main())


def test_blocking_client_from_many_threads() -> None:
    """The blocking client multiplexes calls from several threads on one
    connection (the peer accepts exactly one)."""

    async def serve() -> None:
        stop.append(asyncio.Event())  # made inside the loop (Python 3.9 binds it at creation)
        async with FakeServer(serve_ok) as srv:
            port_box.append(srv.port)
            await stop[0].wait()
            accepted.append(srv.accepted)

    port_box: List[int] = []
    accepted: List[int] = []
    stop: List[asyncio.Event] = []
    loop = asyncio.new_event_loop()
    t = threading.Thread(target=loop.run_until_complete, args=(serve(),))
    t.start()
    try:
        while not port_box:
            threading.Event().wait(0.01)
        with slotgate.Slotgate("127.0.0.1", port_box[0], ssl=False) as sg:
            out: Dict[int, Any] = {}

            def worker(n: int) -> None:
                out[n] = [sg.get(f"t{n}-{i}") for i in range(50)]

            threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            for n in range(8):
                assert out[n] == [f"t{n}-{i}".encode() for i in range(50)]
    finally:
        loop.call_soon_threadsafe(stop[0].set)
        t.join()
        loop.close()
    assert accepted == [1]


def test_requests_not_yet_written_are_resent_after_a_connection_loss() -> None:
    seen: Dict[int, List[bytes]] = {}

    async def script(peer: Peer) -> None:
        await peer.handshake()
        while True:
            req = await peer.read_request()
            if req is None:
                return
            seen.setdefault(peer.index, []).append(req.keys[0])
            peer.respond(req.id, value=req.keys[0])

    async def main() -> None:
        async with FakeServer(script) as srv:
            sg = client(srv.port)
            await sg.connect()
            tasks = [asyncio.ensure_future(sg.set(f"w{i}", "v")) for i in range(3)]
            await asyncio.sleep(0)  # the calls are queued on the connection, not yet flushed
            conn = sg._conns[0]
            assert len(conn.out_calls) == 3
            conn.fail(slotgate.ConnectionLost("lost before the flush"), resend=False)
            assert await asyncio.gather(*tasks) == [True, True, True]
            assert 0 not in seen and seen[1] == [b"w0", b"w1", b"w2"]
            assert sg.resent == 3
            await sg.aclose()

    run(main())


def test_unreachable_server_fails_calls_at_their_deadline() -> None:
    async def main() -> None:
        async with FakeServer(serve_ok) as srv:
            port = srv.port
        sg = client(port)  # nothing listens there any more
        with pytest.raises(slotgate.ConnectionLost) as info:
            await sg.get("k", deadline_ms=200)
        assert "no connection before the deadline" in info.value.message
        await sg.aclose()

    run(main())


def test_pool_opens_another_connection_when_one_is_full() -> None:
    """max_inflight 2 and no answer before 6 requests are outstanding in
    all: only a pool of 3 connections can get there."""
    held: List[Tuple[Peer, pb.Request]] = []

    async def script(peer: Peer) -> None:
        await peer.handshake(max_inflight=2)
        while True:
            req = await peer.read_request()
            if req is None:
                return
            held.append((peer, req))
            if len(held) == 6:
                for p, r in held:
                    p.respond(r.id, value=r.keys[0])
                held.clear()

    async def main() -> None:
        async with FakeServer(script) as srv:
            sg = client(srv.port, pool_size=3)
            got = await asyncio.gather(*(sg.get(f"k{i}") for i in range(6)))
            assert got == [f"k{i}".encode() for i in range(6)]
            assert srv.accepted == 3
            await sg.aclose()

    run(main())
