"""The blocking client, like redis.Redis: every method returns its result.

A blocking Slotgate owns one background thread running an asyncio event loop
with the asyncio client on it. Calls from any number of threads are
submitted to that loop, so they share its connections and are multiplexed
with ids exactly as with the asyncio client (same reconnect and resend
rules, same errors). One implementation of the protocol serves both APIs.

    with slotgate.Slotgate(host="127.0.0.1", port=7420, ssl_ca="ca.pem",
                           token="secret") as sg:
        sg.set("{user:1}:name", "Ada", keyspace="session", ttl_ms=60000)
        print(sg.get("{user:1}:name", keyspace="session"))   # b'Ada'
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import (
    Any,
    Callable,
    Coroutine,
    Dict,
    List,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
    Union,
)

from . import _aio, gamecache, memory
from ._proto import slotgate_pb2 as pb
from .errors import LeaseInvalid, SlotgateError, Timeout
from .gamecache import CacheStats, HealthStatus, Keyspaces, MSetItems, decode_json, encode_json
from .types import Key, KeyResult, LeaseResult, MSetInput, ServerInfo, Value, Versioned

__all__ = ["Slotgate", "GameCache", "MemorySlotgate", "MemoryGameCache"]

T = TypeVar("T")


class _LoopThread:
    """An event loop running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="slotgate-io", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        if threading.current_thread() is self.thread:
            coro.close()
            raise RuntimeError("blocking slotgate call from its own I/O thread")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


class Slotgate:
    """Blocking slotgate client; thread-safe. Takes the options of
    slotgate.asyncio.Slotgate (host, port, ssl_ca, ssl_cert, ssl_key,
    server_hostname, token, keyspace, pool_size, deadline_ms, ...) and has
    the same methods, returning their results directly."""

    def __init__(self, host: str = "127.0.0.1", port: int = 7420, **options: Any) -> None:
        self._init(_aio.Slotgate(host, port, **options))

    def _init(self, aio: _aio.Slotgate) -> None:
        self.aio = aio
        self._io = _LoopThread()
        self._closed = False

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._io.run(coro)

    def __enter__(self) -> "Slotgate":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            if not self._closed:
                self._io.stop()
        except Exception:
            pass

    def connect(self) -> ServerInfo:
        """Open the first connection now; raises the handshake error."""
        return self._run(self.aio.connect())

    @property
    def server_info(self) -> Optional[ServerInfo]:
        return self.aio.server_info

    def close(self) -> None:
        """Wait for calls in flight, close the connections, stop the thread."""
        if self._closed:
            return
        self._closed = True
        try:
            self._run(self.aio.aclose())
        finally:
            self._io.stop()

    def request(self, request: pb.Request) -> pb.Response:
        return self._run(self.aio.request(request))

    def ping(self, *, deadline_ms: Optional[int] = None) -> bool:
        return self._run(self.aio.ping(deadline_ms=deadline_ms))

    def get(self, key: Key, *, keyspace: Optional[str] = None, deadline_ms: Optional[int] = None) -> Optional[bytes]:
        return self._run(self.aio.get(key, keyspace=keyspace, deadline_ms=deadline_ms))

    def set(
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
        return self._run(
            self.aio.set(key, value, ttl_ms=ttl_ms, nx=nx, xx=xx, keyspace=keyspace, deadline_ms=deadline_ms)
        )

    def delete(self, key: Key, *, keyspace: Optional[str] = None, deadline_ms: Optional[int] = None) -> int:
        return self._run(self.aio.delete(key, keyspace=keyspace, deadline_ms=deadline_ms))

    def expire(
        self, key: Key, ttl_ms: int, *, keyspace: Optional[str] = None, deadline_ms: Optional[int] = None
    ) -> bool:
        return self._run(self.aio.expire(key, ttl_ms, keyspace=keyspace, deadline_ms=deadline_ms))

    def mget(
        self, keys: Sequence[Key], *, keyspace: Optional[str] = None, deadline_ms: Optional[int] = None
    ) -> List[Optional[bytes]]:
        return self._run(self.aio.mget(keys, keyspace=keyspace, deadline_ms=deadline_ms))

    def mget_results(
        self, keys: Sequence[Key], *, keyspace: Optional[str] = None, deadline_ms: Optional[int] = None
    ) -> List[KeyResult]:
        return self._run(self.aio.mget_results(keys, keyspace=keyspace, deadline_ms=deadline_ms))

    def mset(
        self,
        items: MSetInput,
        *,
        ttl_ms: Optional[int] = None,
        nx: bool = False,
        xx: bool = False,
        keyspace: Optional[str] = None,
        deadline_ms: Optional[int] = None,
    ) -> List[bool]:
        return self._run(
            self.aio.mset(items, ttl_ms=ttl_ms, nx=nx, xx=xx, keyspace=keyspace, deadline_ms=deadline_ms)
        )

    def mset_results(
        self,
        items: MSetInput,
        *,
        ttl_ms: Optional[int] = None,
        nx: bool = False,
        xx: bool = False,
        keyspace: Optional[str] = None,
        deadline_ms: Optional[int] = None,
    ) -> List[KeyResult]:
        return self._run(
            self.aio.mset_results(items, ttl_ms=ttl_ms, nx=nx, xx=xx, keyspace=keyspace, deadline_ms=deadline_ms)
        )

    def mdel(self, keys: Sequence[Key], *, keyspace: Optional[str] = None, deadline_ms: Optional[int] = None) -> int:
        return self._run(self.aio.mdel(keys, keyspace=keyspace, deadline_ms=deadline_ms))

    def mdel_results(
        self, keys: Sequence[Key], *, keyspace: Optional[str] = None, deadline_ms: Optional[int] = None
    ) -> Tuple[int, List[KeyResult]]:
        return self._run(self.aio.mdel_results(keys, keyspace=keyspace, deadline_ms=deadline_ms))

    def invalidate(self, pattern: Key, *, keyspace: Optional[str] = None, deadline_ms: Optional[int] = None) -> int:
        return self._run(self.aio.invalidate(pattern, keyspace=keyspace, deadline_ms=deadline_ms))

    def get_or_lease(
        self,
        key: Key,
        *,
        ttl_ms: Optional[int] = None,
        keyspace: Optional[str] = None,
        deadline_ms: Optional[int] = None,
    ) -> LeaseResult:
        return self._run(self.aio.get_or_lease(key, ttl_ms=ttl_ms, keyspace=keyspace, deadline_ms=deadline_ms))

    def set_with_lease(
        self,
        key: Key,
        value: Value,
        lease: Union[bytes, str],
        *,
        ttl_ms: Optional[int] = None,
        keyspace: Optional[str] = None,
        deadline_ms: Optional[int] = None,
    ) -> None:
        self._run(
            self.aio.set_with_lease(key, value, lease, ttl_ms=ttl_ms, keyspace=keyspace, deadline_ms=deadline_ms)
        )

    def get_versioned(
        self, key: Key, *, keyspace: Optional[str] = None, deadline_ms: Optional[int] = None
    ) -> Optional[Versioned]:
        return self._run(self.aio.get_versioned(key, keyspace=keyspace, deadline_ms=deadline_ms))

    def set_versioned(
        self,
        key: Key,
        value: Value,
        version: int,
        *,
        ttl_ms: Optional[int] = None,
        keyspace: Optional[str] = None,
        deadline_ms: Optional[int] = None,
    ) -> int:
        return self._run(
            self.aio.set_versioned(key, value, version, ttl_ms=ttl_ms, keyspace=keyspace, deadline_ms=deadline_ms)
        )

    def stats(self, *, deadline_ms: Optional[int] = None) -> Dict[str, int]:
        return self._run(self.aio.stats(deadline_ms=deadline_ms))


class MemorySlotgate(Slotgate):
    """Blocking client over an in-memory fake (slotgate.memory)."""

    def __init__(self, backend: Optional[memory.MemoryBackend] = None, **options: Any) -> None:
        self._init(memory.MemorySlotgate(backend, **options))

    @property
    def backend(self) -> memory.MemoryBackend:
        aio = self.aio
        assert isinstance(aio, memory.MemorySlotgate)
        return aio.backend


class GameCache:
    """The game-domain API over the blocking client: the methods of
    slotgate.asyncio.GameCache (see slotgate.gamecache), returning results;
    get_cached_query takes a plain callable and runs it in the caller's
    thread.

        cache = slotgate.GameCache(slotgate.Slotgate(host=..., ssl_ca=..., token=...))
        cache.set_user_session("123", {"name": "Ada"})
    """

    def __init__(
        self,
        client: Slotgate,
        *,
        keyspaces: Keyspaces = Keyspaces(),
        serialize: Callable[[Any], bytes] = encode_json,
        deserialize: Callable[[bytes], Any] = decode_json,
        query_lease_ttl_ms: int = 10000,
        query_ttl_seconds: float = 300,
        query_wait_ms: int = 30000,
    ) -> None:
        self.client = client
        self._async = gamecache.GameCache(
            client.aio,
            keyspaces=keyspaces,
            serialize=serialize,
            deserialize=deserialize,
            query_lease_ttl_ms=query_lease_ttl_ms,
            query_ttl_seconds=query_ttl_seconds,
            query_wait_ms=query_wait_ms,
        )
        self.keyspaces = keyspaces

    def __enter__(self) -> "GameCache":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self.client.close()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.client._run(coro)

    def get_user_session(self, user_id: Union[str, int]) -> Any:
        return self._run(self._async.get_user_session(user_id))

    def set_user_session(self, user_id: Union[str, int], session: Any, ttl_seconds: Optional[float] = None) -> None:
        self._run(self._async.set_user_session(user_id, session, ttl_seconds))

    def get_room_state(self, room_id: Union[str, int]) -> Any:
        return self._run(self._async.get_room_state(room_id))

    def set_room_state(self, room_id: Union[str, int], state: Any, ttl_seconds: Optional[float] = None) -> None:
        self._run(self._async.set_room_state(room_id, state, ttl_seconds))

    def get_asset_metadata(self, asset_id: Union[str, int]) -> Any:
        return self._run(self._async.get_asset_metadata(asset_id))

    def set_asset_metadata(self, asset_id: Union[str, int], metadata: Any, ttl_seconds: Optional[float] = None) -> None:
        self._run(self._async.set_asset_metadata(asset_id, metadata, ttl_seconds))

    def get_game_system_template(self, system_id: Union[str, int]) -> Any:
        return self._run(self._async.get_game_system_template(system_id))

    def set_game_system_template(
        self, system_id: Union[str, int], template: Any, ttl_seconds: Optional[float] = None
    ) -> None:
        self._run(self._async.set_game_system_template(system_id, template, ttl_seconds))

    def mget(self, keys: List[str]) -> List[Any]:
        return self._run(self._async.mget(keys))

    def mset(self, items: MSetItems) -> None:
        self._run(self._async.mset(items))

    def delete(self, key: str) -> int:
        return self._run(self._async.delete(key))

    def invalidate_user_data(self, user_id: Union[str, int]) -> int:
        return self._run(self._async.invalidate_user_data(user_id))

    def invalidate_room_data(self, room_id: Union[str, int]) -> int:
        return self._run(self._async.invalidate_room_data(room_id))

    def invalidate_pattern(self, pattern: str, keyspace: Optional[str] = None) -> int:
        return self._run(self._async.invalidate_pattern(pattern, keyspace))

    def get_cached_query(self, key: str, compute: Callable[[], T], ttl_seconds: Optional[float] = None) -> T:
        """As the asyncio GameCache's, with a plain callable run in the
        calling thread."""
        a = self._async
        ks = a.keyspaces.general
        k = gamecache.query_key(key)
        ttl = a.query_ttl_seconds if ttl_seconds is None else ttl_seconds
        give_up = time.monotonic() + a.query_wait_ms / 1000.0
        sg = self.client
        while True:
            r = sg.get_or_lease(k, ttl_ms=a.query_lease_ttl_ms, keyspace=ks)
            if r.hit:
                assert r.value is not None
                value: T = a.deserialize(r.value)
                return value
            if r.granted:
                assert r.lease is not None
                try:
                    result = compute()
                except BaseException:
                    try:
                        sg.delete(k, keyspace=ks)
                    except SlotgateError:
                        pass
                    raise
                try:
                    sg.set_with_lease(k, a.serialize(result), r.lease, ttl_ms=gamecache.seconds_to_ms(ttl), keyspace=ks)
                except LeaseInvalid:
                    pass
                return result
            if time.monotonic() >= give_up:
                raise Timeout(f"cached query {key!r} is still being computed by another caller")
            time.sleep((r.retry_after_ms or 10) / 1000.0)

    def health_check(self) -> HealthStatus:
        return self._run(self._async.health_check())

    def get_stats(self) -> CacheStats:
        return self._run(self._async.get_stats())


class MemoryGameCache(GameCache):
    """GameCache over the in-memory fake, for game-server unit tests.
    Several MemoryGameCache(backend=...) share one backend's data."""

    def __init__(self, backend: Optional[memory.MemoryBackend] = None, **options: Any) -> None:
        super().__init__(MemorySlotgate(backend), **options)

    @property
    def backend(self) -> memory.MemoryBackend:
        client = self.client
        assert isinstance(client, MemorySlotgate)
        return client.backend
