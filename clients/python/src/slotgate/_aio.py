"""The asyncio client: connections, multiplexing, reconnect and resend.

Slotgate keeps up to pool_size TLS connections to one slotgate. Every call
gets a fresh request id, goes out on a ready connection with room under the
server's max_inflight (or waits in a queue), and is answered by id, in any
order. Frames written in one event-loop iteration go out in one write.

Failure rules (PROTOCOL.md sections 3 and 12):
- A ConnectionError SHUTTING_DOWN means every unanswered request on that
  connection was never read: they are resent on a new connection, under new
  ids, within their original deadline.
- Requests still in this client's output buffer when a connection dies never
  reached the server: they are resent too.
- Anything else that ends a connection (another ConnectionError, EOF, an I/O
  or TLS error, a server frame that does not decode or exceeds the client's
  cap) fails every request in flight on it with a typed error: their outcome
  is unknown, so they are not resent.
- Connects are retried with exponential backoff and jitter while calls are
  waiting; each call fails at its own deadline (Timeout), or at once on a
  handshake error that cannot heal (AuthFailed, UnsupportedVersion, a TLS
  certificate error).
"""

from __future__ import annotations

import asyncio
import collections
import random
import ssl as _ssl
from typing import (
    Any,
    Deque,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from . import _codec
from ._codec import to_bytes
from ._proto import slotgate_pb2 as pb
from .errors import (
    BadFrame,
    ClientClosed,
    ConnectionLost,
    InvalidArgument,
    KeyTooLarge,
    SlotgateError,
    Timeout,
    UnsupportedVersion,
    AuthFailed,
    FrameTooLarge,
    UnknownCode,
    ValueTooLarge,
    code_name,
    error_for_code,
)
from .types import (
    BatchError,
    Key,
    KeyResult,
    LeaseResult,
    Limits,
    MSetInput,
    ServerInfo,
    Value,
    Versioned,
)

__all__ = ["Slotgate"]

_OK = 0
_NOT_FOUND = 1
_NOT_APPLIED = 2
_LEASE_GRANTED = 3
_LEASE_WAIT = 4
_SHUTTING_DOWN = 106
_VERSION_CONFLICT = 209

# How _call checks a request against the announced limits: not at all (raw
# requests), fully, or not again because _msg already did.
_CHECK_NONE = 0
_CHECK_FULL = 1
_CHECK_PRE = 2

# Period of the client-side deadline sweep (see Slotgate._sweep).
_SWEEP_S = 0.025

# Handshake errors after which retrying the connect cannot help.
_FATAL_CONNECT = (AuthFailed, UnsupportedVersion, BadFrame, FrameTooLarge)


def _load_ssl(
    ssl_ca: Optional[str], ssl_cert: Optional[str], ssl_key: Optional[str]
) -> _ssl.SSLContext:
    """A client TLS context: TLS >= 1.2, server certificate and host name
    verified against ssl_ca (a PEM file path or PEM text; None = the system
    CAs), optional client certificate for mTLS."""
    if ssl_ca is not None and ssl_ca.lstrip().startswith("-----BEGIN"):
        ctx = _ssl.create_default_context(cadata=ssl_ca)
    else:
        ctx = _ssl.create_default_context(cafile=ssl_ca)
    ctx.minimum_version = _ssl.TLSVersion.TLSv1_2
    if ssl_cert is not None:
        ctx.load_cert_chain(ssl_cert, ssl_key)
    return ctx


class _Call:
    """One request from submission to answer; survives a resend."""

    __slots__ = ("msg", "fut", "deadline", "conn", "check")

    def __init__(
        self, msg: pb.ClientMessage, fut: "asyncio.Future[pb.Response]", check: bool, deadline: float
    ) -> None:
        self.msg = msg
        self.fut = fut
        self.check = check
        self.deadline = deadline  # loop.time() after which the client gives up
        self.conn: Optional[_Conn] = None


class _Conn(asyncio.Protocol):
    """One connection: frames out, frames in, pending calls by id."""

    def __init__(self, client: "Slotgate", loop: asyncio.AbstractEventLoop) -> None:
        self.client = client
        self.loop = loop
        self.transport: Optional[asyncio.Transport] = None
        self.reader = _codec.FrameReader(client.max_frame_bytes)
        self.pending: Dict[int, _Call] = {}
        self.out: List[bytes] = []
        self.out_calls: List[_Call] = []
        self.flush_scheduled = False
        self.ready = False
        self.closed = False
        self.max_inflight = 1
        self.limits: Optional[pb.Limits] = None
        self.info: Optional[ServerInfo] = None
        self.hello: "asyncio.Future[None]" = loop.create_future()

    # asyncio.Protocol callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(_codec.hello_frame(self.client.client_name, self.client.token))

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            bodies = self.reader.feed(data)
        except SlotgateError as err:
            self.fail(err, resend=False)
            return
        for body in bodies:
            try:
                msg = _codec.decode_server_message(body)
            except SlotgateError as err:
                self.fail(err, resend=False)
                return
            kind = msg.WhichOneof("msg")
            if kind == "response":
                self.on_response(msg.response)
            elif kind == "hello_reply":
                self.on_hello(msg.hello_reply)
            elif kind == "error":
                code = msg.error.code
                self.fail(error_for_code(code, msg.error.message), resend=code == _SHUTTING_DOWN)
                return
            # A frame with no known oneof member is from a newer server:
            # ignored, like unknown fields (PROTOCOL.md section 11).
            if self.closed:
                return

    def connection_lost(self, exc: Optional[Exception]) -> None:
        if not self.closed:
            reason = f": {exc}" if exc is not None else " by the server"
            self.fail(ConnectionLost("connection closed" + reason), resend=False)

    # frames in

    def on_hello(self, reply: pb.HelloReply) -> None:
        if self.ready:
            self.fail(BadFrame("second HelloReply"), resend=False)
            return
        lim = reply.limits
        self.limits = lim
        self.info = ServerInfo(
            server_name=reply.server_name,
            server_version=reply.server_version,
            protocol_version=reply.protocol_version,
            limits=Limits(
                max_frame_bytes=lim.max_frame_bytes,
                max_key_bytes=lim.max_key_bytes,
                max_value_bytes=lim.max_value_bytes,
                max_batch_keys=lim.max_batch_keys,
                max_inflight=lim.max_inflight,
                default_deadline_ms=lim.default_deadline_ms,
                max_batch_bytes=lim.max_batch_bytes,
            ),
        )
        cap = lim.max_inflight or 1024
        if self.client.max_inflight is not None:
            cap = min(cap, self.client.max_inflight)
        self.max_inflight = max(1, cap)
        self.ready = True
        if not self.hello.done():
            self.hello.set_result(None)

    def on_response(self, resp: pb.Response) -> None:
        if not self.ready:
            self.fail(BadFrame("Response before HelloReply"), resend=False)
            return
        call = self.pending.pop(resp.id, None)
        if call is None:
            return  # answer to a call that already timed out
        fut = call.fut
        if not fut.done():
            fut.set_result(resp)
        client = self.client
        if client._waiting:
            client._drain_into(self)

    # frames out

    def send(self, call: _Call) -> None:
        client = self.client
        rid = client._next_id
        client._next_id = rid + 1
        req = call.msg.request
        req.id = rid
        self.pending[rid] = call
        call.conn = self
        body = call.msg.SerializeToString()
        self.out.append(len(body).to_bytes(4, "big") + body)
        self.out_calls.append(call)
        if not self.flush_scheduled:
            self.flush_scheduled = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        self.flush_scheduled = False
        if self.closed or not self.out:
            return
        data = b"".join(self.out) if len(self.out) > 1 else self.out[0]
        self.out.clear()
        self.out_calls.clear()
        assert self.transport is not None
        self.transport.write(data)

    def has_room(self) -> bool:
        return self.ready and not self.closed and len(self.pending) < self.max_inflight

    # teardown

    def fail(self, err: SlotgateError, resend: bool) -> None:
        """Close this connection. Calls that never reached the server (still
        in self.out, or all of them when resend is True) go back to the
        client's queue; the others fail with err."""
        if self.closed:
            return
        self.closed = True
        client = self.client
        unsent = set(id(c) for c in self.out_calls)
        self.out.clear()
        self.out_calls.clear()
        calls = list(self.pending.values())
        self.pending.clear()
        if not self.hello.done():
            self.hello.set_exception(err)
            self.hello.exception()  # retrieved: the connect loop reads it
        requeue: List[_Call] = []
        for call in calls:
            if call.fut.done():
                continue
            call.conn = None
            if resend or id(call) in unsent:
                requeue.append(call)
            else:
                call.fut.set_exception(err)
        if self.transport is not None:
            self.transport.close()
        client._conn_closed(self, requeue)


class Slotgate:
    """asyncio client for slotgate.

        async with Slotgate(host="127.0.0.1", port=7420, ssl_ca="ca.pem",
                            token="secret") as sg:
            await sg.set("{user:1}:name", "Ada", keyspace="session")
            name = await sg.get("{user:1}:name", keyspace="session")

    Methods take keys and values as bytes or str (str is sent as UTF-8) and
    return bytes. Every method takes keyspace= (default: the client's) and
    deadline_ms= (default: the client's, else the server's). A call fails
    with Timeout if no answer arrives within its deadline plus
    deadline_margin_ms (the server's default deadline when none is given;
    30 s for invalidate).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 7420,
        *,
        ssl: Union[bool, _ssl.SSLContext] = True,
        ssl_ca: Optional[str] = None,
        ssl_cert: Optional[str] = None,
        ssl_key: Optional[str] = None,
        server_hostname: Optional[str] = None,
        token: Union[str, bytes, None] = None,
        client_name: str = "slotgate-python",
        keyspace: str = "",
        pool_size: int = 1,
        deadline_ms: Optional[int] = None,
        deadline_margin_ms: int = 500,
        connect_timeout: float = 5.0,
        max_inflight: Optional[int] = None,
        max_frame_bytes: int = _codec.DEFAULT_MAX_SERVER_FRAME,
        reconnect_backoff_ms: int = 25,
        reconnect_backoff_max_ms: int = 1000,
    ) -> None:
        if pool_size < 1:
            raise ValueError("pool_size must be >= 1")
        self.host = host
        self.port = port
        if isinstance(ssl, _ssl.SSLContext):
            self._ssl: Optional[_ssl.SSLContext] = ssl
        elif ssl:
            self._ssl = _load_ssl(ssl_ca, ssl_cert, ssl_key)
        else:
            self._ssl = None
        self.server_hostname = server_hostname
        self.token: Optional[bytes] = to_bytes(token) if token is not None else None
        self.client_name = client_name
        self.keyspace = keyspace
        self.pool_size = pool_size
        self.deadline_ms = deadline_ms
        self.deadline_margin_ms = deadline_margin_ms
        self.connect_timeout = connect_timeout
        self.max_inflight = max_inflight
        self.max_frame_bytes = max_frame_bytes
        self.reconnect_backoff_ms = reconnect_backoff_ms
        self.reconnect_backoff_max_ms = reconnect_backoff_max_ms

        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._conns: List[_Conn] = []
        self._rr = 0
        self._waiting: Deque[_Call] = collections.deque()
        self._connector: Optional["asyncio.Task[None]"] = None
        self._connect_error: Optional[SlotgateError] = None
        self._limits: Optional[pb.Limits] = None
        # The same limits as plain ints (0 = unlimited read as "no limit")
        # for the fast single-key check of _msg.
        self._max_key = 0
        self._max_value = 0
        self._max_single = 0
        self._sweeper: Optional[asyncio.TimerHandle] = None
        self._info: Optional[ServerInfo] = None
        self._next_id = 1
        self._closed = False
        self.resent = 0  # requests resent after SHUTTING_DOWN or unsent at a close
        self.connects = 0  # successful handshakes

    # context manager and lifecycle

    async def __aenter__(self) -> "Slotgate":
        await self.connect()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def connect(self) -> ServerInfo:
        """Open the first connection now (calls otherwise connect lazily).
        Raises the handshake error (AuthFailed, ...) or ConnectionLost; no
        retry here."""
        if self._closed:
            raise ClientClosed("client closed")
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        if not self._conns:
            conn = await self._open()
            self._conns.append(conn)
            self.connects += 1
        assert self._info is not None
        return self._info

    @property
    def server_info(self) -> Optional[ServerInfo]:
        """HelloReply of the latest connection (None before the first)."""
        return self._info

    async def aclose(self) -> None:
        """Wait for calls in flight to settle, then close every connection.
        Calls made after aclose() raise ClientClosed."""
        if self._closed:
            return
        self._closed = True
        futs = [c.fut for conn in self._conns for c in conn.pending.values()]
        futs += [c.fut for c in self._waiting]
        if futs:
            await asyncio.gather(*futs, return_exceptions=True)
        if self._connector is not None:
            self._connector.cancel()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for conn in list(self._conns):
            conn.fail(ClientClosed("client closed"), resend=False)
        self._conns.clear()

    close = aclose

    # the request path

    def _timeout_s(self, op: int, deadline_ms: Optional[int]) -> float:
        ms = deadline_ms if deadline_ms is not None else self.deadline_ms
        if not ms:
            if op == pb.OP_INVALIDATE:
                ms = 30000
            else:
                lim = self._limits
                ms = (lim.default_deadline_ms if lim is not None else 0) or 1000
        return (ms + self.deadline_margin_ms) / 1000.0

    def _set_limits(self, lim: Optional[pb.Limits]) -> None:
        self._limits = lim
        if lim is not None:
            self._max_key = lim.max_key_bytes
            self._max_value = lim.max_value_bytes
            # Past this many key + value bytes a single-key request might not
            # fit max_frame_bytes: _msg then runs the full check.
            self._max_single = max(0, lim.max_frame_bytes - 256) if lim.max_frame_bytes else 1 << 62

    async def _call(self, msg: pb.ClientMessage, deadline_ms: Optional[int], check: int = _CHECK_FULL) -> pb.Response:
        if self._closed:
            raise ClientClosed("client closed")
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        req = msg.request
        if deadline_ms is None:
            deadline_ms = self.deadline_ms
        if deadline_ms:
            req.deadline_ms = deadline_ms
        lim = self._limits
        if check == _CHECK_FULL and lim is not None:
            err = _codec.check_request(req, lim)
            if err is not None:
                raise err
        fut: "asyncio.Future[pb.Response]" = loop.create_future()
        # Before the first HelloReply the limits are checked when the call
        # leaves the queue (_drain_into).
        call = _Call(msg, fut, check != _CHECK_NONE and lim is None, loop.time() + self._timeout_s(req.op, deadline_ms))
        if self._sweeper is None:
            self._sweeper = loop.call_later(_SWEEP_S, self._sweep)
        conn = self._pick()
        if conn is not None:
            conn.send(call)
        else:
            self._waiting.append(call)
            self._ensure_connector()
        return await fut

    def _pick(self) -> Optional[_Conn]:
        conns = self._conns
        n = len(conns)
        if n == 1:
            c = conns[0]
            if len(c.pending) < c.max_inflight and not c.closed:
                return c
        else:
            for _ in range(n):
                self._rr = (self._rr + 1) % n
                c = conns[self._rr]
                if len(c.pending) < c.max_inflight and not c.closed:
                    return c
        return None

    def _sweep(self) -> None:
        """Fail the calls whose client-side deadline has passed. One timer
        per client, every _SWEEP_S while calls are outstanding, instead of a
        timer per call (a call may so settle up to _SWEEP_S late)."""
        self._sweeper = None
        loop = self._loop
        assert loop is not None
        now = loop.time()
        outstanding = False
        expired: List[_Call] = []
        for call in self._waiting:
            if not call.fut.done():
                outstanding = True
                if call.deadline <= now:
                    expired.append(call)
        for conn in self._conns:
            for call in conn.pending.values():
                outstanding = True
                if call.deadline <= now:
                    expired.append(call)
        for call in expired:
            self._expire(call)
        if outstanding:
            self._sweeper = loop.call_later(_SWEEP_S, self._sweep)

    def _expire(self, call: _Call) -> None:
        if call.fut.done():
            return
        conn = call.conn
        if conn is not None:
            conn.pending.pop(call.msg.request.id, None)
        call.conn = None
        err: SlotgateError
        last = self._connect_error
        if conn is None and last is not None:
            text = f"no connection before the deadline: {last.message}"
            err = UnknownCode(last.number or 0, text) if isinstance(last, UnknownCode) else type(last)(text)
        else:
            err = Timeout("client deadline passed with no answer")
        call.fut.set_exception(err)
        if conn is not None and self._waiting:
            self._drain_into(conn)

    def _drain_into(self, conn: _Conn) -> None:
        waiting = self._waiting
        while waiting and conn.has_room():
            call = waiting.popleft()
            if call.fut.done():
                continue
            if call.check and conn.limits is not None:
                err = _codec.check_request(call.msg.request, conn.limits)
                if err is not None:
                    call.fut.set_exception(err)
                    continue
            conn.send(call)

    def _conn_closed(self, conn: _Conn, requeue: List[_Call]) -> None:
        try:
            self._conns.remove(conn)
        except ValueError:
            pass
        if requeue:
            self.resent += len(requeue)
            for call in reversed(requeue):
                self._waiting.appendleft(call)
        if self._waiting and not self._closed:
            self._ensure_connector()

    def _ensure_connector(self) -> None:
        if self._connector is None or self._connector.done():
            assert self._loop is not None
            self._connector = self._loop.create_task(self._connect_loop())

    async def _connect_loop(self) -> None:
        """Open connections while calls wait and the pool has room; back off
        with jitter between failed attempts."""
        attempt = 0
        waiting = self._waiting
        while not self._closed:
            while waiting and waiting[0].fut.done():
                waiting.popleft()
            for c in list(self._conns):
                self._drain_into(c)
            if not any(not c.fut.done() for c in waiting):
                waiting.clear()
                return
            if len(self._conns) >= self.pool_size:
                return  # queued calls go out as answers free room
            try:
                conn = await self._open()
            except asyncio.CancelledError:
                raise
            except SlotgateError as err:
                self._connect_error = err
                if isinstance(err, _FATAL_CONNECT) or not err.retriable:
                    self._fail_waiting(err)
                    return
            except OSError as exc:  # refused, reset, TLS errors
                lost = ConnectionLost(f"cannot connect to {self.host}:{self.port}: {exc}")
                self._connect_error = lost
                if isinstance(exc, _ssl.SSLCertVerificationError):
                    lost.retriable = False
                    self._fail_waiting(lost)
                    return
            else:
                attempt = 0
                self._connect_error = None
                self._conns.append(conn)
                self.connects += 1
                continue
            attempt += 1
            cap = min(self.reconnect_backoff_max_ms, self.reconnect_backoff_ms * (1 << min(attempt, 10)))
            await asyncio.sleep(random.uniform(cap / 2, cap) / 1000.0)

    def _fail_waiting(self, err: SlotgateError) -> None:
        while self._waiting:
            call = self._waiting.popleft()
            if not call.fut.done():
                call.fut.set_exception(err)

    async def _open(self) -> _Conn:
        loop = self._loop
        assert loop is not None
        conn = _Conn(self, loop)
        hostname = (self.server_hostname or self.host) if self._ssl is not None else None
        try:
            await asyncio.wait_for(
                loop.create_connection(
                    lambda: conn,
                    self.host,
                    self.port,
                    ssl=self._ssl,
                    server_hostname=hostname,
                ),
                self.connect_timeout,
            )
            await asyncio.wait_for(conn.hello, self.connect_timeout)
        except asyncio.TimeoutError:
            conn.fail(ConnectionLost("connect or handshake timed out"), resend=False)
            raise ConnectionLost(
                f"no HelloReply from {self.host}:{self.port} within {self.connect_timeout} s"
            ) from None
        except BaseException:
            if conn.transport is not None and not conn.closed:
                conn.closed = True
                conn.transport.close()
            raise
        self._set_limits(conn.limits)
        self._info = conn.info
        return conn

    # low-level request building

    def _msg(
        self,
        op: int,
        keyspace: Optional[str],
        key: Optional[Key] = None,
        value: Optional[Value] = None,
    ) -> pb.ClientMessage:
        """A request message; with key (and value), the size limits are
        checked here when known, so such calls pass _CHECK_PRE to _call."""
        msg = pb.ClientMessage()
        req = msg.request
        req.op = op  # type: ignore[assignment]
        ks = self.keyspace if keyspace is None else keyspace
        if ks:
            req.keyspace = ks
        if key is None:
            return msg
        kb = key if type(key) is bytes else to_bytes(key)
        req.keys.append(kb)
        vb = b""
        if value is not None:
            vb = value if type(value) is bytes else to_bytes(value)
            req.values.append(vb)
        if self._limits is not None:
            if self._max_key and len(kb) > self._max_key:
                raise KeyTooLarge(f"key of {len(kb)} bytes exceeds max_key_bytes {self._max_key}")
            if self._max_value and len(vb) > self._max_value:
                raise ValueTooLarge(f"value of {len(vb)} bytes exceeds max_value_bytes {self._max_value}")
            if len(kb) + len(vb) > self._max_single:
                err = _codec.check_request(req, self._limits)
                if err is not None:
                    raise err
        return msg

    async def request(self, request: pb.Request) -> pb.Response:
        """Send a Request as given (its id is replaced) with no local checks;
        return the Response whatever its code."""
        msg = pb.ClientMessage()
        msg.request.CopyFrom(request)
        return await self._call(msg, request.deadline_ms or None, check=_CHECK_NONE)

    # single-key operations

    async def ping(self, *, deadline_ms: Optional[int] = None) -> bool:
        """PING; True when the server answers."""
        resp = await self._call(self._msg(pb.OP_PING, ""), deadline_ms, _CHECK_PRE)
        if resp.code != _OK:
            raise error_for_code(resp.code, resp.message)
        return True

    async def get(
        self, key: Key, *, keyspace: Optional[str] = None, deadline_ms: Optional[int] = None
    ) -> Optional[bytes]:
        """The value of key, or None on a miss."""
        resp = await self._call(self._msg(pb.OP_GET, keyspace, key), deadline_ms, _CHECK_PRE)
        code = resp.code
        if code == _OK:
            return resp.value
        if code == _NOT_FOUND:
            return None
        raise error_for_code(code, resp.message)

    async def set(
        self,
        key: Key,
        value: Value,
        *,
        ttl_ms: Optional[int] = None,
        nx: bool = False,
        xx: bool = False,
        keyspace: Optional[str] = None,
        deadline_ms: Optional[int] = None,
    ) -> bool:
        """Store value. ttl_ms None/0 = the keyspace default. nx: only if
        absent; xx: only if present. True if stored, False if the condition
        was not met (NOT_APPLIED)."""
        if nx and xx:
            raise InvalidArgument("nx and xx are exclusive")
        msg = self._msg(pb.OP_SET, keyspace, key, value)
        req = msg.request
        if ttl_ms:
            req.ttl_ms = ttl_ms
        if nx:
            req.condition = pb.COND_NX
        elif xx:
            req.condition = pb.COND_XX
        resp = await self._call(msg, deadline_ms, _CHECK_PRE)
        code = resp.code
        if code == _OK:
            return True
        if code == _NOT_APPLIED:
            return False
        raise error_for_code(code, resp.message)

    async def delete(
        self, key: Key, *, keyspace: Optional[str] = None, deadline_ms: Optional[int] = None
    ) -> int:
        """Delete key; the number of keys removed (0 or 1)."""
        resp = await self._call(self._msg(pb.OP_DELETE, keyspace, key), deadline_ms, _CHECK_PRE)
        if resp.code == _OK:
            return int(resp.count) or 1
        if resp.code == _NOT_FOUND:
            return 0
        raise error_for_code(resp.code, resp.message)

    async def expire(
        self,
        key: Key,
        ttl_ms: int,
        *,
        keyspace: Optional[str] = None,
        deadline_ms: Optional[int] = None,
    ) -> bool:
        """Set key's TTL; False if the key does not exist."""
        msg = self._msg(pb.OP_EXPIRE, keyspace, key)
        msg.request.ttl_ms = ttl_ms
        resp = await self._call(msg, deadline_ms, _CHECK_PRE)
        if resp.code == _OK:
            return True
        if resp.code == _NOT_FOUND:
            return False
        raise error_for_code(resp.code, resp.message)

    # batches

    @staticmethod
    def _results(resp: pb.Response, n: int) -> List[KeyResult]:
        if resp.code != _OK:
            raise error_for_code(resp.code, resp.message)
        if len(resp.results) != n:
            raise BadFrame(f"batch answer has {len(resp.results)} results for {n} keys")
        out: List[KeyResult] = []
        for r in resp.results:
            code = r.code
            if code == _OK:
                out.append(KeyResult("OK", r.value))
            elif code in (_NOT_FOUND, _NOT_APPLIED):
                out.append(KeyResult(code_name(code)))
            else:
                err = error_for_code(code, r.message)
                out.append(KeyResult(err.code, None, r.message, err))
        return out

    @staticmethod
    def _raise_failed(results: List[KeyResult]) -> None:
        for r in results:
            if r.error is not None:
                raise BatchError(results)

    async def mget_results(
        self, keys: Sequence[Key], *, keyspace: Optional[str] = None, deadline_ms: Optional[int] = None
    ) -> List[KeyResult]:
        """MGET with every key's outcome (never raises for a single key)."""
        msg = self._msg(pb.OP_MGET, keyspace)
        msg.request.keys.extend(to_bytes(k) for k in keys)
        resp = await self._call(msg, deadline_ms)
        return self._results(resp, len(keys))

    async def mget(
        self, keys: Sequence[Key], *, keyspace: Optional[str] = None, deadline_ms: Optional[int] = None
    ) -> List[Optional[bytes]]:
        """Values in key order, None for misses. If some keys failed (e.g.
        their shard is down) raises BatchError, whose .results has the
        values of the others."""
        results = await self.mget_results(keys, keyspace=keyspace, deadline_ms=deadline_ms)
        self._raise_failed(results)
        return [r.value if r.code == "OK" else None for r in results]

    async def mset_results(
        self,
        items: MSetInput,
        *,
        ttl_ms: Optional[int] = None,
        nx: bool = False,
        xx: bool = False,
        keyspace: Optional[str] = None,
        deadline_ms: Optional[int] = None,
    ) -> List[KeyResult]:
        """MSET with every key's outcome."""
        if nx and xx:
            raise InvalidArgument("nx and xx are exclusive")
        msg = self._msg(pb.OP_MSET, keyspace)
        req = msg.request
        pairs: Iterable[Any] = items.items() if isinstance(items, Mapping) else items
        ttls: List[int] = []
        for item in pairs:
            req.keys.append(to_bytes(item[0]))
            req.values.append(to_bytes(item[1]))
            ttls.append((item[2] or 0) if len(item) > 2 else 0)
        if any(ttls):
            req.ttls_ms.extend(ttls)
        if ttl_ms:
            req.ttl_ms = ttl_ms
        if nx:
            req.condition = pb.COND_NX
        elif xx:
            req.condition = pb.COND_XX
        resp = await self._call(msg, deadline_ms)
        return self._results(resp, len(req.keys))

    async def mset(
        self,
        items: MSetInput,
        *,
        ttl_ms: Optional[int] = None,
        nx: bool = False,
        xx: bool = False,
        keyspace: Optional[str] = None,
        deadline_ms: Optional[int] = None,
    ) -> List[bool]:
        """Store several values (not atomically). items: a mapping, or
        (key, value) / (key, value, ttl_ms) tuples. Returns, per key, True if
        stored and False if nx/xx was not met; BatchError if some failed."""
        results = await self.mset_results(
            items, ttl_ms=ttl_ms, nx=nx, xx=xx, keyspace=keyspace, deadline_ms=deadline_ms
        )
        self._raise_failed(results)
        return [r.code == "OK" for r in results]

    async def mdel_results(
        self, keys: Sequence[Key], *, keyspace: Optional[str] = None, deadline_ms: Optional[int] = None
    ) -> Tuple[int, List[KeyResult]]:
        """MDELETE: (keys removed, every key's outcome)."""
        msg = self._msg(pb.OP_MDELETE, keyspace)
        msg.request.keys.extend(to_bytes(k) for k in keys)
        resp = await self._call(msg, deadline_ms)
        return int(resp.count), self._results(resp, len(keys))

    async def mdel(
        self, keys: Sequence[Key], *, keyspace: Optional[str] = None, deadline_ms: Optional[int] = None
    ) -> int:
        """Delete several keys; the number removed. BatchError if some failed."""
        count, results = await self.mdel_results(keys, keyspace=keyspace, deadline_ms=deadline_ms)
        self._raise_failed(results)
        return count

    # domain operations

    async def invalidate(
        self, pattern: Key, *, keyspace: Optional[str] = None, deadline_ms: Optional[int] = None
    ) -> int:
        """Delete every key of the keyspace matching the Redis glob pattern;
        the number removed. On failure the error's .count holds the keys
        removed before it."""
        msg = self._msg(pb.OP_INVALIDATE, keyspace)
        msg.request.pattern = to_bytes(pattern)
        resp = await self._call(msg, deadline_ms)
        if resp.code == _OK:
            return int(resp.count)
        err = error_for_code(resp.code, resp.message)
        err.count = int(resp.count)  # type: ignore[attr-defined]
        raise err

    async def get_or_lease(
        self,
        key: Key,
        *,
        ttl_ms: Optional[int] = None,
        keyspace: Optional[str] = None,
        deadline_ms: Optional[int] = None,
    ) -> LeaseResult:
        """Read key, or take the lease to fill it (ttl_ms = lease TTL,
        default 10 s). See LeaseResult."""
        msg = self._msg(pb.OP_GET_OR_LEASE, keyspace, key)
        if ttl_ms:
            msg.request.ttl_ms = ttl_ms
        resp = await self._call(msg, deadline_ms, _CHECK_PRE)
        code = resp.code
        if code == _OK:
            return LeaseResult("OK", value=resp.value, version=resp.version)
        if code == _LEASE_GRANTED:
            return LeaseResult("LEASE_GRANTED", lease=resp.lease)
        if code == _LEASE_WAIT:
            return LeaseResult("LEASE_WAIT", retry_after_ms=resp.retry_after_ms)
        raise error_for_code(code, resp.message)

    async def set_with_lease(
        self,
        key: Key,
        value: Value,
        lease: Union[bytes, str],
        *,
        ttl_ms: Optional[int] = None,
        keyspace: Optional[str] = None,
        deadline_ms: Optional[int] = None,
    ) -> None:
        """Fill a key whose lease this caller holds; LeaseInvalid if the
        lease is no longer the key's."""
        msg = self._msg(pb.OP_SET_WITH_LEASE, keyspace, key, value)
        msg.request.lease = to_bytes(lease)
        if ttl_ms:
            msg.request.ttl_ms = ttl_ms
        resp = await self._call(msg, deadline_ms)
        if resp.code != _OK:
            raise error_for_code(resp.code, resp.message)

    async def get_versioned(
        self, key: Key, *, keyspace: Optional[str] = None, deadline_ms: Optional[int] = None
    ) -> Optional[Versioned]:
        """The value and its version (0 = unversioned), or None on a miss."""
        resp = await self._call(self._msg(pb.OP_GET_VERSIONED, keyspace, key), deadline_ms, _CHECK_PRE)
        if resp.code == _OK:
            return Versioned(resp.value, resp.version)
        if resp.code == _NOT_FOUND:
            return None
        raise error_for_code(resp.code, resp.message)

    async def set_versioned(
        self,
        key: Key,
        value: Value,
        version: int,
        *,
        ttl_ms: Optional[int] = None,
        keyspace: Optional[str] = None,
        deadline_ms: Optional[int] = None,
    ) -> int:
        """Compare-and-set: store value if the stored version is `version`
        (0 = absent or unversioned); returns the new version. Raises
        VersionConflict with .version = the current one otherwise."""
        msg = self._msg(pb.OP_SET_VERSIONED, keyspace, key, value)
        if version:
            msg.request.version = version
        if ttl_ms:
            msg.request.ttl_ms = ttl_ms
        resp = await self._call(msg, deadline_ms, _CHECK_PRE)
        if resp.code == _OK:
            return int(resp.version)
        if resp.code == _VERSION_CONFLICT:
            raise error_for_code(resp.code, resp.message, version=int(resp.version))
        raise error_for_code(resp.code, resp.message)

    async def stats(self, *, deadline_ms: Optional[int] = None) -> Dict[str, int]:
        """The server's counters (PROTOCOL.md section 5, STATS)."""
        resp = await self._call(self._msg(pb.OP_STATS, ""), deadline_ms, _CHECK_PRE)
        if resp.code != _OK:
            raise error_for_code(resp.code, resp.message)
        return dict(resp.stats)
