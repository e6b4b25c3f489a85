// GameCache on the in-memory fake (MemoryGameCache): the domain methods, key
// layout, TTLs on a fake clock, invalidation by entity, the single-fill cached
// query, stats and health. Also the fake's own semantics and the glob matcher.
import { test } from "node:test";
import assert from "node:assert/strict";
import { GameCache, MemoryGameCache, MemorySlotgate, SlotgateError, globMatch, globEscape, codeName, isRetriable } from "../../dist/index.js";

function clock() {
  let t = 1_000_000;
  return { now: () => t, advance: (ms) => (t += ms) };
}

test("sessions, rooms, assets and game systems round-trip as JSON under their keyspaces and hash tags", async () => {
  const gc = new MemoryGameCache();
  await gc.setUserSession("user_123", { userId: "user_123", roles: ["gm"] }, 3600);
  assert.deepEqual(await gc.getUserSession("user_123"), { userId: "user_123", roles: ["gm"] });
  assert.equal(await gc.getUserSession("nobody"), null);
  await gc.setRoomState("room_789", { tokens: [1, 2] });
  assert.deepEqual(await gc.getRoomState("room_789"), { tokens: [1, 2] });
  await gc.setAssetMetadata("asset_321", { w: 64 });
  assert.deepEqual(await gc.getAssetMetadata("asset_321"), { w: 64 });
  await gc.setGameSystemTemplate("system_456", { name: "5e" });
  assert.deepEqual(await gc.getGameSystemTemplate("system_456"), { name: "5e" });
  // Layout: keyspace + {entity:id} first.
  assert.equal(await gc.client.get("{user:user_123}:session", { keyspace: "session" }), '{"userId":"user_123","roles":["gm"]}');
  assert.equal(GameCache.roomKey("room_789"), "{room:room_789}:state");
  assert.throws(() => GameCache.userKey("a}b"), SlotgateError);
});

test("TTLs: given in seconds, else the keyspace default; values expire", async () => {
  const ck = clock();
  const gc = new MemoryGameCache({ memory: { now: ck.now } });
  await gc.setUserSession("u", { a: 1 }, 10);
  await gc.setRoomState("r", { b: 2 });
  assert.equal(gc.client.pttl("{user:u}:session", { keyspace: "session" }), 10_000);
  assert.equal(gc.client.pttl("{room:r}:state", { keyspace: "room" }), 1_800_000);
  ck.advance(10_000);
  assert.equal(await gc.getUserSession("u"), null);
  assert.deepEqual(await gc.getRoomState("r"), { b: 2 });
  // session caps TTLs at 24 h like the server config
  await assert.rejects(gc.setUserSession("u", {}, 86_401), (e) => e.code === "TTL_OUT_OF_RANGE");
});

test("mget/mset with per-entry TTLs", async () => {
  const ck = clock();
  const gc = new MemoryGameCache({ memory: { now: ck.now } });
  await gc.mset([
    { key: "{q:1}:a", value: { n: 1 }, ttl: 5 },
    { key: "{q:1}:b", value: "two" },
  ]);
  assert.deepEqual(await gc.mget(["{q:1}:a", "{q:1}:b", "{q:1}:c"]), [{ n: 1 }, "two", null]);
  ck.advance(5_000);
  assert.deepEqual(await gc.mget(["{q:1}:a", "{q:1}:b"]), [null, "two"]);
  assert.deepEqual(await gc.mget([]), []);
});

test("invalidateUserData / invalidateRoomData remove one entity's keys in every keyspace and nothing else", async () => {
  const gc = new MemoryGameCache();
  const c = gc.client;
  await gc.setUserSession("42", { s: 1 });
  await c.set("{user:42}:inventory", "i", { keyspace: "gamesystem" });
  await c.set("{user:42}:x", "x");
  await gc.setUserSession("420", { s: 2 });
  await gc.setUserSession("4*", { s: 3 });
  await gc.setRoomState("42", { r: 1 });
  assert.equal(await gc.invalidateUserData("42"), 3);
  assert.equal(await gc.getUserSession("42"), null);
  assert.equal(await c.get("{user:42}:inventory", { keyspace: "gamesystem" }), null);
  assert.deepEqual(await gc.getUserSession("420"), { s: 2 });
  assert.deepEqual(await gc.getUserSession("4*"), { s: 3 });
  assert.deepEqual(await gc.getRoomState("42"), { r: 1 });
  // glob characters in an id are literal
  assert.equal(await gc.invalidateUserData("4*"), 1);
  assert.deepEqual(await gc.getUserSession("420"), { s: 2 });
  assert.equal(await gc.invalidateRoomData("42"), 1);
  assert.equal(await gc.getRoomState("42"), null);
});

test("invalidatePattern in the default keyspace sees every keyspace's Redis keys", async () => {
  const gc = new MemoryGameCache();
  await gc.setUserSession("1", {});
  await gc.setRoomState("1", {});
  await gc.mset([{ key: "session-like", value: 1 }]);
  assert.equal(await gc.invalidatePattern("session:*"), 1);
  assert.equal(await gc.getUserSession("1"), null);
  assert.deepEqual(await gc.getRoomState("1"), {});
  assert.equal(await gc.invalidatePattern("*", "room"), 1);
});

test("getCachedQuery: 100 concurrent callers on two clients run compute once and all get its value", async () => {
  const a = new MemoryGameCache();
  const b = new GameCache(a.client.duplicate());
  let computed = 0;
  let release;
  const gate = new Promise((r) => (release = r));
  const compute = async () => {
    computed++;
    await gate;
    return { rows: [1, 2, 3] };
  };
  const calls = Array.from({ length: 100 }, (_, i) => (i % 2 ? a : b).getCachedQuery("leaderboard", compute, 60));
  await new Promise((r) => setImmediate(r));
  release();
  const got = await Promise.all(calls);
  assert.equal(computed, 1);
  for (const g of got) assert.deepEqual(g, { rows: [1, 2, 3] });
  assert.deepEqual(await a.getCachedQuery("leaderboard", compute), { rows: [1, 2, 3] });
  assert.equal(computed, 1);
});

test("getCachedQuery: a failing compute gives the lease up and rethrows; the next caller computes", async () => {
  const gc = new MemoryGameCache();
  await assert.rejects(gc.getCachedQuery("q", () => Promise.reject(new Error("db down"))), /db down/);
  assert.equal(await gc.getCachedQuery("q", () => 7), 7);
});

test("getStats: hit rate per keyspace; healthCheck", async () => {
  const gc = new MemoryGameCache();
  await gc.setUserSession("u", { a: 1 });
  await gc.getUserSession("u");
  await gc.getUserSession("u");
  await gc.getUserSession("v");
  await gc.getRoomState("r");
  const s = await gc.getStats();
  assert.equal(s.keyspaces.session.hits, 2);
  assert.equal(s.keyspaces.session.misses, 1);
  assert.ok(Math.abs(s.keyspaces.session.hitRate - 2 / 3) < 1e-9);
  assert.equal(s.keyspaces.room.hitRate, 0);
  assert.equal(s.hits, 2);
  assert.equal(s.misses, 2);
  assert.equal(s.hitRate, 0.5);
  assert.equal((await gc.healthCheck()).status, "healthy");
  await gc.close();
  assert.equal((await gc.healthCheck()).status, "unhealthy");
});

test("fake: leases, versions (with wrap-around), NX/XX and validation codes", async () => {
  const ck = clock();
  const m = new MemorySlotgate({ now: ck.now });
  const l = await m.getOrLease("k", { leaseTtlMs: 100 });
  assert.equal(l.status, "lease");
  assert.equal((await m.getOrLease("k")).status, "wait");
  assert.equal(await m.get("k"), null);
  assert.equal(await m.set("k", "x", { nx: true }), null, "a lease marker exists for NX");
  ck.advance(100);
  const l2 = await m.getOrLease("k");
  assert.equal(l2.status, "lease", "an expired lease is granted again");
  assert.equal(await m.setWithLease("k", "v", l.lease), false, "the expired lease is invalid");
  assert.equal(await m.setWithLease("k", "v", l2.lease), true);
  assert.equal(await m.setWithLease("k", "w", l2.lease), false, "single use");
  assert.deepEqual(await m.getOrLease("k"), { status: "hit", value: Buffer.from("v"), version: 0n });

  const max = (1n << 64n) - 1n;
  assert.deepEqual(await m.setVersioned("v", "a", 0n), { ok: true, version: 1n });
  assert.deepEqual(await m.setVersioned("v", "b", 0n), { ok: false, version: 1n });
  await m.set("v", "plain");
  assert.deepEqual(await m.getVersioned("v"), { value: Buffer.from("plain"), version: 0n });
  // wrap from 2^64-1 to 0: only reachable by a stored version of 2^64-1
  assert.deepEqual(await m.setVersioned("w", "a", max), { ok: false, version: 0n });

  await assert.rejects(m.get(""), (e) => e.code === "INVALID_KEY");
  await assert.rejects(m.get("x".repeat(1025)), (e) => e.code === "KEY_TOO_LARGE");
  await assert.rejects(m.get("x", { keyspace: "default" }), (e) => e.code === "UNKNOWN_KEYSPACE");
  await assert.rejects(m.expire("x", 0), (e) => e.code === "TTL_OUT_OF_RANGE");
  await assert.rejects(m.mget([]), (e) => e.code === "INVALID_ARGUMENT");
  await assert.rejects(m.set("k", "v", { nx: true, xx: true }), (e) => e.code === "INVALID_ARGUMENT");
});

test("glob matching as Redis does it", () => {
  const g = (p, s) => globMatch(Buffer.from(p), Buffer.from(s));
  assert.ok(g("{user:1}*", "{user:1}:session"));
  assert.ok(!g("{user:1}*", "{user:10}:session"), "the closing brace keeps user:10 out");
  assert.ok(!g("{user:1}:*", "{user:10}:session"));
  assert.ok(g("h?llo", "hello"));
  assert.ok(g("h[ae]llo", "hallo"));
  assert.ok(!g("h[^e]llo", "hello"));
  assert.ok(g("h[a-b]llo", "hbllo"));
  assert.ok(g("a\\*b", "a*b"));
  assert.ok(!g("a\\*b", "axb"));
  assert.ok(g("*", ""));
  assert.ok(g("a*", "a"));
  assert.equal(globEscape("4*[x]?\\"), "4\\*\\[x\\]\\?\\\\");
});

test("codes: names without CODE_, unknown codes by number, retriable per PROTOCOL.md section 9", () => {
  assert.equal(codeName(1), "NOT_FOUND");
  assert.equal(codeName(106), "SHUTTING_DOWN");
  assert.equal(codeName(12345), "UNKNOWN_12345");
  for (const c of ["TIMEOUT", "SHARD_UNAVAILABLE", "CLUSTER_DOWN", "SHUTTING_DOWN", "TOO_MANY_CONNECTIONS", "CONNECTION_LOST", "UNKNOWN_350"]) {
    assert.equal(isRetriable(c), true, c);
  }
  for (const c of ["AUTH_FAILED", "INVALID_ARGUMENT", "KEY_TOO_LARGE", "BACKEND_ERROR", "CORRUPT_VALUE", "ABORTED", "CLIENT_CLOSED", "UNKNOWN_250"]) {
    assert.equal(isRetriable(c), false, c);
  }
  const e = new SlotgateError("VERSION_CONFLICT", "conflict", { version: 3n });
  assert.equal(e.numericCode, 209);
  assert.equal(e.version, 3n);
  assert.ok(e instanceof Error);
});
