"""GET and SET of 100-byte values from Python, 50 concurrent callers in one
asyncio process: the slotgate asyncio client through slotgate, against
redis-py's redis.asyncio.cluster.RedisCluster straight to the same Redis
Cluster. Rounds are interleaved (slotgate, direct, direct, slotgate, ...),
each phase runs for a fixed time; the report gives per-round figures, the
medians, and the ratios against the issue's targets (throughput >= 0.8x the
direct client's, client CPU per op <= the direct client's).

Run it inside the conformance environment, which starts the cluster and a
TLS slotgate and exports where they are:

    tests/conformance/run.sh -- clients/python/.venv/bin/python bench/python/bench.py

Options: --seconds S per phase (3), --rounds N (5), --callers C (50),
--keys K (10000), --value-bytes B (100), --pool-size P (slotgate
connections, 1), --json (machine-readable line at the end).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
from typing import Any, Awaitable, Callable, Dict, List, Tuple

from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.utils import HIREDIS_AVAILABLE

from slotgate.asyncio import Slotgate

Op = Callable[[bytes], Awaitable[Any]]


def key_of(i: int) -> bytes:
    return b"bench:%08d" % i


async def phase(op: Op, callers: int, keys: int, seconds: float) -> Tuple[int, float, float]:
    """Run op with `callers` concurrent loops for `seconds`: (ops, wall s, CPU s)."""
    stop = False
    counts = [0] * callers

    async def loop(n: int) -> None:
        rnd = random.Random(n)
        while not stop:
            await op(key_of(rnd.randrange(keys)))
            counts[n] += 1

    cpu0 = time.process_time()
    t0 = time.perf_counter()
    tasks = [asyncio.ensure_future(loop(n)) for n in range(callers)]
    await asyncio.sleep(seconds)
    stop = True
    await asyncio.gather(*tasks)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    return sum(counts), wall, cpu


async def main(args: argparse.Namespace) -> int:
    env = os.environ
    value = b"v" * args.value_bytes
    sg = Slotgate(
        env["SG_CONF_HOST"],
        int(env["SG_CONF_PORT"]),
        ssl_ca=env["SG_CONF_CA"],
        server_hostname=env.get("SG_CONF_SERVER_NAME"),
        token=env.get("SG_CONF_TOKEN"),
        pool_size=args.pool_size,
        client_name="bench-python",
    )
    nodes = [ClusterNode(h, int(p)) for h, p in (a.rsplit(":", 1) for a in env["SG_CONF_REDIS"].split(","))]
    rc = RedisCluster(startup_nodes=nodes)
    await rc.initialize()
    await sg.connect()

    # Prefill every key through each path (the direct client writes the same
    # Redis keys: the default keyspace has no prefix).
    for start in range(0, args.keys, 500):
        batch = [(key_of(i), value) for i in range(start, min(start + 500, args.keys))]
        await sg.mset(batch)

    async def sg_get(k: bytes) -> Any:
        return await sg.get(k)

    async def sg_set(k: bytes) -> Any:
        return await sg.set(k, value)

    async def rc_get(k: bytes) -> Any:
        return await rc.get(k)

    async def rc_set(k: bytes) -> Any:
        return await rc.set(k, value)

    targets: Dict[str, Dict[str, Op]] = {
        "slotgate": {"GET": sg_get, "SET": sg_set},
        "redis-py": {"GET": rc_get, "SET": rc_set},
    }
    # Warm-up (connections, caches), not measured.
    for name, ops in targets.items():
        for opname, op in ops.items():
            await phase(op, args.callers, args.keys, 0.5)

    rows: List[Dict[str, Any]] = []
    order = list(targets)
    for rnd in range(args.rounds):
        names = order if rnd % 2 == 0 else list(reversed(order))
        for opname in ("GET", "SET"):
            for name in names:
                n, wall, cpu = await phase(targets[name][opname], args.callers, args.keys, args.seconds)
                row: Dict[str, Any] = {
                    "round": rnd + 1,
                    "client": name,
                    "op": opname,
                    "ops": n,
                    "ops_per_s": n / wall,
                    "cpu_us_per_op": cpu / n * 1e6 if n else float("inf"),
                    "cpu_util": cpu / wall,
                }
                rows.append(row)
                print(
                    f"round {rnd + 1} {opname:3} {name:8} {row['ops_per_s']:9.0f} ops/s "
                    f"{row['cpu_us_per_op']:7.1f} us CPU/op ({row['cpu_util'] * 100:.0f}% of a core)",
                    flush=True,
                )
    await sg.aclose()
    await rc.aclose()

    print()
    print(
        f"Python {sys.version.split()[0]}, {args.callers} callers, {args.value_bytes} B values, "
        f"{args.keys} keys, {args.rounds} rounds x {args.seconds:g} s, slotgate pool_size {args.pool_size}, "
        f"redis-py parser {'hiredis' if HIREDIS_AVAILABLE else 'pure Python'}"
    )
    print()
    print("| op | client | ops/s (median) | client CPU µs/op (median) | throughput ratio | CPU/op ratio |")
    print("|---|---|---:|---:|---:|---:|")
    summary: Dict[str, Dict[str, float]] = {}
    verdict = True
    for opname in ("GET", "SET"):
        med: Dict[str, Tuple[float, float]] = {}
        for name in targets:
            sel = [r for r in rows if r["op"] == opname and r["client"] == name]
            med[name] = (
                statistics.median(r["ops_per_s"] for r in sel),
                statistics.median(r["cpu_us_per_op"] for r in sel),
            )
        thr = med["slotgate"][0] / med["redis-py"][0]
        cpu = med["slotgate"][1] / med["redis-py"][1]
        summary[opname] = {"throughput_ratio": thr, "cpu_ratio": cpu}
        ok = thr >= 0.8 and cpu <= 1.0
        verdict = verdict and ok
        for name in targets:
            ratio = f"{thr:.2f}x" if name == "slotgate" else "1"
            cratio = f"{cpu:.2f}x" if name == "slotgate" else "1"
            print(f"| {opname} | {name} | {med[name][0]:.0f} | {med[name][1]:.1f} | {ratio} | {cratio} |")
    print()
    print(f"target (throughput >= 0.8x, CPU/op <= 1.0x): {'met' if verdict else 'MISSED'}")
    if args.json:
        print(json.dumps({"rows": rows, "summary": summary, "met": verdict}))
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--callers", type=int, default=50)
    ap.add_argument("--keys", type=int, default=10000)
    ap.add_argument("--value-bytes", type=int, default=100)
    ap.add_argument("--pool-size", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    sys.exit(asyncio.run(main(ap.parse_args())))
