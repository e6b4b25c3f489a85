"""In-memory fake of slotgate, for unit tests of code that uses the client.

MemoryBackend executes Requests the way slotgate does (PROTOCOL.md sections
4-6: validation order, keyspaces with prefixes and TTL policies, NX/XX,
leases, versions, INVALIDATE globs, per-keyspace STATS) against a dict, with
TTLs on a monotonic clock. MemorySlotgate is the asyncio client with its
transport replaced by a MemoryBackend, so every typed method, local limit
check and result type is the real client's. Several clients may share one
backend (as several processes share one proxy).

Not emulated: compression (invisible to clients), replicas, shards and
their failures, connection errors, and the server's own waiting inside
GET_OR_LEASE (the fake answers LEASE_WAIT at once with retry_after_ms).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Optional

from . import _aio
from ._codec import check_request
from ._proto import slotgate_pb2 as pb
from .errors import ClientClosed
from .types import Limits, ServerInfo

__all__ = ["KeyspaceConfig", "MemoryBackend", "MemorySlotgate", "DEFAULT_KEYSPACES"]

_U64 = 1 << 64


@dataclass(frozen=True)
class KeyspaceConfig:
    """One keyspace of the fake (the server config's keyspaces.<name>)."""

    prefix: str
    default_ttl_ms: int = 0
    max_ttl_ms: int = 0
    max_value_bytes: int = 0


# The keyspaces of deploy/local/slotgate.yaml and the conformance server.
DEFAULT_KEYSPACES: Dict[str, KeyspaceConfig] = {
    "": KeyspaceConfig(""),
    "session": KeyspaceConfig("session:", 3600000, 86400000),
    "room": KeyspaceConfig("room:", 1800000, 86400000),
    "asset": KeyspaceConfig("asset:", 3600000),
    "gamesystem": KeyspaceConfig("gamesystem:", 7200000),
}

DEFAULT_LIMITS = Limits(
    max_frame_bytes=8 * 1024 * 1024,
    max_key_bytes=1024,
    max_value_bytes=4 * 1024 * 1024,
    max_batch_keys=1000,
    max_inflight=1024,
    default_deadline_ms=1000,
    max_batch_bytes=8 * 1024 * 1024,
)

_LEASE_TTL_MS = 10000
_WRITE_TTL_OPS = frozenset(
    (pb.OP_SET, pb.OP_MSET, pb.OP_SET_WITH_LEASE, pb.OP_SET_VERSIONED, pb.OP_EXPIRE, pb.OP_DELETE, pb.OP_MDELETE)
)
_ONE_KEY = frozenset((pb.OP_GET, pb.OP_DELETE, pb.OP_GET_OR_LEASE, pb.OP_GET_VERSIONED, pb.OP_EXPIRE))
_KEY_VALUE = frozenset((pb.OP_SET, pb.OP_SET_VERSIONED, pb.OP_SET_WITH_LEASE))
_BATCH = frozenset((pb.OP_MGET, pb.OP_MSET, pb.OP_MDELETE))
_KNOWN = _ONE_KEY | _KEY_VALUE | _BATCH | {pb.OP_PING, pb.OP_STATS, pb.OP_INVALIDATE}


class _Entry:
    __slots__ = ("value", "expires", "version", "lease")

    def __init__(self, value: bytes, expires: Optional[float], version: int = 0, lease: Optional[bytes] = None) -> None:
        self.value = value
        self.expires = expires
        self.version = version
        self.lease = lease  # set: the key holds a lease marker with this token


def glob_match(pattern: bytes, text: bytes) -> bool:
    """Redis's glob (stringmatchlen): * ? [abc] [^a-z] and \\ escapes."""
    p, t = 0, 0
    np, nt = len(pattern), len(text)
    star_p, star_t = -1, -1
    while t < nt:
        if p < np:
            c = pattern[p]
            if c == 0x2A:  # *
                star_p, star_t = p, t
                p += 1
                continue
            if c == 0x3F:  # ?
                p += 1
                t += 1
                continue
            if c == 0x5B:  # [
                q = p + 1
                negate = q < np and pattern[q] == 0x5E
                if negate:
                    q += 1
                matched = False
                ch = text[t]
                while q < np and pattern[q] != 0x5D:
                    if pattern[q] == 0x5C and q + 1 < np:
                        q += 1
                        if pattern[q] == ch:
                            matched = True
                        q += 1
                    elif q + 2 < np and pattern[q + 1] == 0x2D and pattern[q + 2] != 0x5D:
                        lo, hi = pattern[q], pattern[q + 2]
                        if lo > hi:
                            lo, hi = hi, lo
                        if lo <= ch <= hi:
                            matched = True
                        q += 3
                    else:
                        if pattern[q] == ch:
                            matched = True
                        q += 1
                if matched != negate:
                    p = q + 1
                    t += 1
                    continue
            else:
                if c == 0x5C and p + 1 < np:
                    p += 1
                    c = pattern[p]
                if c == text[t]:
                    p += 1
                    t += 1
                    continue
        if star_p >= 0:
            p = star_p + 1
            star_t += 1
            t = star_t
            continue
        return False
    while p < np and pattern[p] == 0x2A:
        p += 1
    return p == np


class MemoryBackend:
    """The fake server: execute(Request) -> Response, thread-safe."""

    def __init__(
        self,
        keyspaces: Optional[Mapping[str, KeyspaceConfig]] = None,
        limits: Limits = DEFAULT_LIMITS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.keyspaces: Dict[str, KeyspaceConfig] = dict(DEFAULT_KEYSPACES if keyspaces is None else keyspaces)
        self.keyspaces.setdefault("", KeyspaceConfig(""))
        self.limits = limits
        self.clock = clock
        self._data: Dict[bytes, _Entry] = {}
        self._stats: Dict[str, int] = {}
        self._lock = threading.Lock()

    def hello_limits(self) -> pb.Limits:
        lim = self.limits
        return pb.Limits(
            max_frame_bytes=lim.max_frame_bytes,
            max_key_bytes=lim.max_key_bytes,
            max_value_bytes=lim.max_value_bytes,
            max_batch_keys=lim.max_batch_keys,
            max_inflight=lim.max_inflight,
            default_deadline_ms=lim.default_deadline_ms,
            max_batch_bytes=lim.max_batch_bytes,
        )

    def pttl(self, redis_key: bytes) -> int:
        """PTTL of a stored key (prefix included): -2 absent, -1 no TTL."""
        with self._lock:
            e = self._live(redis_key)
            if e is None:
                return -2
            if e.expires is None:
                return -1
            return max(0, int((e.expires - self.clock()) * 1000))

    def flush(self) -> None:
        with self._lock:
            self._data.clear()

    # helpers (lock held)

    def _live(self, rk: bytes) -> Optional[_Entry]:
        e = self._data.get(rk)
        if e is not None and e.expires is not None and e.expires <= self.clock():
            del self._data[rk]
            return None
        return e

    def _bump(self, ks: str, counter: str, n: int = 1) -> None:
        name = f"keyspace.{ks or 'default'}.{counter}"
        self._stats[name] = self._stats.get(name, 0) + n

    def _expiry(self, ttl_ms: int) -> Optional[float]:
        return self.clock() + ttl_ms / 1000.0 if ttl_ms > 0 else None

    @staticmethod
    def _err(resp: pb.Response, code: int, message: str) -> pb.Response:
        resp.code = code  # type: ignore[assignment]
        resp.message = message
        return resp

    def _validate(self, req: pb.Request, resp: pb.Response) -> Optional[pb.Response]:
        """PROTOCOL.md section 4, "Validation order"; the first failure wins."""
        op = req.op
        nk, nv = len(req.keys), len(req.values)
        lim = self.limits
        if op not in _KNOWN:
            return self._err(resp, pb.CODE_UNKNOWN_OP, "unknown op")
        if op in _ONE_KEY and nk != 1:
            return self._err(resp, pb.CODE_INVALID_ARGUMENT, "exactly one key required")
        if op in _KEY_VALUE and (nk != 1 or nv != 1):
            return self._err(resp, pb.CODE_INVALID_ARGUMENT, "exactly one key and one value required")
        if op == pb.OP_SET_WITH_LEASE and not req.lease:
            return self._err(resp, pb.CODE_INVALID_ARGUMENT, "lease required")
        if op == pb.OP_EXPIRE and req.ttl_ms == 0:
            return self._err(resp, pb.CODE_TTL_OUT_OF_RANGE, "EXPIRE needs ttl_ms > 0")
        if op in _BATCH:
            if nk == 0:
                return self._err(resp, pb.CODE_INVALID_ARGUMENT, "no keys")
            if nk > lim.max_batch_keys:
                return self._err(resp, pb.CODE_BATCH_TOO_LARGE, "too many keys")
            if op == pb.OP_MSET and (nv != nk or (len(req.ttls_ms) not in (0, nk))):
                return self._err(resp, pb.CODE_INVALID_ARGUMENT, "keys, values and ttls_ms differ in length")
        if op == pb.OP_INVALIDATE and (nk != 0 or not req.pattern):
            return self._err(resp, pb.CODE_INVALID_ARGUMENT, "INVALIDATE takes a pattern and no keys")
        ks = self.keyspaces.get(req.keyspace)
        if ks is None:
            return self._err(resp, pb.CODE_UNKNOWN_KEYSPACE, f"unknown keyspace {req.keyspace!r}")
        for k in req.keys:
            if not k:
                return self._err(resp, pb.CODE_INVALID_KEY, "empty key")
            if len(k) > lim.max_key_bytes:
                return self._err(resp, pb.CODE_KEY_TOO_LARGE, "key too large")
        if len(req.pattern) > lim.max_key_bytes:
            return self._err(resp, pb.CODE_KEY_TOO_LARGE, "pattern too large")
        max_value = ks.max_value_bytes or lim.max_value_bytes
        for v in req.values:
            if len(v) > max_value:
                return self._err(resp, pb.CODE_VALUE_TOO_LARGE, "value too large")
        if nk > 1 and sum(map(len, req.keys)) + sum(map(len, req.values)) > lim.max_batch_bytes:
            return self._err(resp, pb.CODE_BATCH_TOO_LARGE, "batch too large")
        if ks.max_ttl_ms and op in _WRITE_TTL_OPS:
            eff = req.ttl_ms if (req.ttl_ms or op == pb.OP_EXPIRE) else ks.default_ttl_ms
            if eff > ks.max_ttl_ms or any(t > ks.max_ttl_ms for t in req.ttls_ms):
                return self._err(resp, pb.CODE_TTL_OUT_OF_RANGE, "ttl above the keyspace max_ttl_ms")
        return None

    # execution

    def execute(self, req: pb.Request) -> pb.Response:
        resp = pb.Response(id=req.id)
        with self._lock:
            self._stats["requests"] = self._stats.get("requests", 0) + 1
            if req.op == pb.OP_PING:
                resp.message = "PONG"
                return resp
            if req.op == pb.OP_STATS:
                for k, v in self._stats.items():
                    resp.stats[k] = v
                return resp
            bad = self._validate(req, resp)
            if bad is not None:
                self._stats["errors"] = self._stats.get("errors", 0) + 1
                return bad
            ks = self.keyspaces[req.keyspace]
            prefix = ks.prefix.encode()
            handler = _HANDLERS[req.op]
            handler(self, req, resp, ks, prefix)
            return resp

    def _ttl(self, req: pb.Request, ks: KeyspaceConfig, i: int = 0) -> int:
        if i < len(req.ttls_ms) and req.ttls_ms[i]:
            return int(req.ttls_ms[i])
        return int(req.ttl_ms) or ks.default_ttl_ms

    def _read(self, ks_name: str, rk: bytes) -> Optional[_Entry]:
        e = self._live(rk)
        if e is None or e.lease is not None:
            self._bump(ks_name, "misses")
            return None
        self._bump(ks_name, "hits")
        return e

    def _get(self, req: pb.Request, resp: pb.Response, ks: KeyspaceConfig, prefix: bytes) -> None:
        e = self._read(req.keyspace, prefix + req.keys[0])
        if e is None:
            resp.code = pb.CODE_NOT_FOUND
            return
        resp.value = e.value
        if e.version:
            resp.version = e.version

    def _set_one(self, req: pb.Request, ks: KeyspaceConfig, rk: bytes, value: bytes, ttl: int) -> int:
        e = self._live(rk)
        if req.condition == pb.COND_NX and e is not None:
            return pb.CODE_NOT_APPLIED
        if req.condition == pb.COND_XX and e is None:
            return pb.CODE_NOT_APPLIED
        self._data[rk] = _Entry(value, self._expiry(ttl))
        self._bump(req.keyspace, "sets")
        return pb.CODE_OK

    def _set(self, req: pb.Request, resp: pb.Response, ks: KeyspaceConfig, prefix: bytes) -> None:
        resp.code = self._set_one(req, ks, prefix + req.keys[0], req.values[0], self._ttl(req, ks))  # type: ignore[assignment]

    def _delete(self, req: pb.Request, resp: pb.Response, ks: KeyspaceConfig, prefix: bytes) -> None:
        rk = prefix + req.keys[0]
        if self._live(rk) is None:
            resp.code = pb.CODE_NOT_FOUND
            return
        del self._data[rk]
        resp.count = 1

    def _expire(self, req: pb.Request, resp: pb.Response, ks: KeyspaceConfig, prefix: bytes) -> None:
        e = self._live(prefix + req.keys[0])
        if e is None:
            resp.code = pb.CODE_NOT_FOUND
            return
        e.expires = self._expiry(int(req.ttl_ms))
        resp.count = 1

    def _mget(self, req: pb.Request, resp: pb.Response, ks: KeyspaceConfig, prefix: bytes) -> None:
        for k in req.keys:
            r = resp.results.add()
            e = self._read(req.keyspace, prefix + k)
            if e is None:
                r.code = pb.CODE_NOT_FOUND
            else:
                r.value = e.value

    def _mset(self, req: pb.Request, resp: pb.Response, ks: KeyspaceConfig, prefix: bytes) -> None:
        for i, k in enumerate(req.keys):
            r = resp.results.add()
            r.code = self._set_one(req, ks, prefix + k, req.values[i], self._ttl(req, ks, i))  # type: ignore[assignment]

    def _mdelete(self, req: pb.Request, resp: pb.Response, ks: KeyspaceConfig, prefix: bytes) -> None:
        n = 0
        for k in req.keys:
            r = resp.results.add()
            rk = prefix + k
            if self._live(rk) is None:
                r.code = pb.CODE_NOT_FOUND
            else:
                del self._data[rk]
                n += 1
        resp.count = n

    def _invalidate(self, req: pb.Request, resp: pb.Response, ks: KeyspaceConfig, prefix: bytes) -> None:
        n = 0
        for rk in list(self._data):
            if rk.startswith(prefix) and self._live(rk) is not None and glob_match(req.pattern, rk[len(prefix) :]):
                del self._data[rk]
                n += 1
        resp.count = n
        if n:
            self._bump(req.keyspace, "invalidated", n)

    def _get_or_lease(self, req: pb.Request, resp: pb.Response, ks: KeyspaceConfig, prefix: bytes) -> None:
        rk = prefix + req.keys[0]
        e = self._live(rk)
        if e is None:
            token = os.urandom(16).hex().encode()
            self._data[rk] = _Entry(b"", self._expiry(int(req.ttl_ms) or _LEASE_TTL_MS), lease=token)
            self._bump(req.keyspace, "misses")
            self._bump(req.keyspace, "lease_grants")
            resp.code = pb.CODE_LEASE_GRANTED
            resp.lease = token
            return
        if e.lease is not None:
            self._bump(req.keyspace, "misses")
            self._bump(req.keyspace, "lease_waits")
            left = 100 if e.expires is None else int((e.expires - self.clock()) * 1000)
            resp.code = pb.CODE_LEASE_WAIT
            resp.message = "another caller holds the lease"
            resp.retry_after_ms = max(1, min(100, left))
            return
        self._bump(req.keyspace, "hits")
        resp.value = e.value
        if e.version:
            resp.version = e.version

    def _set_with_lease(self, req: pb.Request, resp: pb.Response, ks: KeyspaceConfig, prefix: bytes) -> None:
        rk = prefix + req.keys[0]
        e = self._live(rk)
        if e is None or e.lease != req.lease:
            self._bump(req.keyspace, "lease_rejects")
            resp.code = pb.CODE_LEASE_INVALID
            resp.message = "the key no longer holds this lease"
            return
        self._data[rk] = _Entry(req.values[0], self._expiry(self._ttl(req, ks)))
        self._bump(req.keyspace, "sets")

    def _set_versioned(self, req: pb.Request, resp: pb.Response, ks: KeyspaceConfig, prefix: bytes) -> None:
        rk = prefix + req.keys[0]
        e = self._live(rk)
        current = 0 if e is None or e.lease is not None else e.version
        if current != req.version:
            self._bump(req.keyspace, "version_conflicts")
            resp.code = pb.CODE_VERSION_CONFLICT
            resp.message = "version conflict"
            resp.version = current
            return
        new = (current + 1) % _U64
        self._data[rk] = _Entry(req.values[0], self._expiry(self._ttl(req, ks)), version=new)
        self._bump(req.keyspace, "sets")
        resp.version = new


_Handler = Callable[[MemoryBackend, pb.Request, pb.Response, KeyspaceConfig, bytes], None]
_HANDLERS: Dict[int, _Handler] = {
    pb.OP_GET: MemoryBackend._get,
    pb.OP_GET_VERSIONED: MemoryBackend._get,
    pb.OP_SET: MemoryBackend._set,
    pb.OP_DELETE: MemoryBackend._delete,
    pb.OP_EXPIRE: MemoryBackend._expire,
    pb.OP_MGET: MemoryBackend._mget,
    pb.OP_MSET: MemoryBackend._mset,
    pb.OP_MDELETE: MemoryBackend._mdelete,
    pb.OP_INVALIDATE: MemoryBackend._invalidate,
    pb.OP_GET_OR_LEASE: MemoryBackend._get_or_lease,
    pb.OP_SET_WITH_LEASE: MemoryBackend._set_with_lease,
    pb.OP_SET_VERSIONED: MemoryBackend._set_versioned,
}


class MemorySlotgate(_aio.Slotgate):
    """The asyncio client over a MemoryBackend instead of a connection.

        sg = MemorySlotgate()                   # its own empty backend
        other = MemorySlotgate(backend=sg.backend)  # shares the data
    """

    def __init__(self, backend: Optional[MemoryBackend] = None, **options: Any) -> None:
        options.setdefault("ssl", False)
        super().__init__(**options)
        self.backend = backend if backend is not None else MemoryBackend()
        self._set_limits(self.backend.hello_limits())
        self._info = ServerInfo("slotgate-memory", "0.1.0", 1, self.backend.limits)

    async def connect(self) -> ServerInfo:
        assert self._info is not None
        return self._info

    async def aclose(self) -> None:
        self._closed = True

    close = aclose

    async def _call(
        self, msg: pb.ClientMessage, deadline_ms: Optional[int], check: int = _aio._CHECK_FULL
    ) -> pb.Response:
        if self._closed:
            raise ClientClosed("client closed")
        req = msg.request
        if deadline_ms:
            req.deadline_ms = deadline_ms
        if check == _aio._CHECK_FULL and self._limits is not None:
            err = check_request(req, self._limits)
            if err is not None:
                raise err
        req.id = self._next_id
        self._next_id += 1
        await asyncio.sleep(0)  # let concurrent callers interleave, as over a socket
        return self.backend.execute(req)
