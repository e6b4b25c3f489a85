// GET and SET of 100-byte values from one Node process with 50 concurrent
// callers: the slotgate TypeScript client through slotgate, against ioredis in
// Cluster mode straight to the same Redis Cluster, in interleaved rounds of the
// same run. Reports ops/s, p50/p99 latency and client CPU per op
// (process.cpuUsage: user + system of this process). Then getCachedQuery with
// 100 concurrent callers of one cold key, spread over 4 processes: compute
// must run once in the whole fleet. Run it through the conformance environment:
//   bench/typescript/run.sh            (npm ci, build, then the line below)
//   tests/conformance/run.sh -- node bench/typescript/bench.mjs
// Knobs: BENCH_OPS (ops per measurement, default 100000), BENCH_ROUNDS (3),
// BENCH_CALLERS (50), BENCH_POOL (slotgate connections, default 2),
// BENCH_CLIENTS (comma list of clients to run, default all: slotgate,ioredis,
// ioredis-autopipeline), BENCH_JSON (write results as JSON to this file).
import fs from "node:fs";
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import Redis from "ioredis";
import { Slotgate, GameCache } from "../../clients/typescript/dist/index.js";

const env = process.env;
for (const v of ["SG_CONF_HOST", "SG_CONF_PORT", "SG_CONF_CA", "SG_CONF_REDIS"]) {
  if (!env[v]) {
    console.error(`bench: ${v} is not set; run through tests/conformance/run.sh`);
    process.exit(2);
  }
}
const OPS = Number(env.BENCH_OPS ?? 100_000);
const ROUNDS = Number(env.BENCH_ROUNDS ?? 3);
const CALLERS = Number(env.BENCH_CALLERS ?? 50);
const POOL = Number(env.BENCH_POOL ?? 2);
const KEYS = 10_000;
const VALUE = Buffer.alloc(100, "v");
const ONLY = (env.BENCH_CLIENTS ?? "slotgate,ioredis,ioredis-autopipeline").split(",");

function slotgate(extra = {}) {
  return new Slotgate({
    host: env.SG_CONF_HOST,
    port: Number(env.SG_CONF_PORT),
    tls: { ca: fs.readFileSync(env.SG_CONF_CA), servername: env.SG_CONF_SERVER_NAME },
    token: env.SG_CONF_TOKEN,
    poolSize: POOL,
    clientName: "bench-ts",
    ...extra,
  });
}

function ioredis(autopipeline) {
  const nodes = env.SG_CONF_REDIS.split(",").map((hp) => {
    const [host, port] = hp.split(":");
    return { host, port: Number(port) };
  });
  return new Redis.Cluster(nodes, { enableAutoPipelining: autopipeline, redisOptions: { enableOfflineQueue: true } });
}

/** Run `ops` calls of fn(i) with CALLERS concurrent callers; returns the measurement. */
async function measure(fn) {
  const lat = new Float64Array(OPS);
  let next = 0;
  const caller = async () => {
    for (;;) {
      const i = next++;
      if (i >= OPS) return;
      const t = performance.now();
      await fn(i);
      lat[i] = performance.now() - t;
    }
  };
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CALLERS }, caller));
  const secs = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  lat.sort();
  return {
    opsPerSec: OPS / secs,
    cpuUsPerOp: (cpu.user + cpu.system) / OPS,
    p50ms: lat[Math.floor(OPS * 0.5)],
    p99ms: lat[Math.floor(OPS * 0.99)],
  };
}

const key = (i) => `bench:{k${i % KEYS}}`;

async function main() {
  const clients = {};
  if (ONLY.includes("slotgate")) {
    const c = slotgate();
    await c.connect();
    clients.slotgate = { set: (i) => c.set(key(i), VALUE), get: (i) => c.getBuffer(key(i)), close: () => c.quit(), c };
  }
  for (const [name, ap] of [["ioredis", false], ["ioredis-autopipeline", true]]) {
    if (!ONLY.includes(name)) continue;
    const r = ioredis(ap);
    await new Promise((res, rej) => {
      r.once("ready", res);
      r.once("error", rej);
    });
    // Same Redis keys as slotgate's default keyspace (prefix ""): the values
    // are identical raw bytes either way.
    clients[name] = { set: (i) => r.set(key(i), VALUE), get: (i) => r.getBuffer(key(i)), close: () => r.quit(), r };
  }
  const names = Object.keys(clients);
  console.log(`bench: ${OPS} ops per measurement, ${CALLERS} callers, ${ROUNDS} rounds, 100 B values, ${KEYS} keys; slotgate pool ${POOL}; clients ${names.join(", ")}`);
  // Warm-up: fill every key and let JIT settle, through every client.
  for (const n of names) {
    for (let i = 0; i < KEYS; i += 500) await Promise.all(Array.from({ length: 500 }, (_, j) => clients[n].set(i + j)));
    await measure(clients[n].get);
  }
  if (clients.slotgate) {
    const d = clients.slotgate.c.diagnostics();
    clients.slotgate.lastFrames = d.frames;
    clients.slotgate.lastWrites = d.writes;
  }
  const rows = [];
  for (let round = 1; round <= ROUNDS; round++) {
    for (const op of ["set", "get"]) {
      // Alternate the order each round so neither client always runs first.
      const order = round % 2 ? names : [...names].reverse();
      for (const n of order) {
        const m = await measure(clients[n][op]);
        const row = { round, op, client: n, ...m };
        if (n === "slotgate") {
          const d = clients.slotgate.c.diagnostics();
          row.framesPerWrite = (d.frames - (clients.slotgate.lastFrames ?? 0)) / Math.max(1, d.writes - (clients.slotgate.lastWrites ?? 0));
          clients.slotgate.lastFrames = d.frames;
          clients.slotgate.lastWrites = d.writes;
        }
        rows.push(row);
        console.log(
          `round ${round} ${op.toUpperCase()} ${n.padEnd(21)} ${m.opsPerSec.toFixed(0).padStart(7)} ops/s  ` +
            `cpu ${m.cpuUsPerOp.toFixed(2).padStart(6)} us/op  p50 ${m.p50ms.toFixed(3)} ms  p99 ${m.p99ms.toFixed(3)} ms` +
            (row.framesPerWrite ? `  ${row.framesPerWrite.toFixed(1)} requests/write` : ""),
        );
      }
    }
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const summary = {};
  console.log("\nmedians over rounds:");
  for (const op of ["set", "get"]) {
    for (const n of names) {
      const rs = rows.filter((r) => r.op === op && r.client === n);
      summary[`${op}.${n}`] = {
        opsPerSec: median(rs.map((r) => r.opsPerSec)),
        cpuUsPerOp: median(rs.map((r) => r.cpuUsPerOp)),
        p50ms: median(rs.map((r) => r.p50ms)),
        p99ms: median(rs.map((r) => r.p99ms)),
      };
      const s = summary[`${op}.${n}`];
      console.log(`${op.toUpperCase()} ${n.padEnd(21)} ${s.opsPerSec.toFixed(0).padStart(7)} ops/s  cpu ${s.cpuUsPerOp.toFixed(2)} us/op  p50 ${s.p50ms.toFixed(3)} ms  p99 ${s.p99ms.toFixed(3)} ms`);
    }
    if (summary[`${op}.slotgate`] && summary[`${op}.ioredis`]) {
      const sg = summary[`${op}.slotgate`];
      const io = summary[`${op}.ioredis`];
      const tput = sg.opsPerSec / io.opsPerSec;
      const cpu = sg.cpuUsPerOp / io.cpuUsPerOp;
      console.log(
        `${op.toUpperCase()} slotgate/ioredis: throughput ${tput.toFixed(2)}x (target >= 0.80: ${tput >= 0.8 ? "met" : "MISSED"}), ` +
          `CPU/op ${cpu.toFixed(2)}x (target <= 1.00: ${cpu <= 1 ? "met" : "MISSED"})`,
      );
    }
  }

  // getCachedQuery stampede: 100 callers spread over 4 worker processes (25
  // each, each with its own client), one cold key per round.
  let stampede = null;
  if (clients.slotgate) {
    stampede = [];
    const workers = await Promise.all(
      Array.from({ length: 4 }, async () => {
        const w = fork(fileURLToPath(import.meta.url), ["--query-worker"], { stdio: "inherit" });
        await new Promise((r) => w.once("message", r)); // ready
        return w;
      }),
    );
    for (let round = 1; round <= ROUNDS; round++) {
      const k = `bench-query-${process.pid}-${Date.now()}-${round}`;
      const t0 = performance.now();
      const answers = await Promise.all(
        workers.map(
          (w) =>
            new Promise((r) => {
              w.once("message", r);
              w.send({ key: k, callers: 25 });
            }),
        ),
      );
      const ms = performance.now() - t0;
      const computes = answers.reduce((a, x) => a + x.computes, 0);
      const same = answers.every((x) => x.values.every((v) => v === answers[0].values[0]));
      stampede.push({ round, callers: 100, processes: 4, computes, allSameValue: same, ms });
      console.log(`getCachedQuery round ${round}: 100 callers in 4 processes, compute ran ${computes} time(s), all callers got its value: ${same}, ${ms.toFixed(1)} ms`);
    }
    for (const w of workers) w.send({ quit: true });
    await Promise.all(workers.map((w) => new Promise((r) => w.once("exit", r))));
  }
  for (const n of names) await clients[n].close();
  if (env.BENCH_JSON) fs.writeFileSync(env.BENCH_JSON, JSON.stringify({ rows, summary, stampede }, null, 2));
  const ok = stampede === null || stampede.every((s) => s.computes === 1 && s.allSameValue);
  process.exitCode = ok ? 0 : 1;
}

/** Worker process of the getCachedQuery stampede: 25 callers on its own client. */
async function queryWorker() {
  const c = slotgate();
  await c.connect();
  const cache = new GameCache(c);
  process.on("message", async (m) => {
    if (m.quit) {
      await c.quit();
      process.disconnect();
      return;
    }
    let computes = 0;
    const compute = async () => {
      computes++;
      await new Promise((r) => setTimeout(r, 50)); // a 50 ms database query
      return { leaderboard: Array.from({ length: 10 }, (_, i) => ({ rank: i + 1, score: 1000 - i })) };
    };
    const got = await Promise.all(Array.from({ length: m.callers }, () => cache.getCachedQuery(m.key, compute, 60)));
    process.send({ computes, values: got.map((g) => JSON.stringify(g)) });
  });
  process.send("ready");
}

if (process.argv[2] === "--query-worker") {
  queryWorker().catch((e) => {
    console.error(e);
    process.exit(1);
  });
} else main().catch((e) => {
  console.error(e);
  process.exit(1);
});
