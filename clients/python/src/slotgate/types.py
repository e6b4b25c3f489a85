"""Result types returned by the client methods."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, List, Mapping, Optional, Tuple, Union

from .errors import SlotgateError

Key = Union[bytes, bytearray, memoryview, str]
Value = Union[bytes, bytearray, memoryview, str]
# An MSET item: (key, value) or (key, value, ttl_ms); ttl_ms 0 or None = the
# call's ttl_ms.
MSetItem = Union[Tuple[Key, Value], Tuple[Key, Value, Optional[int]]]
# What mset takes: a mapping (str or bytes keys) or an iterable of items.
MSetInput = Union[Mapping[str, Value], Mapping[bytes, Value], Iterable[MSetItem]]


@dataclass(frozen=True)
class Limits:
    """The limits announced in HelloReply (PROTOCOL.md section 10)."""

    max_frame_bytes: int
    max_key_bytes: int
    max_value_bytes: int
    max_batch_keys: int
    max_inflight: int
    default_deadline_ms: int
    max_batch_bytes: int


@dataclass(frozen=True)
class ServerInfo:
    """What HelloReply said about the server."""

    server_name: str
    server_version: str
    protocol_version: int
    limits: Limits


@dataclass(frozen=True)
class Versioned:
    """A value read with get_versioned; version 0 = unversioned."""

    value: bytes
    version: int


@dataclass(frozen=True)
class LeaseResult:
    """The outcome of get_or_lease.

    code "OK": value (and version) hold the stored value.
    code "LEASE_GRANTED": lease holds the token; compute the value and store
    it with set_with_lease(key, value, lease) before the lease TTL ends.
    code "LEASE_WAIT": another caller holds the lease; call get_or_lease
    again after retry_after_ms (0: the deadline ended the server's wait).
    """

    code: str
    value: Optional[bytes] = None
    lease: Optional[bytes] = None
    retry_after_ms: int = 0
    version: int = 0

    @property
    def hit(self) -> bool:
        return self.code == "OK"

    @property
    def granted(self) -> bool:
        return self.code == "LEASE_GRANTED"

    @property
    def wait(self) -> bool:
        return self.code == "LEASE_WAIT"


@dataclass(frozen=True)
class KeyResult:
    """One key's outcome in a batch: code is "OK", "NOT_FOUND",
    "NOT_APPLIED" or a failure; error is set for failures."""

    code: str
    value: Optional[bytes] = None
    message: str = ""
    error: Optional[SlotgateError] = None

    @property
    def ok(self) -> bool:
        return self.error is None


class BatchError(SlotgateError):
    """Some keys of an MGET/MSET/MDELETE failed (the others succeeded:
    batches are not atomic). .results has one KeyResult per request key, in
    order; .code and .retriable are those of the first failed key."""

    def __init__(self, results: List[KeyResult]) -> None:
        failed = [r for r in results if r.error is not None]
        first = failed[0].error if failed else None
        super().__init__(
            f"{len(failed)} of {len(results)} keys failed"
            + (f", first: {first.code} {first.message}" if first is not None else ""),
        )
        self.results = results
        if first is not None:
            self.code = first.code
            self.number = first.number
            self.retriable = first.retriable


@dataclass
class PoolStats:
    """Client-side counters (not the server's STATS)."""

    connects: int = 0
    reconnects: int = 0
    resent: int = 0
    inflight: int = 0
    waiting: int = 0
    connections: List[int] = field(default_factory=list)
