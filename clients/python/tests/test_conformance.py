"""Conformance adapter: runs tests/conformance/scenarios.json.

Each scenario is one test case, twice:
- test_live[<name>] against the slotgate that tests/conformance/run.sh
  started (skipped when SG_CONF_HOST is not set, i.e. outside run.sh);
- test_memory[<name>] against the in-memory fake (MemorySlotgate), for the
  scenarios whose `requires` is empty.
SG_CONF_ONLY (comma-separated names) restricts both. The step kinds and the
outcome mapping are those of tests/conformance/README.md.
"""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import secrets
import string
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest
from google.protobuf import json_format

from slotgate import BatchError, SlotgateError, VersionConflict
from slotgate._proto import slotgate_pb2 as pb
from slotgate.asyncio import MemoryBackend, MemorySlotgate, Slotgate
from slotgate.errors import code_name

REPO = pathlib.Path(__file__).resolve().parents[3]
SCENARIOS = pathlib.Path(os.environ.get("SG_CONF_SCENARIOS") or REPO / "tests" / "conformance" / "scenarios.json")
LIVE = bool(os.environ.get("SG_CONF_HOST"))
ONLY = {n for n in os.environ.get("SG_CONF_ONLY", "").split(",") if n}

Outcome = Dict[str, Any]
Factory = Callable[[Dict[str, Any]], Slotgate]


def _load() -> List[Dict[str, Any]]:
    data = json.loads(SCENARIOS.read_text())
    assert data["version"] == 1
    scenarios: List[Dict[str, Any]] = data["scenarios"]
    return [s for s in scenarios if not ONLY or s["name"] in ONLY]


ALL = _load()


def live_factory(options: Dict[str, Any]) -> Slotgate:
    env = os.environ
    return Slotgate(
        env["SG_CONF_HOST"],
        int(env["SG_CONF_PORT"]),
        ssl_ca=env["SG_CONF_CA"],
        ssl_cert=env.get("SG_CONF_CERT"),
        ssl_key=env.get("SG_CONF_KEY"),
        server_hostname=env.get("SG_CONF_SERVER_NAME"),
        token=options.get("token", env.get("SG_CONF_TOKEN")),
        pool_size=int(options.get("pool_size", 1)),
        client_name="slotgate-python-conformance",
    )


class Runner:
    """Executes one scenario's steps with a client factory."""

    def __init__(self, factory: Factory, ctl: Optional[str]) -> None:
        self.factory = factory
        self.ctl_path = ctl
        self.clients: Dict[str, Slotgate] = {}
        self.vars: Dict[str, Any] = {}
        alphabet = string.ascii_lowercase + string.digits
        self.run = "".join(secrets.choice(alphabet) for _ in range(10))

    # byte strings and substitution

    def sub(self, text: str, i: Optional[int]) -> str:
        text = text.replace("${run}", self.run)
        if i is not None:
            text = text.replace("${i}", str(i))
        return text

    def data(self, spec: Any, i: Optional[int]) -> bytes:
        if isinstance(spec, str):
            return self.sub(spec, i).encode()
        if "hex" in spec:
            return bytes.fromhex(spec["hex"])
        if "repeat" in spec:
            return self.sub(spec["repeat"], i).encode() * int(spec["count"])
        if "var" in spec:
            v = self.vars[spec["var"]]
            return v if isinstance(v, bytes) else str(v).encode()
        raise AssertionError(f"bad byte string {spec!r}")

    def num(self, spec: Any) -> int:
        if isinstance(spec, dict) and "var" in spec:
            return int(self.vars[spec["var"]])
        return int(spec)

    def client(self, name: Optional[str]) -> Slotgate:
        name = name or "default"
        if name not in self.clients:
            self.clients[name] = self.factory({})
        return self.clients[name]

    # one call -> outcome

    async def call(self, client: Slotgate, call: str, args: Dict[str, Any], i: Optional[int] = None) -> Outcome:
        try:
            return await self._call(client, call, args, i)
        except BatchError as err:  # not raised by the *_results methods used below
            raise AssertionError(f"unexpected BatchError {err!r}") from None
        except VersionConflict as err:
            return {"code": err.code, "version": err.version}
        except SlotgateError as err:
            out: Outcome = {"code": err.code, "message": err.message}
            count = getattr(err, "count", None)
            if count is not None:
                out["count"] = count
            return out

    async def _call(self, c: Slotgate, call: str, a: Dict[str, Any], i: Optional[int]) -> Outcome:
        ks = self.sub(a.get("keyspace", ""), i)
        dl = a.get("deadline_ms")
        key = self.data(a["key"], i) if "key" in a else b""
        if call == "ping":
            await c.ping(deadline_ms=dl)
            return {"code": "OK"}
        if call == "stats":
            return {"code": "OK", "stats": await c.stats(deadline_ms=dl)}
        if call == "get":
            v = await c.get(key, keyspace=ks, deadline_ms=dl)
            return {"code": "NOT_FOUND"} if v is None else {"code": "OK", "value": v}
        if call == "set":
            ok = await c.set(
                key,
                self.data(a["value"], i),
                ttl_ms=a.get("ttl_ms"),
                nx=bool(a.get("nx")),
                xx=bool(a.get("xx")),
                keyspace=ks,
                deadline_ms=dl,
            )
            return {"code": "OK" if ok else "NOT_APPLIED"}
        if call == "del":
            n = await c.delete(key, keyspace=ks, deadline_ms=dl)
            return {"code": "OK" if n else "NOT_FOUND", "count": n}
        if call == "expire":
            ok = await c.expire(key, int(a["ttl_ms"]), keyspace=ks, deadline_ms=dl)
            return {"code": "OK", "count": 1} if ok else {"code": "NOT_FOUND", "count": 0}
        if call == "mget":
            keys = [self.data(k, i) for k in a["keys"]]
            res = await c.mget_results(keys, keyspace=ks, deadline_ms=dl)
            return {"code": "OK", "results": [{"code": r.code, "value": r.value} for r in res]}
        if call == "mset":
            items = [
                (self.data(it["key"], i), self.data(it["value"], i), it.get("ttl_ms")) for it in a["items"]
            ]
            res = await c.mset_results(
                items,
                ttl_ms=a.get("ttl_ms"),
                nx=bool(a.get("nx")),
                xx=bool(a.get("xx")),
                keyspace=ks,
                deadline_ms=dl,
            )
            return {"code": "OK", "results": [{"code": r.code} for r in res]}
        if call == "mdel":
            keys = [self.data(k, i) for k in a["keys"]]
            n, res = await c.mdel_results(keys, keyspace=ks, deadline_ms=dl)
            return {"code": "OK", "count": n, "results": [{"code": r.code} for r in res]}
        if call == "invalidate":
            n = await c.invalidate(self.data(a["pattern"], i), keyspace=ks, deadline_ms=dl)
            return {"code": "OK", "count": n}
        if call == "get_or_lease":
            r = await c.get_or_lease(key, ttl_ms=a.get("ttl_ms"), keyspace=ks, deadline_ms=dl)
            return {
                "code": r.code,
                "value": r.value,
                "lease": r.lease,
                "retry_after_ms": r.retry_after_ms,
                "version": r.version,
            }
        if call == "set_with_lease":
            await c.set_with_lease(
                key, self.data(a["value"], i), self.data(a["lease"], i), ttl_ms=a.get("ttl_ms"), keyspace=ks,
                deadline_ms=dl,
            )
            return {"code": "OK"}
        if call == "get_versioned":
            vv = await c.get_versioned(key, keyspace=ks, deadline_ms=dl)
            return {"code": "NOT_FOUND"} if vv is None else {"code": "OK", "value": vv.value, "version": vv.version}
        if call == "set_versioned":
            ver = await c.set_versioned(
                key, self.data(a["value"], i), self.num(a["version"]), ttl_ms=a.get("ttl_ms"), keyspace=ks,
                deadline_ms=dl,
            )
            return {"code": "OK", "version": ver}
        if call == "raw":
            req = json_format.ParseDict(a["request"], pb.Request())
            resp = await c.request(req)
            return {
                "code": code_name(resp.code),
                "value": resp.value,
                "results": [{"code": code_name(r.code), "value": r.value} for r in resp.results],
                "count": resp.count,
                "version": resp.version,
                "lease": resp.lease,
                "retry_after_ms": resp.retry_after_ms,
                "stats": dict(resp.stats),
            }
        raise AssertionError(f"unknown call {call!r}")

    # expectations

    def mismatch(self, expect: Dict[str, Any], out: Outcome, elapsed_ms: float, i: Optional[int]) -> Optional[str]:
        """None if out matches expect, else why not."""

        def code_ok(exp: Dict[str, Any], code: str) -> bool:
            if "code" in exp and code != exp["code"]:
                return False
            return "code_in" not in exp or code in exp["code_in"]

        def num_ok(exp: Any, got: Any) -> bool:
            if got is None:
                return False
            if isinstance(exp, dict):
                return int(exp.get("min", got)) <= int(got) <= int(exp.get("max", got))
            return int(exp) == int(got)

        if not code_ok(expect, out["code"]):
            return f"code {out['code']} ({out.get('message', '')})"
        if "value" in expect and out.get("value") != self.data(expect["value"], i):
            return f"value {out.get('value')!r:.200}"
        if "results" in expect:
            got = out.get("results") or []
            if len(got) != len(expect["results"]):
                return f"{len(got)} results"
            for n, (e, g) in enumerate(zip(expect["results"], got)):
                if not code_ok(e, g["code"]):
                    return f"results[{n}].code {g['code']}"
                if "value" in e and g.get("value") != self.data(e["value"], i):
                    return f"results[{n}].value {g.get('value')!r:.200}"
        for field in ("count", "version"):
            if field in expect and not num_ok(expect[field], out.get(field)):
                return f"{field} {out.get(field)}"
        if expect.get("lease_present") and not out.get("lease"):
            return "no lease"
        for name in expect.get("stats_has", []):
            if name not in (out.get("stats") or {}):
                return f"stats without {name}"
        if "within_ms" in expect and elapsed_ms > expect["within_ms"]:
            return f"settled after {elapsed_ms:.0f} ms"
        return None

    async def timed(self, c: Slotgate, call: str, args: Dict[str, Any], i: Optional[int]) -> Tuple[Outcome, float]:
        t0 = time.monotonic()
        out = await self.call(c, call, args, i)
        return out, (time.monotonic() - t0) * 1000.0

    # control command

    async def ctl(self, verb: str, arg: Optional[str]) -> str:
        assert self.ctl_path, "scenario needs ctl"
        argv = [self.ctl_path, verb] + ([arg] if arg is not None else [])
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await proc.communicate()
        assert proc.returncode == 0, f"ctl {verb} {arg or ''} failed: {err.decode(errors='replace')}"
        return out.decode().strip()

    # steps

    async def step(self, st: Dict[str, Any]) -> None:
        if "call" in st:
            c = self.client(st.get("client"))
            out, ms = await self.timed(c, st["call"], st.get("args", {}), None)
            why = self.mismatch(st.get("expect", {}), out, ms, None)
            assert why is None, f"{st['call']}: {why}; expected {st.get('expect')}"
            for field, var in st.get("save", {}).items():
                self.vars[var] = out.get(field)
        elif "new_client" in st:
            self.clients[st["new_client"]] = self.factory(st.get("options", {}))
        elif "close_client" in st:
            c = self.clients.pop(st["close_client"])
            await c.aclose()
        elif "ctl" in st:
            arg = self.sub(st["arg"], None) if "arg" in st else None
            text = await self.ctl(st["ctl"], arg)
            exp = st.get("expect")
            if exp:
                v = int(text)
                if "equals" in exp:
                    assert v == exp["equals"], f"ctl {st['ctl']}: {v}, expected {exp}"
                else:
                    assert exp.get("min", v) <= v <= exp.get("max", v), f"ctl {st['ctl']}: {v}, expected {exp}"
        elif "concurrent" in st:
            spec = st["concurrent"]
            c = self.client(spec.get("client"))
            n = int(spec["count"])
            outs = await asyncio.gather(*(self.timed(c, spec["call"], spec.get("args", {}), i) for i in range(n)))
            for i, (out, ms) in enumerate(outs):
                why = self.mismatch(self.subst_expect(st.get("expect", {}), i), out, ms, i)
                assert why is None, f"concurrent {spec['call']} #{i}: {why}"
        elif "stampede" in st:
            await self.stampede(st["stampede"], st.get("expect", {}))
        elif "load" in st:
            await self.load(st["load"], st.get("expect", {}))
        elif "wait_until" in st:
            inner = st["wait_until"]
            c = self.client(inner.get("client"))
            give_up = time.monotonic() + st.get("timeout_ms", 10000) / 1000.0
            while True:
                out, ms = await self.timed(c, inner["call"], inner.get("args", {}), None)
                why = self.mismatch(inner.get("expect", {}), out, ms, None)
                if why is None:
                    break
                assert time.monotonic() < give_up, f"wait_until {inner['call']}: still {why}"
                await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"unknown step {st}")

    def subst_expect(self, expect: Dict[str, Any], i: int) -> Dict[str, Any]:
        text = json.dumps(expect).replace("${i}", str(i))
        result: Dict[str, Any] = json.loads(text)
        return result

    async def stampede(self, spec: Dict[str, Any], expect: Dict[str, Any]) -> None:
        nclients = int(spec.get("clients", 1))
        clients = [self.factory({}) for _ in range(nclients)]
        ks = spec.get("keyspace", "")
        key = self.data(spec["key"], None)
        value = self.data(spec["value"], None)
        fills = 0

        async def caller(c: Slotgate) -> bytes:
            nonlocal fills
            while True:
                r = await c.get_or_lease(key, keyspace=ks)
                if r.hit:
                    assert r.value is not None
                    return r.value
                if r.granted:
                    fills += 1
                    assert r.lease is not None
                    await c.set_with_lease(key, value, r.lease, keyspace=ks)
                    continue
                await asyncio.sleep((r.retry_after_ms or 10) / 1000.0)

        try:
            got = await asyncio.gather(*(caller(clients[n % nclients]) for n in range(int(spec["callers"]))))
        finally:
            for c in clients:
                await c.aclose()
        if "fills" in expect:
            assert fills == expect["fills"], f"stampede: {fills} fills"
        if "value" in expect:
            want = self.data(expect["value"], None)
            assert all(v == want for v in got), "stampede: a caller read another value"

    async def load(self, spec: Dict[str, Any], expect: Dict[str, Any]) -> None:
        c = self.client(spec.get("client"))
        count = int(spec["count"])
        after = int(spec.get("after", 0))
        done = 0
        failed: List[Tuple[int, str]] = []
        next_i = 0
        triggered = asyncio.Event()
        verb_task: Optional["asyncio.Task[str]"] = None

        async def worker() -> None:
            nonlocal done, next_i, verb_task
            while next_i < count:
                i = next_i
                next_i += 1
                out = await self.call(c, spec["call"], spec.get("args", {}), i)
                if out["code"] != "OK":
                    failed.append((i, f"{out['code']} {out.get('message', '')}"))
                done += 1
                if done >= after and not triggered.is_set() and spec.get("during"):
                    triggered.set()
                    verb_task = asyncio.ensure_future(self.ctl(spec["during"], None))

        await asyncio.gather(*(worker() for _ in range(int(spec.get("concurrency", 1)))))
        if verb_task is not None:
            await verb_task
        if "failed" in expect:
            assert len(failed) == expect["failed"], f"load: {len(failed)} failed, first {failed[:5]}"

    async def run_scenario(self, scenario: Dict[str, Any]) -> None:
        try:
            for n, st in enumerate(scenario["steps"]):
                try:
                    await self.step(st)
                except AssertionError as err:
                    raise AssertionError(f"step {n}: {err}") from None
        finally:
            for c in self.clients.values():
                await c.aclose()


def _names(requires_empty: bool) -> List[Any]:
    return [
        pytest.param(s, id=s["name"]) for s in ALL if not requires_empty or not s["requires"]
    ]


@pytest.mark.skipif(not LIVE, reason="needs tests/conformance/run.sh (SG_CONF_HOST)")
@pytest.mark.parametrize("scenario", _names(False))
def test_live(scenario: Dict[str, Any]) -> None:
    runner = Runner(live_factory, os.environ.get("SG_CONF_CTL"))
    asyncio.run(runner.run_scenario(scenario))


@pytest.mark.parametrize("scenario", _names(True))
def test_memory(scenario: Dict[str, Any]) -> None:
    backend = MemoryBackend()

    def factory(options: Dict[str, Any]) -> Slotgate:
        return MemorySlotgate(backend)

    runner = Runner(factory, None)
    asyncio.run(runner.run_scenario(scenario))
