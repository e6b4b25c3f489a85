"""Golden vectors (proto/testdata/vectors.json).

Encode cases: the message built from `json` with the protobuf runtime, and
(where a typed method can express it) the frame the real client writes on a
loopback socket, must equal `frame` byte for byte. Decode cases: unframed
and decoded, they give `json`; ServerMessages are also played back to the
real client over a socket and read through its normal path (HelloReply as
the handshake, Response as the answer to a call, ConnectionError as the
failure of a pending call)."""

from __future__ import annotations

import asyncio
import json
import pathlib
from typing import Any, Dict, List, Optional

import pytest
from google.protobuf import json_format

from fakeserver import FakeServer, Peer
from slotgate import SlotgateError
from slotgate._codec import FrameReader, decode_server_message, frame
from slotgate._proto import slotgate_pb2 as pb
from slotgate.asyncio import Slotgate
from slotgate.errors import code_name

VECTORS = pathlib.Path(__file__).resolve().parents[3] / "proto" / "testdata" / "vectors.json"
DATA = json.loads(VECTORS.read_text())
ENCODE: List[Dict[str, Any]] = DATA["encode"]
DECODE: List[Dict[str, Any]] = DATA["decode"]


def unframe(hexframe: str) -> bytes:
    raw = bytes.fromhex(hexframe)
    assert int.from_bytes(raw[:4], "big") == len(raw) - 4
    return raw[4:]


@pytest.mark.parametrize("case", ENCODE, ids=[c["name"] for c in ENCODE])
def test_encode_runtime(case: Dict[str, Any]) -> None:
    msg = json_format.ParseDict(case["json"], pb.ClientMessage())
    assert frame(msg).hex() == case["frame"]


# The typed call that produces a Request, or None where no typed method
# sends that shape (unknown op, every field at once, ...).
async def typed_call(sg: Slotgate, req: pb.Request) -> None:
    op = req.op
    ks = req.keyspace
    dl = req.deadline_ms or None
    ttl = req.ttl_ms or None
    key = req.keys[0] if len(req.keys) == 1 else b""
    value = req.values[0] if len(req.values) == 1 else b""
    nx = req.condition == pb.COND_NX
    xx = req.condition == pb.COND_XX
    if op == pb.OP_PING:
        await sg.ping(deadline_ms=dl)
    elif op == pb.OP_GET:
        await sg.get(key, keyspace=ks, deadline_ms=dl)
    elif op == pb.OP_SET:
        await sg.set(key, value, ttl_ms=ttl, nx=nx, xx=xx, keyspace=ks, deadline_ms=dl)
    elif op == pb.OP_DELETE:
        await sg.delete(key, keyspace=ks, deadline_ms=dl)
    elif op == pb.OP_EXPIRE:
        await sg.expire(key, req.ttl_ms, keyspace=ks, deadline_ms=dl)
    elif op == pb.OP_MGET:
        await sg.mget_results(list(req.keys), keyspace=ks, deadline_ms=dl)
    elif op == pb.OP_MSET:
        ttls = list(req.ttls_ms) or [0] * len(req.keys)
        items = [(k, v, t or None) for k, v, t in zip(req.keys, req.values, ttls)]
        await sg.mset_results(items, ttl_ms=ttl, nx=nx, xx=xx, keyspace=ks, deadline_ms=dl)
    elif op == pb.OP_MDELETE:
        await sg.mdel_results(list(req.keys), keyspace=ks, deadline_ms=dl)
    elif op == pb.OP_INVALIDATE:
        await sg.invalidate(req.pattern, keyspace=ks, deadline_ms=dl)
    elif op == pb.OP_GET_OR_LEASE:
        await sg.get_or_lease(key, ttl_ms=ttl, keyspace=ks, deadline_ms=dl)
    elif op == pb.OP_SET_WITH_LEASE:
        await sg.set_with_lease(key, value, req.lease, ttl_ms=ttl, keyspace=ks, deadline_ms=dl)
    elif op == pb.OP_SET_VERSIONED:
        await sg.set_versioned(key, value, req.version, ttl_ms=ttl, keyspace=ks, deadline_ms=dl)
    elif op == pb.OP_GET_VERSIONED:
        await sg.get_versioned(key, keyspace=ks, deadline_ms=dl)
    elif op == pb.OP_STATS:
        await sg.stats(deadline_ms=dl)
    else:
        raise NotImplementedError


def typed_expressible(req: pb.Request) -> bool:
    """True if the typed method for req.op sends exactly req's fields."""
    op = req.op
    uses = {
        pb.OP_PING: {"id", "op", "deadline_ms"},
        pb.OP_STATS: {"id", "op", "deadline_ms"},
        pb.OP_GET: {"id", "op", "keyspace", "keys", "deadline_ms"},
        pb.OP_GET_VERSIONED: {"id", "op", "keyspace", "keys", "deadline_ms"},
        pb.OP_DELETE: {"id", "op", "keyspace", "keys", "deadline_ms"},
        pb.OP_EXPIRE: {"id", "op", "keyspace", "keys", "ttl_ms", "deadline_ms"},
        pb.OP_SET: {"id", "op", "keyspace", "keys", "values", "ttl_ms", "condition", "deadline_ms"},
        pb.OP_MGET: {"id", "op", "keyspace", "keys", "deadline_ms"},
        pb.OP_MDELETE: {"id", "op", "keyspace", "keys", "deadline_ms"},
        pb.OP_MSET: {"id", "op", "keyspace", "keys", "values", "ttl_ms", "ttls_ms", "condition", "deadline_ms"},
        pb.OP_INVALIDATE: {"id", "op", "keyspace", "pattern", "deadline_ms"},
        pb.OP_GET_OR_LEASE: {"id", "op", "keyspace", "keys", "ttl_ms", "deadline_ms"},
        pb.OP_SET_WITH_LEASE: {"id", "op", "keyspace", "keys", "values", "lease", "ttl_ms", "deadline_ms"},
        pb.OP_SET_VERSIONED: {"id", "op", "keyspace", "keys", "values", "version", "ttl_ms", "deadline_ms"},
    }.get(op)
    if uses is None:
        return False
    present = {f.name for f, _ in req.ListFields()}
    if not present <= uses:
        return False
    if op in (pb.OP_MSET,) and req.ttls_ms and all(t == 0 for t in req.ttls_ms):
        return False  # the client leaves an all-zero ttls_ms out
    return True


TYPED = [
    c
    for c in ENCODE
    if "hello" in c["json"]
    or typed_expressible(json_format.ParseDict(c["json"], pb.ClientMessage()).request)
]


@pytest.mark.parametrize("case", TYPED, ids=[c["name"] for c in TYPED])
def test_encode_client(case: Dict[str, Any]) -> None:
    """The real client writes `frame` (its Hello, or the typed call's Request)."""
    msg = json_format.ParseDict(case["json"], pb.ClientMessage())
    seen: List[bytes] = []

    async def script(peer: Peer) -> None:
        hello = await peer.read_raw()
        assert hello is not None
        seen.append(hello)
        await peer.handshake_reply()
        while True:
            body = await peer.read_raw()
            if body is None:
                return
            seen.append(body)
            req = pb.ClientMessage.FromString(body).request
            peer.respond(req.id, pb.CODE_OK if req.op == pb.OP_PING else pb.CODE_INTERNAL)

    async def main() -> None:
        async with FakeServer(script) as srv:
            if "hello" in case["json"]:
                h = msg.hello
                sg = Slotgate("127.0.0.1", srv.port, ssl=False, client_name=h.client_name, token=h.auth_token or None)
                await sg.ping()
                await sg.aclose()
                assert seen[0].hex() == unframe(case["frame"]).hex()
                return
            sg = Slotgate("127.0.0.1", srv.port, ssl=False)
            await sg.ping()
            sg._next_id = msg.request.id
            try:
                await typed_call(sg, msg.request)
            except SlotgateError:
                pass  # the fake answers INTERNAL; only the bytes sent matter
            await sg.aclose()
            assert seen[-1].hex() == unframe(case["frame"]).hex()

    asyncio.run(main())


@pytest.mark.parametrize("case", DECODE, ids=[c["name"] for c in DECODE])
def test_decode_runtime(case: Dict[str, Any]) -> None:
    body = unframe(case["frame"])
    if case["type"] == "ServerMessage":
        # Through the client's frame reader, one byte at a time.
        reader = FrameReader()
        bodies: List[bytes] = []
        raw = bytes.fromhex(case["frame"])
        for i in range(len(raw)):
            bodies += reader.feed(raw[i : i + 1])
        assert bodies == [body]
        got = json_format.MessageToDict(decode_server_message(body))
    else:
        got = json_format.MessageToDict(pb.ClientMessage.FromString(body))
    assert got == case["json"]
    if case.get("canonical"):
        cls = pb.ServerMessage if case["type"] == "ServerMessage" else pb.ClientMessage
        again = json_format.ParseDict(case["json"], cls()).SerializeToString()
        assert again.hex() == body.hex()


SERVER = [c for c in DECODE if c["type"] == "ServerMessage"]


@pytest.mark.parametrize("case", SERVER, ids=[c["name"] for c in SERVER])
def test_decode_client(case: Dict[str, Any]) -> None:
    """The real client reads the frame over a socket."""
    kind = next(iter(case["json"]))
    raw = bytes.fromhex(case["frame"])
    result: Dict[str, Any] = {}

    async def script(peer: Peer) -> None:
        hello = await peer.read()
        assert hello is not None
        if kind == "helloReply":
            peer.send_raw(raw)
        else:
            await peer.handshake_reply()
        n = 0
        while True:
            req = await peer.read_request()
            if req is None:
                return
            n += 1
            if (kind == "response" and n == 2) or (kind == "error" and peer.index == 0):
                peer.send_raw(raw)
            else:
                result.setdefault("answered_on", []).append(peer.index)
                peer.respond(req.id)
            await peer.writer.drain()
            if kind == "error" and peer.index == 0:
                return  # the server closes after a ConnectionError

    async def main() -> None:
        async with FakeServer(script) as srv:
            sg = Slotgate("127.0.0.1", srv.port, ssl=False, deadline_ms=2000)
            if kind == "response":
                await sg.ping()  # handshake first, then the id of the case
                sg._next_id = int(case["json"]["response"].get("id", "0"))
                req = pb.Request(op=pb.OP_GET, keys=[b"k"])
                result["resp"] = await sg.request(req)
            elif kind == "helloReply":
                await sg.ping()
                result["info"] = sg.server_info
            else:
                try:
                    await sg.ping()
                except SlotgateError as err:
                    result["err"] = err
            await sg.aclose()

    asyncio.run(main())
    want = case["json"][kind]
    if kind == "response":
        assert json_format.MessageToDict(result["resp"]) == want
    elif kind == "helloReply":
        info = result["info"]
        assert info is not None
        assert info.server_version == want.get("serverVersion", "")
        lim = want.get("limits", {})
        assert info.limits.max_key_bytes == lim.get("maxKeyBytes", 0)
        assert info.limits.max_inflight == lim.get("maxInflight", 0)
        assert info.limits.max_frame_bytes == lim.get("maxFrameBytes", 0)
    else:
        code = want.get("code", "CODE_OK")
        expected = code[len("CODE_") :] if isinstance(code, str) else code_name(code)
        err: Optional[SlotgateError] = result.get("err")
        if expected == "SHUTTING_DOWN":
            # Never executed: resent on a new connection, which answers it.
            assert err is None and result["answered_on"] == [1]
        else:
            assert err is not None and err.code == expected
