// Conformance adapter: runs tests/conformance/scenarios.json against a client
// factory (the real Slotgate against a live slotgate, or MemorySlotgate), one
// node:test subtest per scenario. Maps every `call` onto the client's public
// typed API (the low-level request path only for `raw`) and the results onto
// the suite's outcome shape; see tests/conformance/README.md.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { fromJson } from "@bufbuild/protobuf";
import { SlotgateError, proto } from "../../dist/index.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));

export function scenarioFile() {
  return process.env.SG_CONF_SCENARIOS || path.resolve(HERE, "../../../../tests/conformance/scenarios.json");
}

export function loadScenarios() {
  const doc = JSON.parse(fs.readFileSync(scenarioFile(), "utf8"));
  assert.equal(doc.version, 1, "scenario file version");
  const only = (process.env.SG_CONF_ONLY || "").split(",").map((s) => s.trim()).filter(Boolean);
  return doc.scenarios.filter((s) => only.length === 0 || only.includes(s.name));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- byte strings and substitution -----------------------------------------

function subst(s, ctx) {
  return s.replace(/\$\{run\}/g, ctx.run).replace(/\$\{i\}/g, ctx.i === undefined ? "${i}" : String(ctx.i));
}

/** Deep-substitute every string in a JSON value. */
function substAll(v, ctx) {
  if (typeof v === "string") return subst(v, ctx);
  if (Array.isArray(v)) return v.map((x) => substAll(x, ctx));
  if (v !== null && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, substAll(x, ctx)]));
  return v;
}

function bytes(v, ctx) {
  if (typeof v === "string") return Buffer.from(v, "utf8");
  if (v && typeof v === "object") {
    if ("hex" in v) return Buffer.from(v.hex, "hex");
    if ("repeat" in v) return Buffer.from(v.repeat.repeat(v.count), "utf8");
    if ("var" in v) {
      assert.ok(v.var in ctx.vars, `variable ${v.var} was not saved`);
      const x = ctx.vars[v.var];
      return Buffer.isBuffer(x) ? x : Buffer.from(String(x), "utf8");
    }
  }
  throw new Error(`not a byte string: ${JSON.stringify(v)}`);
}

function integer(v, ctx) {
  if (v && typeof v === "object" && "var" in v) return BigInt(ctx.vars[v.var]);
  return BigInt(v);
}

// ---- calls -------------------------------------------------------------------

function callOpts(a) {
  const o = {};
  if (a.keyspace !== undefined) o.keyspace = a.keyspace;
  if (a.deadline_ms !== undefined) o.deadlineMs = a.deadline_ms;
  return o;
}

function setOpts(a) {
  const o = callOpts(a);
  if (a.ttl_ms !== undefined) o.ttlMs = a.ttl_ms;
  if (a.nx) o.nx = true;
  if (a.xx) o.xx = true;
  return o;
}

const CODE_NAMES = Object.fromEntries(Object.entries(proto.Code).filter(([, v]) => typeof v === "number").map(([k, v]) => [v, k]));

/** Run one call through the client's public API and return the outcome. */
export async function runCall(client, name, a, ctx) {
  try {
    switch (name) {
      case "ping":
        await client.ping(callOpts(a));
        return { code: "OK" };
      case "get": {
        const v = await client.getBuffer(bytes(a.key, ctx), callOpts(a));
        return v === null ? { code: "NOT_FOUND" } : { code: "OK", value: v };
      }
      case "set": {
        const r = await client.set(bytes(a.key, ctx), bytes(a.value, ctx), setOpts(a));
        return { code: r === "OK" ? "OK" : "NOT_APPLIED" };
      }
      case "del": {
        const n = await client.del(bytes(a.key, ctx), callOpts(a));
        return { code: n > 0 ? "OK" : "NOT_FOUND", count: n };
      }
      case "expire": {
        const n = await client.expire(bytes(a.key, ctx), a.ttl_ms, callOpts(a));
        return { code: n > 0 ? "OK" : "NOT_FOUND", count: n };
      }
      case "mget": {
        const res = await client.mgetDetailed(a.keys.map((k) => bytes(k, ctx)), callOpts(a));
        return { code: "OK", results: res };
      }
      case "mset": {
        const items = a.items.map((it) => ({ key: bytes(it.key, ctx), value: bytes(it.value, ctx), ttlMs: it.ttl_ms }));
        const res = await client.msetDetailed(items, setOpts(a));
        return { code: "OK", results: res };
      }
      case "mdel": {
        const { count, results } = await client.mdelDetailed(a.keys.map((k) => bytes(k, ctx)), callOpts(a));
        return { code: "OK", count, results };
      }
      case "invalidate": {
        const n = await client.invalidate(bytes(a.pattern, ctx), callOpts(a));
        return { code: "OK", count: n };
      }
      case "get_or_lease": {
        const o = callOpts(a);
        if (a.ttl_ms !== undefined) o.leaseTtlMs = a.ttl_ms;
        const r = await client.getOrLease(bytes(a.key, ctx), o);
        if (r.status === "hit") return { code: "OK", value: r.value, version: r.version };
        if (r.status === "lease") return { code: "LEASE_GRANTED", lease: r.lease };
        return { code: "LEASE_WAIT", retry_after_ms: r.retryAfterMs };
      }
      case "set_with_lease": {
        const ok = await client.setWithLease(bytes(a.key, ctx), bytes(a.value, ctx), bytes(a.lease, ctx), setOpts(a));
        return { code: ok ? "OK" : "LEASE_INVALID" };
      }
      case "get_versioned": {
        const r = await client.getVersioned(bytes(a.key, ctx), callOpts(a));
        return r === null ? { code: "NOT_FOUND" } : { code: "OK", value: r.value, version: r.version };
      }
      case "set_versioned": {
        const r = await client.setVersioned(bytes(a.key, ctx), bytes(a.value, ctx), integer(a.version, ctx), setOpts(a));
        return { code: r.ok ? "OK" : "VERSION_CONFLICT", version: r.version };
      }
      case "stats": {
        const s = await client.stats(callOpts(a));
        return { code: "OK", stats: s };
      }
      case "raw": {
        if (typeof client.request !== "function") throw new Error("raw needs the real client");
        const req = fromJson(proto.RequestSchema, a.request);
        const r = await client.request(req, { ...callOpts(a), validate: false });
        return {
          code: CODE_NAMES[r.code] ?? `UNKNOWN_${r.code}`,
          value: Buffer.from(r.value),
          count: Number(r.count),
          version: r.version,
          lease: Buffer.from(r.lease),
          retry_after_ms: r.retryAfterMs,
          results: r.results.map((k) => ({ code: CODE_NAMES[k.code] ?? `UNKNOWN_${k.code}`, value: Buffer.from(k.value) })),
          stats: Object.fromEntries(Object.entries(r.stats).map(([k, v]) => [k, Number(v)])),
        };
      }
      default:
        throw new Error(`unknown call ${name}`);
    }
  } catch (e) {
    if (e instanceof SlotgateError) {
      const out = { code: e.code, error: e };
      if (e.count !== undefined) out.count = e.count;
      if (e.version !== undefined) out.version = e.version;
      return out;
    }
    throw e;
  }
}

// ---- expectations --------------------------------------------------------------

function codeMatches(exp, code) {
  if (exp.code !== undefined && exp.code !== code) return `code ${code}, expected ${exp.code}`;
  if (exp.code_in !== undefined && !exp.code_in.includes(code)) return `code ${code}, expected one of ${exp.code_in.join(",")}`;
  return null;
}

function intMatches(exp, got, what) {
  if (got === undefined) return `no ${what} in the outcome`;
  const g = BigInt(got);
  if (typeof exp === "object") {
    if (exp.min !== undefined && g < BigInt(exp.min)) return `${what} ${g} < min ${exp.min}`;
    if (exp.max !== undefined && g > BigInt(exp.max)) return `${what} ${g} > max ${exp.max}`;
    return null;
  }
  return g === BigInt(exp) ? null : `${what} ${g}, expected ${exp}`;
}

function show(b) {
  if (!b) return String(b);
  return b.length > 40 ? `${b.length} bytes ${b.subarray(0, 20).toString("hex")}…` : `"${b.toString("latin1")}" (${b.toString("hex")})`;
}

/** First mismatch between an outcome and `expect`, or null. */
export function mismatch(exp, out, ctx, elapsedMs) {
  if (!exp) return null;
  let m = codeMatches(exp, out.code);
  if (m) return m + (out.error ? ` (${out.error.message})` : "");
  if (exp.value !== undefined) {
    const want = bytes(exp.value, ctx);
    if (!out.value || !Buffer.from(out.value).equals(want)) return `value ${show(out.value)}, expected ${show(want)}`;
  }
  if (exp.results !== undefined) {
    if (!out.results || out.results.length !== exp.results.length) return `results length ${out.results?.length}, expected ${exp.results.length}`;
    for (let i = 0; i < exp.results.length; i++) {
      const e = exp.results[i];
      const g = out.results[i];
      m = codeMatches(e, g.code);
      if (m) return `results[${i}]: ${m}`;
      if (e.value !== undefined) {
        const want = bytes(e.value, ctx);
        if (!g.value || !Buffer.from(g.value).equals(want)) return `results[${i}]: value ${show(g.value)}, expected ${show(want)}`;
      }
    }
  }
  if (exp.count !== undefined && (m = intMatches(exp.count, out.count, "count"))) return m;
  if (exp.version !== undefined && (m = intMatches(exp.version, out.version, "version"))) return m;
  if (exp.lease_present && !(out.lease && out.lease.length > 0)) return "no lease token";
  if (exp.stats_has) for (const n of exp.stats_has) if (!out.stats || !(n in out.stats)) return `stats has no ${n}`;
  if (exp.within_ms !== undefined && elapsedMs > exp.within_ms) return `settled after ${elapsedMs.toFixed(0)} ms, expected within ${exp.within_ms}`;
  return null;
}

// ---- control command ------------------------------------------------------------

function ctl(verb, arg) {
  const cmd = process.env.SG_CONF_CTL;
  assert.ok(cmd, "SG_CONF_CTL is not set");
  return new Promise((resolve, reject) => {
    execFile(cmd, arg === undefined ? [verb] : [verb, arg], { timeout: 120_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`ctl ${verb} ${arg ?? ""} failed: ${stderr || err.message}`));
      else resolve(stdout.trim());
    });
  });
}

// ---- steps ------------------------------------------------------------------------

async function timedCall(client, name, args, ctx) {
  const t0 = performance.now();
  const out = await runCall(client, name, args, ctx);
  return { out, ms: performance.now() - t0 };
}

async function runStep(step, sc, ctx) {
  const client = (n) => {
    const c = sc.clients.get(n ?? "default");
    assert.ok(c, `no client named ${n}`);
    return c;
  };
  if ("call" in step) {
    const args = substAll(step.args ?? {}, ctx);
    const exp = substAll(step.expect, ctx);
    const { out, ms } = await timedCall(client(step.client), step.call, args, ctx);
    const m = mismatch(exp, out, ctx, ms);
    assert.equal(m, null, `${step.call} ${JSON.stringify(step.args ?? {}).slice(0, 200)}: ${m}`);
    for (const [field, v] of Object.entries(step.save ?? {})) {
      assert.ok(out[field] !== undefined, `cannot save ${field}: not in the outcome`);
      ctx.vars[v] = out[field];
    }
    return;
  }
  if ("new_client" in step) {
    const o = substAll(step.options ?? {}, ctx);
    sc.clients.set(step.new_client, await sc.factory.create(o));
    return;
  }
  if ("close_client" in step) {
    const c = client(step.close_client);
    sc.clients.delete(step.close_client);
    await c.quit();
    return;
  }
  if ("ctl" in step) {
    const out = await ctl(step.ctl, step.arg === undefined ? undefined : subst(step.arg, ctx));
    if (step.expect) {
      const n = Number(out);
      assert.ok(Number.isFinite(n), `ctl ${step.ctl} printed ${out}`);
      if (step.expect.equals !== undefined) assert.equal(n, step.expect.equals, `ctl ${step.ctl} ${step.arg}`);
      if (step.expect.min !== undefined) assert.ok(n >= step.expect.min, `ctl ${step.ctl} ${step.arg}: ${n} < ${step.expect.min}`);
      if (step.expect.max !== undefined) assert.ok(n <= step.expect.max, `ctl ${step.ctl} ${step.arg}: ${n} > ${step.expect.max}`);
    }
    return;
  }
  if ("concurrent" in step) {
    const c = step.concurrent;
    const cl = client(c.client);
    const runs = [];
    for (let i = 0; i < c.count; i++) {
      const ic = { ...ctx, i };
      runs.push(timedCall(cl, c.call, substAll(c.args ?? {}, ic), ic).then(({ out, ms }) => mismatch(substAll(step.expect, ic), out, ic, ms)));
    }
    const res = await Promise.all(runs);
    const bad = res.map((m, i) => [i, m]).filter(([, m]) => m !== null);
    assert.equal(bad.length, 0, `${bad.length} of ${c.count} calls failed; first: #${bad[0]?.[0]}: ${bad[0]?.[1]}`);
    return;
  }
  if ("stampede" in step) {
    const s = substAll(step.stampede, ctx);
    const n = s.clients ?? 1;
    const cls = [];
    for (let k = 0; k < n; k++) cls.push(await sc.factory.create({}));
    try {
      let fills = 0;
      const key = bytes(s.key, ctx);
      const value = bytes(s.value, ctx);
      const caller = async (cl) => {
        for (let spins = 0; spins < 100000; spins++) {
          const r = await cl.getOrLease(key, { keyspace: s.keyspace ?? "" });
          if (r.status === "hit") return r.value;
          if (r.status === "lease") {
            fills++;
            await cl.setWithLease(key, value, r.lease, { keyspace: s.keyspace ?? "" });
            continue;
          }
          await sleep(r.retryAfterMs > 0 ? r.retryAfterMs : 10);
        }
        throw new Error("stampede caller never got a value");
      };
      const got = await Promise.all(Array.from({ length: s.callers }, (_, k) => caller(cls[k % n])));
      const exp = substAll(step.expect, ctx);
      if (exp.fills !== undefined) assert.equal(fills, exp.fills, "fills");
      if (exp.value !== undefined) {
        const want = bytes(exp.value, ctx);
        got.forEach((g, k) => assert.ok(Buffer.from(g).equals(want), `caller ${k} ended with ${show(g)}`));
      }
    } finally {
      for (const c of cls) await c.quit();
    }
    return;
  }
  if ("load" in step) {
    const l = step.load;
    const cl = client(l.client);
    let next = 0;
    let done = 0;
    let failed = 0;
    const failures = [];
    let verb = null;
    let fired = false;
    const worker = async () => {
      while (next < l.count) {
        const i = next++;
        const ic = { ...ctx, i };
        const out = await runCall(cl, l.call, substAll(l.args ?? {}, ic), ic);
        if (out.code !== "OK") {
          failed++;
          if (failures.length < 5) failures.push(`#${i}: ${out.code} ${out.error?.message ?? ""}`);
        }
        done++;
        if (!fired && l.during && done >= (l.after ?? 0)) {
          fired = true;
          verb = ctl(l.during);
        }
      }
    };
    await Promise.all(Array.from({ length: l.concurrency ?? 1 }, worker));
    if (verb) await verb;
    const exp = step.expect ?? {};
    if (exp.failed !== undefined) assert.equal(failed, exp.failed, `failed calls: ${failures.join("; ")}`);
    return;
  }
  if ("wait_until" in step) {
    const w = step.wait_until;
    const deadline = performance.now() + (step.timeout_ms ?? 10000);
    let last = null;
    for (;;) {
      const args = substAll(w.args ?? {}, ctx);
      const { out, ms } = await timedCall(client(w.client), w.call, args, ctx);
      last = mismatch(substAll(w.expect, ctx), out, ctx, ms);
      if (last === null) return;
      if (performance.now() > deadline) assert.fail(`wait_until ${w.call} timed out after ${step.timeout_ms} ms: ${last}`);
      await sleep(50);
    }
  }
  throw new Error(`unknown step ${JSON.stringify(step).slice(0, 100)}`);
}

/**
 * Register one subtest per scenario. `factory.create(options)` makes a client
 * (options: `token`, `pool_size`); `factory.eligible(scenario)` returns true or
 * a skip reason; `factory.reset()` is called before each scenario.
 */
export function registerScenarios(factory) {
  for (const s of loadScenarios()) {
    const ok = factory.eligible(s);
    test(s.name, { skip: ok === true ? false : ok, timeout: 180_000 }, async () => {
      await factory.reset?.();
      const ctx = { run: `r${randomBytes(6).toString("hex")}`, vars: {} };
      const sc = { factory, clients: new Map() };
      sc.clients.set("default", await factory.create({}));
      try {
        for (const step of s.steps) await runStep(step, sc, ctx);
      } finally {
        for (const c of sc.clients.values()) await c.quit().catch(() => {});
      }
    });
  }
}
