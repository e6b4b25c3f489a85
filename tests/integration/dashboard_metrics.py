#!/usr/bin/env python3
"""Print every slotgate_* and process_* sample name the PromQL queries of a Grafana
dashboard use (targets[].expr and templating queries), one per line, so
itest_metrics can check each one against a live /metrics scrape."""
import json
import re
import sys


def exprs(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("expr", "query", "definition") and isinstance(v, str):
                yield v
            elif isinstance(v, dict) and k == "query" and isinstance(v.get("query"), str):
                yield v["query"]
            else:
                yield from exprs(v)
    elif isinstance(node, list):
        for v in node:
            yield from exprs(v)


def main(path):
    with open(path) as f:
        dash = json.load(f)
    names = set()
    for e in exprs(dash):
        names.update(re.findall(r"\b(?:slotgate|process)_[A-Za-z0-9_]+", e))
    if not names:
        print("no slotgate_ metric in any query of " + path, file=sys.stderr)
        return 1
    for n in sorted(names):
        print(n)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
