#!/usr/bin/env python3
"""check_layers - the proxy's files call only downward, and no two call each other.

    check_layers.py LIBSG_PROXY_A PROXY_SOURCE_DIR

Two checks (docs/ARCHITECTURE.md, "Layers"):
  * calls: from the symbols each object of libsg_proxy.a defines and uses
    (nm), the graph "file X calls a function or reads data of file Y" must
    have no cycle, and every edge must go to the same layer or a lower one;
  * includes: no source file includes the header of a higher layer (a file
    below the worker never sees worker.h, whatever it calls).
Prints every offending edge and exits 1, else prints the layers and exits 0.
"""
import os
import re
import subprocess
import sys

# Highest first. A file not listed is an error (a new file must be placed).
LAYERS = [
    ("main", ["main"]),
    ("operators", ["admin"]),
    ("worker", ["worker"]),
    ("topology manager", ["topomgr"]),
    ("listener, listings", ["listener", "clientlist"]),
    ("session", ["session"]),
    ("request", ["request", "command", "coalesce", "optable", "ops", "ops_batch",
                 "ops_invalidate", "ops_kv", "ops_lease", "ops_versioned", "replymap"]),
    ("router", ["router"]),
    ("shardlink", ["shardlink"]),
    ("conn", ["conn", "tls"]),
    ("codecs and data", ["frame", "fastpb", "resp", "envelope", "slot", "proxyproto", "config", "core",
                         "stats", "metrics", "snapshot", "topology", "util", "log", "fault", "tlsrec", "deadline"]),
]
RANK = {f: i for i, (_, files) in enumerate(LAYERS) for f in files}


def layer(f):
    return LAYERS[RANK[f]][0]


def call_graph(lib):
    out = subprocess.run(["nm", "-A", lib], check=True, capture_output=True, text=True).stdout
    defs, uses = {}, {}
    for line in out.splitlines():
        m = re.match(r"[^:]+:([^:]+)\.c\.o:\s*[0-9a-f]*\s+(\w)\s+(\S+)$", line)
        if not m:
            continue
        f, kind, sym = m.groups()
        uses.setdefault(f, set())
        if kind in "TDRB":
            defs[sym] = f
        elif kind == "U":
            uses[f].add(sym)
    edges = {f: set() for f in uses}
    for f, syms in uses.items():
        for s in syms:
            if s in defs and defs[s] != f:
                edges[f].add(defs[s])
    return edges


def include_graph(src):
    edges = {}
    for name in sorted(os.listdir(src)):
        if not name.endswith(".c"):
            continue
        with open(os.path.join(src, name)) as fh:
            incs = re.findall(r'^#include "([a-z_]+)\.h"', fh.read(), re.M)
        edges[name[:-2]] = {i for i in incs if i != name[:-2]}
    return edges


def cycles(edges):
    """Strongly connected components with more than one file (Tarjan)."""
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in list(edges):
        if v not in index:
            visit(v)
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    calls = call_graph(sys.argv[1])
    incs = include_graph(sys.argv[2])
    bad = []
    for kind, edges in (("calls", calls), ("includes", incs)):
        for f, deps in sorted(edges.items()):
            for d in sorted(deps):
                for x in (f, d):
                    if x not in RANK:
                        bad.append(f"{x}: not placed in a layer (tests/unit/check_layers.py)")
                if f in RANK and d in RANK and RANK[d] < RANK[f]:
                    bad.append(f"{f} ({layer(f)}) {kind} {d} ({layer(d)}): upward")
    for comp in cycles(calls):
        bad.append("call cycle: " + " <-> ".join(comp))
    if bad:
        print("\n".join(sorted(set(bad))))
        sys.exit(1)
    for name, files in LAYERS:
        present = [f for f in files if f in calls or f in incs]
        print(f"{name:20} {' '.join(present)}")
    n = sum(len(d) for d in calls.values())
    print(f"ok: {len(calls)} objects, {n} call edges, all downward, no cycle")


if __name__ == "__main__":
    main()
