"""A tiny game server's use of GameCache: sessions, room state with
optimistic updates, a cached leaderboard query, and cleanup.

    python examples/game_server.py                  # in-memory fake
    SLOTGATE_HOST=127.0.0.1 SLOTGATE_PORT=7420 SLOTGATE_CA=ca.pem \\
    SLOTGATE_TOKEN=secret python examples/game_server.py   # a real slotgate
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, Dict, List

from slotgate.asyncio import GameCache, MemoryGameCache, Slotgate


def open_cache() -> GameCache:
    host = os.environ.get("SLOTGATE_HOST")
    if not host:
        return MemoryGameCache()
    sg = Slotgate(
        host,
        int(os.environ.get("SLOTGATE_PORT", "7420")),
        ssl_ca=os.environ.get("SLOTGATE_CA"),
        server_hostname=os.environ.get("SLOTGATE_SERVER_NAME"),
        token=os.environ.get("SLOTGATE_TOKEN"),
    )
    return GameCache(sg)


async def load_leaderboard() -> List[Dict[str, Any]]:
    await asyncio.sleep(0.05)  # the expensive database query
    return [{"user": "ada", "score": 1200}, {"user": "bob", "score": 950}]


async def main() -> None:
    async with open_cache() as cache:
        # A player logs in: the session lives an hour (the keyspace default).
        await cache.set_user_session("ada", {"name": "Ada", "room": "r1"})
        session = await cache.get_user_session("ada")
        print("session:", session)

        # The room's state, written on every move.
        await cache.set_room_state("r1", {"players": ["ada"], "turn": 1})
        state = await cache.get_room_state("r1")
        state["players"].append("bob")
        state["turn"] += 1
        await cache.set_room_state("r1", state)
        print("room:", await cache.get_room_state("r1"))

        # 20 requests for the leaderboard at once: the query runs once.
        boards = await asyncio.gather(*(cache.get_cached_query("leaderboard", load_leaderboard, 30) for _ in range(20)))
        print("leaderboard:", boards[0], f"({len(boards)} callers)")

        # The room closes: forget everything tagged {room:r1}.
        print("removed:", await cache.invalidate_room_data("r1"))
        print("health:", await cache.health_check())
        stats = await cache.get_stats()
        print("room hit rate: %.2f" % stats.keyspaces["room"].hit_rate)


if __name__ == "__main__":
    asyncio.run(main())
