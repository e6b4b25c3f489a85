"""Frame codec and request checks: pure functions, no I/O.

A frame is a 4-byte big-endian body length followed by one protobuf message
(ClientMessage to the server, ServerMessage from it). FrameReader splits a
byte stream into bodies and enforces this client's cap on server frames;
check_request applies the HelloReply limits before a request is sent
(PROTOCOL.md section 12, item 6).
"""

from __future__ import annotations

from typing import List, Optional, Union

from google.protobuf.message import DecodeError

from ._proto import slotgate_pb2 as pb
from .errors import (
    BadFrame,
    BatchTooLarge,
    FrameTooLarge,
    KeyTooLarge,
    SlotgateError,
    ValueTooLarge,
)

BytesLike = Union[bytes, bytearray, memoryview, str]

PROTOCOL_VERSION = 1
DEFAULT_MAX_SERVER_FRAME = 64 * 1024 * 1024

# Ops whose key count is bounded by max_batch_keys (section 4, step 1).
_BATCH_OPS = frozenset((pb.OP_MGET, pb.OP_MSET, pb.OP_MDELETE))


def to_bytes(data: BytesLike) -> bytes:
    """Keys, values, patterns and leases: bytes as given, str as UTF-8."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode("utf-8")
    return bytes(data)


def frame(msg: pb.ClientMessage) -> bytes:
    """Serialise one ClientMessage with its length header."""
    body = msg.SerializeToString()
    return len(body).to_bytes(4, "big") + body


def hello_frame(client_name: str, token: Optional[bytes]) -> bytes:
    msg = pb.ClientMessage()
    msg.hello.protocol_version = PROTOCOL_VERSION
    msg.hello.client_name = client_name
    if token:
        msg.hello.auth_token = token
    return frame(msg)


def decode_server_message(body: bytes) -> pb.ServerMessage:
    """Decode one ServerMessage body; BadFrame if it does not decode.
    Unknown fields are kept by the runtime and ignored by the caller."""
    msg = pb.ServerMessage()
    try:
        msg.ParseFromString(body)
    except DecodeError as exc:
        raise BadFrame(f"server frame does not decode: {exc}") from None
    return msg


class FrameReader:
    """Splits received bytes into frame bodies.

    feed() returns the complete bodies so far; a length header above
    max_frame raises FrameTooLarge before any of that body is buffered.
    """

    __slots__ = ("_buf", "_max")

    def __init__(self, max_frame: int = DEFAULT_MAX_SERVER_FRAME) -> None:
        self._buf = bytearray()
        self._max = max_frame

    def feed(self, data: bytes) -> List[bytes]:
        buf = self._buf
        if buf:
            buf += data
            src: Union[bytes, bytearray] = buf
        else:
            src = data
        out: List[bytes] = []
        pos = 0
        end = len(src)
        limit = self._max
        while end - pos >= 4:
            n = int.from_bytes(src[pos : pos + 4], "big")
            if n > limit:
                raise FrameTooLarge(f"server frame of {n} bytes exceeds the client cap of {limit}")
            if end - pos - 4 < n:
                break
            out.append(bytes(src[pos + 4 : pos + 4 + n]))
            pos += 4 + n
        if src is buf:
            del buf[:pos]
        elif pos < end:
            buf += src[pos:]
        return out


def check_request(req: pb.Request, limits: pb.Limits) -> Optional[SlotgateError]:
    """The error the server would answer for a request over its announced
    limits, or None. Only size limits are checked here; shapes, keyspaces and
    TTLs are left to the server (a keyspace may also have a lower value limit
    that HelloReply does not announce)."""
    max_key = limits.max_key_bytes
    max_value = limits.max_value_bytes
    nkeys = len(req.keys)
    if req.op in _BATCH_OPS and limits.max_batch_keys and nkeys > limits.max_batch_keys:
        return BatchTooLarge(f"{nkeys} keys exceed max_batch_keys {limits.max_batch_keys}")
    total = 0
    for k in req.keys:
        if max_key and len(k) > max_key:
            return KeyTooLarge(f"key of {len(k)} bytes exceeds max_key_bytes {max_key}")
        total += len(k)
    if max_key and len(req.pattern) > max_key:
        return KeyTooLarge(f"pattern of {len(req.pattern)} bytes exceeds max_key_bytes {max_key}")
    for v in req.values:
        if max_value and len(v) > max_value:
            return ValueTooLarge(f"value of {len(v)} bytes exceeds max_value_bytes {max_value}")
        total += len(v)
    if nkeys > 1 and limits.max_batch_bytes and total > limits.max_batch_bytes:
        return BatchTooLarge(f"batch of {total} key and value bytes exceeds max_batch_bytes {limits.max_batch_bytes}")
    if limits.max_frame_bytes:
        # A cheap upper bound first; ByteSize() only when it could matter.
        bound = total + len(req.pattern) + len(req.lease) + len(req.keyspace) + 64
        bound += 6 * (nkeys + len(req.values)) + 11 * len(req.ttls_ms)
        if bound <= limits.max_frame_bytes:
            return None
        size = req.ByteSize() + 6  # ClientMessage tag and length of the request
        if size > limits.max_frame_bytes:
            return BatchTooLarge(f"request of {size} bytes exceeds max_frame_bytes {limits.max_frame_bytes}")
    return None
