"""slotgate: Python client for the slotgate cache proxy.

    import slotgate                       # blocking client, like redis.Redis
    from slotgate.asyncio import Slotgate # asyncio client, like redis.asyncio.Redis

See clients/python/README.md.
"""

from .client import GameCache, MemoryGameCache, MemorySlotgate, Slotgate
from .errors import (
    AuthFailed,
    BackendError,
    BadFrame,
    BatchTooLarge,
    ClientClosed,
    ClusterDown,
    ConnectionLost,
    CorruptValue,
    FrameTooLarge,
    HandshakeRequired,
    InternalError,
    InvalidArgument,
    InvalidKey,
    KeyTooLarge,
    LeaseInvalid,
    ShardUnavailable,
    ShuttingDown,
    OutputLimit,
    SlotgateBackendError,
    SlotgateConnectionError,
    SlotgateError,
    SlotgateRequestError,
    Timeout,
    TooManyConnections,
    TtlOutOfRange,
    UnknownCode,
    UnknownKeyspace,
    UnknownOp,
    UnsupportedVersion,
    ValueTooLarge,
    VersionConflict,
)
from .gamecache import CacheStats, HealthStatus, Keyspaces, KeyspaceStats
from .memory import KeyspaceConfig, MemoryBackend
from .types import BatchError, KeyResult, LeaseResult, Limits, ServerInfo, Versioned

__version__ = "0.1.0"

__all__ = [
    "Slotgate",
    "GameCache",
    "MemorySlotgate",
    "MemoryGameCache",
    "MemoryBackend",
    "KeyspaceConfig",
    "CacheStats",
    "KeyspaceStats",
    "HealthStatus",
    "Keyspaces",
    "SlotgateError",
    "SlotgateConnectionError",
    "SlotgateRequestError",
    "SlotgateBackendError",
    "BatchError",
    "AuthFailed",
    "BackendError",
    "BadFrame",
    "BatchTooLarge",
    "ClientClosed",
    "ClusterDown",
    "ConnectionLost",
    "CorruptValue",
    "FrameTooLarge",
    "HandshakeRequired",
    "InternalError",
    "InvalidArgument",
    "InvalidKey",
    "KeyTooLarge",
    "LeaseInvalid",
    "ShardUnavailable",
    "ShuttingDown",
    "OutputLimit",
    "Timeout",
    "TooManyConnections",
    "TtlOutOfRange",
    "UnknownCode",
    "UnknownKeyspace",
    "UnknownOp",
    "UnsupportedVersion",
    "ValueTooLarge",
    "VersionConflict",
    "KeyResult",
    "LeaseResult",
    "Limits",
    "ServerInfo",
    "Versioned",
]
