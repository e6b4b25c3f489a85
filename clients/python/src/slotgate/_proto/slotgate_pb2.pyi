from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Op(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OP_UNSPECIFIED: _ClassVar[Op]
    OP_PING: _ClassVar[Op]
    OP_GET: _ClassVar[Op]
    OP_SET: _ClassVar[Op]
    OP_DELETE: _ClassVar[Op]
    OP_EXPIRE: _ClassVar[Op]
    OP_MGET: _ClassVar[Op]
    OP_MSET: _ClassVar[Op]
    OP_MDELETE: _ClassVar[Op]
    OP_INVALIDATE: _ClassVar[Op]
    OP_GET_OR_LEASE: _ClassVar[Op]
    OP_SET_WITH_LEASE: _ClassVar[Op]
    OP_SET_VERSIONED: _ClassVar[Op]
    OP_GET_VERSIONED: _ClassVar[Op]
    OP_STATS: _ClassVar[Op]

class Condition(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COND_NONE: _ClassVar[Condition]
    COND_NX: _ClassVar[Condition]
    COND_XX: _ClassVar[Condition]

class Code(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CODE_OK: _ClassVar[Code]
    CODE_NOT_FOUND: _ClassVar[Code]
    CODE_NOT_APPLIED: _ClassVar[Code]
    CODE_LEASE_GRANTED: _ClassVar[Code]
    CODE_LEASE_WAIT: _ClassVar[Code]
    CODE_BAD_FRAME: _ClassVar[Code]
    CODE_FRAME_TOO_LARGE: _ClassVar[Code]
    CODE_HANDSHAKE_REQUIRED: _ClassVar[Code]
    CODE_UNSUPPORTED_VERSION: _ClassVar[Code]
    CODE_AUTH_FAILED: _ClassVar[Code]
    CODE_TOO_MANY_CONNECTIONS: _ClassVar[Code]
    CODE_SHUTTING_DOWN: _ClassVar[Code]
    CODE_OUTPUT_LIMIT: _ClassVar[Code]
    CODE_UNKNOWN_OP: _ClassVar[Code]
    CODE_INVALID_ARGUMENT: _ClassVar[Code]
    CODE_INVALID_KEY: _ClassVar[Code]
    CODE_KEY_TOO_LARGE: _ClassVar[Code]
    CODE_VALUE_TOO_LARGE: _ClassVar[Code]
    CODE_BATCH_TOO_LARGE: _ClassVar[Code]
    CODE_UNKNOWN_KEYSPACE: _ClassVar[Code]
    CODE_TTL_OUT_OF_RANGE: _ClassVar[Code]
    CODE_LEASE_INVALID: _ClassVar[Code]
    CODE_VERSION_CONFLICT: _ClassVar[Code]
    CODE_TIMEOUT: _ClassVar[Code]
    CODE_SHARD_UNAVAILABLE: _ClassVar[Code]
    CODE_CLUSTER_DOWN: _ClassVar[Code]
    CODE_BACKEND_ERROR: _ClassVar[Code]
    CODE_CORRUPT_VALUE: _ClassVar[Code]
    CODE_INTERNAL: _ClassVar[Code]
OP_UNSPECIFIED: Op
OP_PING: Op
OP_GET: Op
OP_SET: Op
OP_DELETE: Op
OP_EXPIRE: Op
OP_MGET: Op
OP_MSET: Op
OP_MDELETE: Op
OP_INVALIDATE: Op
OP_GET_OR_LEASE: Op
OP_SET_WITH_LEASE: Op
OP_SET_VERSIONED: Op
OP_GET_VERSIONED: Op
OP_STATS: Op
COND_NONE: Condition
COND_NX: Condition
COND_XX: Condition
CODE_OK: Code
CODE_NOT_FOUND: Code
CODE_NOT_APPLIED: Code
CODE_LEASE_GRANTED: Code
CODE_LEASE_WAIT: Code
CODE_BAD_FRAME: Code
CODE_FRAME_TOO_LARGE: Code
CODE_HANDSHAKE_REQUIRED: Code
CODE_UNSUPPORTED_VERSION: Code
CODE_AUTH_FAILED: Code
CODE_TOO_MANY_CONNECTIONS: Code
CODE_SHUTTING_DOWN: Code
CODE_OUTPUT_LIMIT: Code
CODE_UNKNOWN_OP: Code
CODE_INVALID_ARGUMENT: Code
CODE_INVALID_KEY: Code
CODE_KEY_TOO_LARGE: Code
CODE_VALUE_TOO_LARGE: Code
CODE_BATCH_TOO_LARGE: Code
CODE_UNKNOWN_KEYSPACE: Code
CODE_TTL_OUT_OF_RANGE: Code
CODE_LEASE_INVALID: Code
CODE_VERSION_CONFLICT: Code
CODE_TIMEOUT: Code
CODE_SHARD_UNAVAILABLE: Code
CODE_CLUSTER_DOWN: Code
CODE_BACKEND_ERROR: Code
CODE_CORRUPT_VALUE: Code
CODE_INTERNAL: Code

class Hello(_message.Message):
    __slots__ = ("protocol_version", "client_name", "auth_token")
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    CLIENT_NAME_FIELD_NUMBER: _ClassVar[int]
    AUTH_TOKEN_FIELD_NUMBER: _ClassVar[int]
    protocol_version: int
    client_name: str
    auth_token: bytes
    def __init__(self, protocol_version: _Optional[int] = ..., client_name: _Optional[str] = ..., auth_token: _Optional[bytes] = ...) -> None: ...

class Limits(_message.Message):
    __slots__ = ("max_frame_bytes", "max_key_bytes", "max_value_bytes", "max_batch_keys", "max_inflight", "default_deadline_ms", "max_batch_bytes")
    MAX_FRAME_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_KEY_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_VALUE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_KEYS_FIELD_NUMBER: _ClassVar[int]
    MAX_INFLIGHT_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_DEADLINE_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_BYTES_FIELD_NUMBER: _ClassVar[int]
    max_frame_bytes: int
    max_key_bytes: int
    max_value_bytes: int
    max_batch_keys: int
    max_inflight: int
    default_deadline_ms: int
    max_batch_bytes: int
    def __init__(self, max_frame_bytes: _Optional[int] = ..., max_key_bytes: _Optional[int] = ..., max_value_bytes: _Optional[int] = ..., max_batch_keys: _Optional[int] = ..., max_inflight: _Optional[int] = ..., default_deadline_ms: _Optional[int] = ..., max_batch_bytes: _Optional[int] = ...) -> None: ...

class HelloReply(_message.Message):
    __slots__ = ("protocol_version", "server_version", "limits", "server_name")
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    SERVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    SERVER_NAME_FIELD_NUMBER: _ClassVar[int]
    protocol_version: int
    server_version: str
    limits: Limits
    server_name: str
    def __init__(self, protocol_version: _Optional[int] = ..., server_version: _Optional[str] = ..., limits: _Optional[_Union[Limits, _Mapping]] = ..., server_name: _Optional[str] = ...) -> None: ...

class Request(_message.Message):
    __slots__ = ("id", "op", "keyspace", "keys", "values", "ttl_ms", "condition", "deadline_ms", "ttls_ms", "pattern", "lease", "version")
    ID_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    KEYSPACE_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    TTL_MS_FIELD_NUMBER: _ClassVar[int]
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_MS_FIELD_NUMBER: _ClassVar[int]
    TTLS_MS_FIELD_NUMBER: _ClassVar[int]
    PATTERN_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    id: int
    op: Op
    keyspace: str
    keys: _containers.RepeatedScalarFieldContainer[bytes]
    values: _containers.RepeatedScalarFieldContainer[bytes]
    ttl_ms: int
    condition: Condition
    deadline_ms: int
    ttls_ms: _containers.RepeatedScalarFieldContainer[int]
    pattern: bytes
    lease: bytes
    version: int
    def __init__(self, id: _Optional[int] = ..., op: _Optional[_Union[Op, str]] = ..., keyspace: _Optional[str] = ..., keys: _Optional[_Iterable[bytes]] = ..., values: _Optional[_Iterable[bytes]] = ..., ttl_ms: _Optional[int] = ..., condition: _Optional[_Union[Condition, str]] = ..., deadline_ms: _Optional[int] = ..., ttls_ms: _Optional[_Iterable[int]] = ..., pattern: _Optional[bytes] = ..., lease: _Optional[bytes] = ..., version: _Optional[int] = ...) -> None: ...

class KeyResult(_message.Message):
    __slots__ = ("code", "value", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: Code
    value: bytes
    message: str
    def __init__(self, code: _Optional[_Union[Code, str]] = ..., value: _Optional[bytes] = ..., message: _Optional[str] = ...) -> None: ...

class Response(_message.Message):
    __slots__ = ("id", "code", "message", "value", "results", "count", "lease", "retry_after_ms", "version", "stats")
    class StatsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_MS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    id: int
    code: Code
    message: str
    value: bytes
    results: _containers.RepeatedCompositeFieldContainer[KeyResult]
    count: int
    lease: bytes
    retry_after_ms: int
    version: int
    stats: _containers.ScalarMap[str, int]
    def __init__(self, id: _Optional[int] = ..., code: _Optional[_Union[Code, str]] = ..., message: _Optional[str] = ..., value: _Optional[bytes] = ..., results: _Optional[_Iterable[_Union[KeyResult, _Mapping]]] = ..., count: _Optional[int] = ..., lease: _Optional[bytes] = ..., retry_after_ms: _Optional[int] = ..., version: _Optional[int] = ..., stats: _Optional[_Mapping[str, int]] = ...) -> None: ...

class ConnectionError(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: Code
    message: str
    def __init__(self, code: _Optional[_Union[Code, str]] = ..., message: _Optional[str] = ...) -> None: ...

class ClientMessage(_message.Message):
    __slots__ = ("hello", "request")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    request: Request
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., request: _Optional[_Union[Request, _Mapping]] = ...) -> None: ...

class ServerMessage(_message.Message):
    __slots__ = ("hello_reply", "response", "error")
    HELLO_REPLY_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    hello_reply: HelloReply
    response: Response
    error: ConnectionError
    def __init__(self, hello_reply: _Optional[_Union[HelloReply, _Mapping]] = ..., response: _Optional[_Union[Response, _Mapping]] = ..., error: _Optional[_Union[ConnectionError, _Mapping]] = ...) -> None: ...
