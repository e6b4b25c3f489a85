"""A scripted slotgate peer on loopback (plaintext) for tests that need the
server to misbehave on cue: undecodable or oversize frames, SHUTTING_DOWN
with requests unanswered, silence, out-of-order answers, or exact frames
from the golden vectors. Each accepted connection runs `script`."""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, List, Optional

from slotgate._proto import slotgate_pb2 as pb

DEFAULT_LIMITS = dict(
    max_frame_bytes=8388608,
    max_key_bytes=1024,
    max_value_bytes=4194304,
    max_batch_keys=1000,
    max_inflight=1024,
    default_deadline_ms=1000,
    max_batch_bytes=8388608,
)


class Peer:
    """One accepted connection, seen from the server side."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int) -> None:
        self.reader = reader
        self.writer = writer
        self.index = index

    async def read_raw(self) -> Optional[bytes]:
        """One frame body, or None at EOF."""
        try:
            head = await self.reader.readexactly(4)
            return await self.reader.readexactly(int.from_bytes(head, "big"))
        except (asyncio.IncompleteReadError, ConnectionError):
            return None

    async def read(self) -> Optional[pb.ClientMessage]:
        body = await self.read_raw()
        if body is None:
            return None
        msg = pb.ClientMessage()
        msg.ParseFromString(body)
        return msg

    async def read_request(self) -> Optional[pb.Request]:
        msg = await self.read()
        return None if msg is None else msg.request

    def send(self, msg: pb.ServerMessage) -> None:
        body = msg.SerializeToString()
        self.writer.write(len(body).to_bytes(4, "big") + body)

    def send_raw(self, frame: bytes) -> None:
        self.writer.write(frame)

    def respond(self, rid: int, code: int = 0, **fields: object) -> None:
        msg = pb.ServerMessage()
        msg.response.id = rid
        msg.response.code = code  # type: ignore[assignment]
        for k, v in fields.items():
            setattr(msg.response, k, v)
        self.send(msg)

    def error(self, code: int, message: str = "") -> None:
        msg = pb.ServerMessage()
        msg.error.code = code  # type: ignore[assignment]
        msg.error.message = message
        self.send(msg)

    async def handshake(self, **limits: int) -> pb.Hello:
        """Read Hello, answer HelloReply with default (or given) limits."""
        msg = await self.read()
        assert msg is not None and msg.WhichOneof("msg") == "hello"
        await self.handshake_reply(**limits)
        return msg.hello

    async def handshake_reply(self, **limits: int) -> None:
        """Send HelloReply with default (or given) limits."""
        reply = pb.ServerMessage()
        reply.hello_reply.protocol_version = 1
        reply.hello_reply.server_version = "fake"
        reply.hello_reply.server_name = "slotgate"
        lim = dict(DEFAULT_LIMITS)
        lim.update(limits)
        for k, v in lim.items():
            setattr(reply.hello_reply.limits, k, v)
        self.send(reply)
        await self.writer.drain()

    def close(self) -> None:
        self.writer.close()


Script = Callable[[Peer], Awaitable[None]]


class FakeServer:
    """async with FakeServer(script) as srv: connect to 127.0.0.1:srv.port."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.port = 0
        self.accepted = 0
        self.peers: List[Peer] = []
        self._server: Optional[asyncio.base_events.Server] = None
        self._tasks: List["asyncio.Task[None]"] = []

    async def _on_conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = Peer(reader, writer, self.accepted)
        self.accepted += 1
        self.peers.append(peer)
        try:
            await self.script(peer)
        finally:
            writer.close()

    async def __aenter__(self) -> "FakeServer":
        self._server = await asyncio.start_server(self._on_conn, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for p in self.peers:
            p.writer.close()
        await self._server.wait_closed()
