"""Exceptions: one class per protocol code, in one hierarchy.

    SlotgateError                      .code (proto Code name without CODE_),
    |                                  .number, .message, .retriable
    +- SlotgateConnectionError         100-199, and ConnectionLost: the
    |  |                               connection is gone
    |  +- BadFrame, FrameTooLarge, HandshakeRequired, UnsupportedVersion,
    |  |  AuthFailed, TooManyConnections, ShuttingDown, OutputLimit
    |  +- ConnectionLost               local: EOF / I/O error with the request
    |                                  unanswered (its outcome is unknown)
    +- SlotgateRequestError            200-299: the request was rejected
    |  +- UnknownOp, InvalidArgument, InvalidKey, KeyTooLarge, ValueTooLarge,
    |     BatchTooLarge, UnknownKeyspace, TtlOutOfRange, LeaseInvalid,
    |     VersionConflict (.version = the current version)
    +- SlotgateBackendError            300-399: Redis could not answer
    |  +- Timeout, ShardUnavailable, ClusterDown, BackendError,
    |     CorruptValue, InternalError
    +- ClientClosed                    local: the client was closed
    +- UnknownCode                     a code this client does not know

NOT_FOUND, NOT_APPLIED, LEASE_GRANTED and LEASE_WAIT are answers, not errors:
a miss returns None, a failed NX/XX returns False, and the lease outcomes are
values of get_or_lease. Failures the client detects itself carry the code the
server would have sent: a local limit check raises KeyTooLarge etc. with the
same code, a client-side deadline raises Timeout (code "TIMEOUT").
"""

from __future__ import annotations

from typing import Dict, Optional, Type

__all__ = [
    "SlotgateError",
    "SlotgateConnectionError",
    "SlotgateRequestError",
    "SlotgateBackendError",
    "BadFrame",
    "FrameTooLarge",
    "HandshakeRequired",
    "UnsupportedVersion",
    "AuthFailed",
    "TooManyConnections",
    "ShuttingDown",
    "OutputLimit",
    "ConnectionLost",
    "ClientClosed",
    "UnknownOp",
    "InvalidArgument",
    "InvalidKey",
    "KeyTooLarge",
    "ValueTooLarge",
    "BatchTooLarge",
    "UnknownKeyspace",
    "TtlOutOfRange",
    "LeaseInvalid",
    "VersionConflict",
    "Timeout",
    "ShardUnavailable",
    "ClusterDown",
    "BackendError",
    "CorruptValue",
    "InternalError",
    "UnknownCode",
    "error_for_code",
    "CODE_NAMES",
    "CODE_NUMBERS",
]

# Every code of slotgate.v1.Code, by number (names without the CODE_ prefix).
CODE_NAMES: Dict[int, str] = {
    0: "OK",
    1: "NOT_FOUND",
    2: "NOT_APPLIED",
    3: "LEASE_GRANTED",
    4: "LEASE_WAIT",
    100: "BAD_FRAME",
    101: "FRAME_TOO_LARGE",
    102: "HANDSHAKE_REQUIRED",
    103: "UNSUPPORTED_VERSION",
    104: "AUTH_FAILED",
    105: "TOO_MANY_CONNECTIONS",
    106: "SHUTTING_DOWN",
    107: "OUTPUT_LIMIT",
    200: "UNKNOWN_OP",
    201: "INVALID_ARGUMENT",
    202: "INVALID_KEY",
    203: "KEY_TOO_LARGE",
    204: "VALUE_TOO_LARGE",
    205: "BATCH_TOO_LARGE",
    206: "UNKNOWN_KEYSPACE",
    207: "TTL_OUT_OF_RANGE",
    208: "LEASE_INVALID",
    209: "VERSION_CONFLICT",
    300: "TIMEOUT",
    301: "SHARD_UNAVAILABLE",
    302: "CLUSTER_DOWN",
    303: "BACKEND_ERROR",
    304: "CORRUPT_VALUE",
    399: "INTERNAL",
}
CODE_NUMBERS: Dict[str, int] = {name: num for num, name in CODE_NAMES.items()}


def code_name(number: int) -> str:
    """The name of a code number; unknown numbers read as "UNKNOWN_<n>"."""
    return CODE_NAMES.get(number, f"UNKNOWN_{number}")


class SlotgateError(Exception):
    """Base of every error this package raises.

    code: the proto Code name without the CODE_ prefix ("VERSION_CONFLICT"),
    or a local name for failures with no protocol code ("CONNECTION_LOST",
    "CLIENT_CLOSED"). number: the Code number, or None for local names.
    retriable: True where PROTOCOL.md section 9 says a retry can succeed.
    """

    code: str = "UNKNOWN"
    number: Optional[int] = None
    retriable: bool = False

    def __init__(self, message: str = "", *, code: Optional[str] = None) -> None:
        super().__init__(message or self.code)
        self.message = message
        if code is not None:
            self.code = code
            self.number = CODE_NUMBERS.get(code)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class SlotgateConnectionError(SlotgateError):
    """The connection was closed; requests without an answer have an unknown
    outcome unless the client resent them (see PROTOCOL.md section 12)."""


class SlotgateRequestError(SlotgateError):
    """The server rejected the request; the connection stays usable."""


class SlotgateBackendError(SlotgateError):
    """Redis could not serve the request (or not in time)."""


class BadFrame(SlotgateConnectionError):
    """BAD_FRAME (100): a frame did not decode (sent by the server about ours,
    or raised locally when a server frame does not decode)."""

    code, number, retriable = "BAD_FRAME", 100, False


class FrameTooLarge(SlotgateConnectionError):
    """FRAME_TOO_LARGE (101): a frame over the cap (ours at the server, or a
    server frame over this client's max_frame_bytes)."""

    code, number, retriable = "FRAME_TOO_LARGE", 101, False


class HandshakeRequired(SlotgateConnectionError):
    """HANDSHAKE_REQUIRED (102)."""

    code, number, retriable = "HANDSHAKE_REQUIRED", 102, True


class UnsupportedVersion(SlotgateConnectionError):
    """UNSUPPORTED_VERSION (103)."""

    code, number, retriable = "UNSUPPORTED_VERSION", 103, False


class AuthFailed(SlotgateConnectionError):
    """AUTH_FAILED (104): the token is missing or wrong."""

    code, number, retriable = "AUTH_FAILED", 104, False


class TooManyConnections(SlotgateConnectionError):
    """TOO_MANY_CONNECTIONS (105)."""

    code, number, retriable = "TOO_MANY_CONNECTIONS", 105, True


class ShuttingDown(SlotgateConnectionError):
    """SHUTTING_DOWN (106). The client resends unanswered requests itself;
    this is raised only when the handshake meets a draining server and the
    call's deadline passes before another connection succeeds."""

    code, number, retriable = "SHUTTING_DOWN", 106, True


class OutputLimit(SlotgateConnectionError):
    """OUTPUT_LIMIT (107): the server closed a connection that owed it more
    unread responses than its limit; requests without a response have an
    unknown outcome."""

    code, number, retriable = "OUTPUT_LIMIT", 107, True


class ConnectionLost(SlotgateConnectionError):
    """Local: the connection ended (EOF, I/O error, TLS failure, refused
    connect) with this request unanswered. A write may have been applied."""

    code, number, retriable = "CONNECTION_LOST", None, True


class ClientClosed(SlotgateError):
    """Local: the client was closed before the request was answered."""

    code, number, retriable = "CLIENT_CLOSED", None, False


class UnknownOp(SlotgateRequestError):
    """UNKNOWN_OP (200)."""

    code, number, retriable = "UNKNOWN_OP", 200, False


class InvalidArgument(SlotgateRequestError):
    """INVALID_ARGUMENT (201)."""

    code, number, retriable = "INVALID_ARGUMENT", 201, False


class InvalidKey(SlotgateRequestError):
    """INVALID_KEY (202): an empty key."""

    code, number, retriable = "INVALID_KEY", 202, False


class KeyTooLarge(SlotgateRequestError):
    """KEY_TOO_LARGE (203); also raised locally from HelloReply limits."""

    code, number, retriable = "KEY_TOO_LARGE", 203, False


class ValueTooLarge(SlotgateRequestError):
    """VALUE_TOO_LARGE (204); also raised locally from HelloReply limits."""

    code, number, retriable = "VALUE_TOO_LARGE", 204, False


class BatchTooLarge(SlotgateRequestError):
    """BATCH_TOO_LARGE (205); also raised locally from HelloReply limits.
    Retriable in the sense of section 9: split the batch and send again."""

    code, number, retriable = "BATCH_TOO_LARGE", 205, True  # after splitting


class UnknownKeyspace(SlotgateRequestError):
    """UNKNOWN_KEYSPACE (206)."""

    code, number, retriable = "UNKNOWN_KEYSPACE", 206, False


class TtlOutOfRange(SlotgateRequestError):
    """TTL_OUT_OF_RANGE (207)."""

    code, number, retriable = "TTL_OUT_OF_RANGE", 207, False


class LeaseInvalid(SlotgateRequestError):
    """LEASE_INVALID (208): the lease expired or was used; start again with
    get_or_lease."""

    code, number, retriable = "LEASE_INVALID", 208, False


class VersionConflict(SlotgateRequestError):
    """VERSION_CONFLICT (209): .version is the version currently stored
    (0 = absent or unversioned)."""

    code, number, retriable = "VERSION_CONFLICT", 209, False

    def __init__(self, message: str = "", *, code: Optional[str] = None, version: int = 0) -> None:
        super().__init__(message, code=code)
        self.version = version


class Timeout(SlotgateBackendError):
    """TIMEOUT (300): the server's deadline passed, or the client's own
    deadline (deadline plus margin) passed with no answer."""

    code, number, retriable = "TIMEOUT", 300, True


class ShardUnavailable(SlotgateBackendError):
    """SHARD_UNAVAILABLE (301)."""

    code, number, retriable = "SHARD_UNAVAILABLE", 301, True


class ClusterDown(SlotgateBackendError):
    """CLUSTER_DOWN (302)."""

    code, number, retriable = "CLUSTER_DOWN", 302, True


class BackendError(SlotgateBackendError):
    """BACKEND_ERROR (303): Redis answered with an error."""

    code, number, retriable = "BACKEND_ERROR", 303, False


class CorruptValue(SlotgateBackendError):
    """CORRUPT_VALUE (304)."""

    code, number, retriable = "CORRUPT_VALUE", 304, False


class InternalError(SlotgateBackendError):
    """INTERNAL (399)."""

    code, number, retriable = "INTERNAL", 399, True


class UnknownCode(SlotgateError):
    """A code this client does not know (PROTOCOL.md section 11: unknown
    codes are failures). .number holds it; retriable by range."""

    def __init__(self, number: int, message: str = "") -> None:
        super().__init__(message)
        self.number = number
        self.code = code_name(number)
        self.retriable = 100 <= number < 200 or 300 <= number < 400


_BY_NUMBER: Dict[int, Type[SlotgateError]] = {
    int(c.number or 0): c
    for c in (
        BadFrame,
        FrameTooLarge,
        HandshakeRequired,
        UnsupportedVersion,
        AuthFailed,
        TooManyConnections,
        ShuttingDown,
        OutputLimit,
        UnknownOp,
        InvalidArgument,
        InvalidKey,
        KeyTooLarge,
        ValueTooLarge,
        BatchTooLarge,
        UnknownKeyspace,
        TtlOutOfRange,
        LeaseInvalid,
        VersionConflict,
        Timeout,
        ShardUnavailable,
        ClusterDown,
        BackendError,
        CorruptValue,
        InternalError,
    )
}


def error_for_code(number: int, message: str = "", *, version: int = 0) -> SlotgateError:
    """The exception for a failure code from the server."""
    cls = _BY_NUMBER.get(number)
    if cls is None:
        return UnknownCode(number, message)
    if cls is VersionConflict:
        return VersionConflict(message, version=version)
    return cls(message)
