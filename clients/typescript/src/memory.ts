// MemorySlotgate: an in-memory fake of the Slotgate op surface, for game-server
// unit tests without a proxy. Same method signatures and results, and the
// server's semantics where a test can see them: keyspaces with prefixes and
// TTL policies, validation codes, NX/XX, TTLs (on an injectable clock), lease
// markers, versions, INVALIDATE globs and per-keyspace STATS counters. It
// passes every conformance scenario whose `requires` is empty.
import { randomBytes } from "node:crypto";
import type {
  Bytes,
  CallOptions,
  KeyResult,
  LeaseResult,
  MsetItem,
  SetOptions,
  SetVersionedResult,
  Versioned,
} from "./client.js";
import { toBytes } from "./client.js";
import { SlotgateError, type CodeName } from "./errors.js";
import { globMatch } from "./glob.js";

export interface MemoryKeyspace {
  prefix?: string;
  defaultTtlMs?: number;
  maxTtlMs?: number;
  maxValueBytes?: number;
}

export interface MemorySlotgateOptions {
  /** Named keyspaces (the default keyspace "" always exists). Default: those of deploy/local/slotgate.yaml. */
  keyspaces?: Record<string, MemoryKeyspace>;
  /** Keyspace used by calls that name none (default ""). */
  keyspace?: string;
  limits?: Partial<{
    maxKeyBytes: number;
    maxValueBytes: number;
    maxBatchKeys: number;
    maxBatchBytes: number;
  }>;
  /** Clock in ms (default Date.now); tests may pass a fake one to move time. */
  now?: () => number;
}

/** The keyspaces of deploy/local/slotgate.yaml, the example config. */
export const DEFAULT_KEYSPACES: Record<string, MemoryKeyspace> = {
  session: { defaultTtlMs: 3_600_000, maxTtlMs: 86_400_000 },
  room: { defaultTtlMs: 1_800_000, maxTtlMs: 86_400_000 },
  asset: { defaultTtlMs: 3_600_000 },
  gamesystem: { defaultTtlMs: 7_200_000 },
};

interface Entry {
  value: Buffer;
  /** Absolute expiry in ms; 0 = none. */
  expiresAt: number;
  version: bigint;
  /** Set for a lease marker: the token. */
  lease: string | null;
}

interface Space {
  name: string;
  prefix: string;
  defaultTtlMs: number;
  maxTtlMs: number;
  maxValueBytes: number;
}

const U64 = (1n << 64n) - 1n;
const LEASE_TTL_MS = 10_000;

function fail(code: CodeName, message: string): never {
  throw new SlotgateError(code, message);
}

/** In-memory stand-in for Slotgate (see the file comment). */
export class MemorySlotgate {
  readonly keyspace: string;
  private readonly spaces = new Map<string, Space>();
  private data = new Map<string, Entry>();
  private counters = new Map<string, number>();
  private readonly opts: MemorySlotgateOptions;
  private readonly now: () => number;
  private readonly lim: { maxKeyBytes: number; maxValueBytes: number; maxBatchKeys: number; maxBatchBytes: number };
  private closed = false;

  constructor(opts: MemorySlotgateOptions = {}) {
    this.opts = opts;
    this.keyspace = opts.keyspace ?? "";
    this.now = opts.now ?? Date.now;
    this.lim = {
      maxKeyBytes: 1024,
      maxValueBytes: 4 * 1024 * 1024,
      maxBatchKeys: 1000,
      maxBatchBytes: 8 * 1024 * 1024,
      ...(opts.limits ?? {}),
    };
    this.spaces.set("", { name: "default", prefix: "", defaultTtlMs: 0, maxTtlMs: 0, maxValueBytes: this.lim.maxValueBytes });
    for (const [name, ks] of Object.entries(opts.keyspaces ?? DEFAULT_KEYSPACES)) {
      this.spaces.set(name, {
        name,
        prefix: ks.prefix ?? `${name}:`,
        defaultTtlMs: ks.defaultTtlMs ?? 0,
        maxTtlMs: ks.maxTtlMs ?? 0,
        maxValueBytes: ks.maxValueBytes || this.lim.maxValueBytes,
      });
    }
  }

  /**
   * Another client on the same in-memory store (as ioredis's duplicate()):
   * what one writes, the other reads, like two clients of one server.
   */
  duplicate(): MemorySlotgate {
    const d = new MemorySlotgate(this.opts);
    d.data = this.data;
    d.counters = this.counters;
    return d;
  }

  /** Forget every key (counters too). */
  flushall(): void {
    this.data.clear();
    this.counters.clear();
  }

  // -- internals -------------------------------------------------------

  private space(o: CallOptions | undefined): Space {
    if (this.closed) throw new SlotgateError("CLIENT_CLOSED", "client is closed", { local: true });
    const name = o?.keyspace ?? this.keyspace;
    const s = this.spaces.get(name);
    if (s === undefined) fail("UNKNOWN_KEYSPACE", `unknown keyspace "${name}"`);
    return s;
  }

  private count(s: Space, what: string, n = 1): void {
    const k = `keyspace.${s.name}.${what}`;
    this.counters.set(k, (this.counters.get(k) ?? 0) + n);
  }

  private checkKeys(keys: Uint8Array[], values: Uint8Array[], s: Space): void {
    let total = 0;
    for (const k of keys) {
      if (k.length === 0) fail("INVALID_KEY", "empty key");
      if (k.length > this.lim.maxKeyBytes) fail("KEY_TOO_LARGE", "key too large");
      total += k.length;
    }
    for (const v of values) {
      if (v.length > s.maxValueBytes) fail("VALUE_TOO_LARGE", "value too large");
      total += v.length;
    }
    if (keys.length > 1 && total > this.lim.maxBatchBytes) fail("BATCH_TOO_LARGE", "batch too large");
  }

  private checkBatch(n: number): void {
    if (n === 0) fail("INVALID_ARGUMENT", "a batch needs at least one key");
    if (n > this.lim.maxBatchKeys) fail("BATCH_TOO_LARGE", "too many keys");
  }

  /** Effective TTL of a write (section 4, validation step 7). */
  private ttl(s: Space, ttlMs: number | undefined, items: number[] = []): number {
    const eff = ttlMs ? ttlMs : s.defaultTtlMs;
    if (s.maxTtlMs !== 0) {
      if (eff > s.maxTtlMs || items.some((t) => t > s.maxTtlMs)) fail("TTL_OUT_OF_RANGE", "TTL above the keyspace max_ttl_ms");
    }
    return eff;
  }

  private rkey(s: Space, key: Uint8Array): string {
    return Buffer.concat([Buffer.from(s.prefix, "utf8"), key]).toString("latin1");
  }

  private live(rk: string): Entry | undefined {
    const e = this.data.get(rk);
    if (e === undefined) return undefined;
    if (e.expiresAt !== 0 && e.expiresAt <= this.now()) {
      this.data.delete(rk);
      return undefined;
    }
    return e;
  }

  private put(rk: string, value: Uint8Array, ttlMs: number, version = 0n): void {
    this.data.set(rk, { value: Buffer.from(value), expiresAt: ttlMs > 0 ? this.now() + ttlMs : 0, version, lease: null });
  }

  /** A value read: hit, or null for absent / lease marker. */
  private read(s: Space, key: Uint8Array): Entry | null {
    const e = this.live(this.rkey(s, key));
    if (e === undefined || e.lease !== null) {
      this.count(s, "misses");
      return null;
    }
    this.count(s, "hits");
    return e;
  }

  private doSet(s: Space, key: Uint8Array, value: Uint8Array, ttlMs: number, nx?: boolean, xx?: boolean): boolean {
    const rk = this.rkey(s, key);
    const exists = this.live(rk) !== undefined;
    if ((nx && exists) || (xx && !exists)) return false;
    this.put(rk, value, ttlMs);
    this.count(s, "sets");
    return true;
  }

  // -- op surface (same signatures as Slotgate) -------------------------

  async ping(_opts?: CallOptions): Promise<string> {
    this.space({ keyspace: "" });
    return "PONG";
  }

  async get(key: Bytes, opts?: CallOptions): Promise<string | null> {
    const v = await this.getBuffer(key, opts);
    return v === null ? null : v.toString("utf8");
  }

  async getBuffer(key: Bytes, opts?: CallOptions): Promise<Buffer | null> {
    const s = this.space(opts);
    const k = toBytes(key);
    this.checkKeys([k], [], s);
    const e = this.read(s, k);
    return e === null ? null : Buffer.from(e.value);
  }

  async set(key: Bytes, value: Bytes, opts?: SetOptions): Promise<"OK" | null> {
    const s = this.space(opts);
    if (opts?.nx && opts?.xx) fail("INVALID_ARGUMENT", "nx and xx are exclusive");
    const k = toBytes(key);
    const v = toBytes(value);
    this.checkKeys([k], [v], s);
    const ttl = this.ttl(s, opts?.ttlMs);
    return this.doSet(s, k, v, ttl, opts?.nx, opts?.xx) ? "OK" : null;
  }

  async del(key: Bytes, opts?: CallOptions): Promise<number> {
    const s = this.space(opts);
    const k = toBytes(key);
    this.checkKeys([k], [], s);
    this.ttl(s, 0);
    const rk = this.rkey(s, k);
    if (this.live(rk) === undefined) return 0;
    this.data.delete(rk);
    return 1;
  }

  async expire(key: Bytes, ttlMs: number, opts?: CallOptions): Promise<number> {
    const s = this.space(opts);
    const k = toBytes(key);
    this.checkKeys([k], [], s);
    const t = Math.max(0, Math.floor(ttlMs));
    if (t === 0) fail("TTL_OUT_OF_RANGE", "EXPIRE needs ttl_ms > 0");
    if (s.maxTtlMs !== 0 && t > s.maxTtlMs) fail("TTL_OUT_OF_RANGE", "TTL above the keyspace max_ttl_ms");
    const e = this.live(this.rkey(s, k));
    if (e === undefined) return 0;
    e.expiresAt = this.now() + t;
    return 1;
  }

  async mgetDetailed(keys: Bytes[], opts?: CallOptions): Promise<Array<KeyResult<Buffer>>> {
    const s = this.space(opts);
    const ks = keys.map(toBytes);
    this.checkBatch(ks.length);
    this.checkKeys(ks, [], s);
    return ks.map((k) => {
      const e = this.read(s, k);
      return e === null
        ? { code: "NOT_FOUND" as CodeName, value: null, message: "" }
        : { code: "OK" as CodeName, value: Buffer.from(e.value), message: "" };
    });
  }

  async mgetBuffer(keys: Bytes[], opts?: CallOptions): Promise<Array<Buffer | null>> {
    return (await this.mgetDetailed(keys, opts)).map((r) => r.value);
  }

  async mget(keys: Bytes[], opts?: CallOptions): Promise<Array<string | null>> {
    return (await this.mgetDetailed(keys, opts)).map((r) => (r.value === null ? null : r.value.toString("utf8")));
  }

  async msetDetailed(items: MsetItem[] | Record<string, Bytes>, opts?: SetOptions): Promise<Array<KeyResult<never>>> {
    const s = this.space(opts);
    if (opts?.nx && opts?.xx) fail("INVALID_ARGUMENT", "nx and xx are exclusive");
    const list: MsetItem[] = Array.isArray(items) ? items : Object.entries(items).map(([key, value]) => ({ key, value }));
    const ks = list.map((it) => toBytes(it.key));
    const vs = list.map((it) => toBytes(it.value));
    this.checkBatch(ks.length);
    this.checkKeys(ks, vs, s);
    const base = this.ttl(s, opts?.ttlMs, list.map((it) => it.ttlMs ?? 0));
    return list.map((it, i) => {
      const ok = this.doSet(s, ks[i]!, vs[i]!, it.ttlMs ? it.ttlMs : base, opts?.nx, opts?.xx);
      return { code: (ok ? "OK" : "NOT_APPLIED") as CodeName, value: null, message: "" };
    });
  }

  async mset(items: MsetItem[] | Record<string, Bytes>, opts?: SetOptions): Promise<"OK"> {
    const res = await this.msetDetailed(items, opts);
    const bad = res.find((r) => r.code !== "OK");
    if (bad !== undefined) throw new SlotgateError(bad.code, "some items were not stored", { results: res });
    return "OK";
  }

  async mdelDetailed(keys: Bytes[], opts?: CallOptions): Promise<{ count: number; results: Array<KeyResult<never>> }> {
    const s = this.space(opts);
    const ks = keys.map(toBytes);
    this.checkBatch(ks.length);
    this.checkKeys(ks, [], s);
    this.ttl(s, 0);
    let count = 0;
    const results = ks.map((k) => {
      const rk = this.rkey(s, k);
      if (this.live(rk) === undefined) return { code: "NOT_FOUND" as CodeName, value: null, message: "" };
      this.data.delete(rk);
      count++;
      return { code: "OK" as CodeName, value: null, message: "" };
    });
    return { count, results };
  }

  async mdel(keys: Bytes[], opts?: CallOptions): Promise<number> {
    return (await this.mdelDetailed(keys, opts)).count;
  }

  async invalidate(pattern: Bytes, opts?: CallOptions): Promise<number> {
    const s = this.space(opts);
    const p = toBytes(pattern);
    if (p.length === 0) fail("INVALID_ARGUMENT", "INVALIDATE needs a pattern");
    if (p.length > this.lim.maxKeyBytes) fail("KEY_TOO_LARGE", "pattern too large");
    const prefix = Buffer.from(s.prefix, "utf8");
    let n = 0;
    for (const rk of [...this.data.keys()]) {
      if (this.live(rk) === undefined) continue;
      const full = Buffer.from(rk, "latin1");
      if (!full.subarray(0, prefix.length).equals(prefix)) continue;
      if (globMatch(p, full.subarray(prefix.length))) {
        this.data.delete(rk);
        n++;
      }
    }
    this.count(s, "invalidated", n);
    return n;
  }

  async getOrLease(key: Bytes, opts?: CallOptions & { leaseTtlMs?: number }): Promise<LeaseResult<Buffer>> {
    const s = this.space(opts);
    const k = toBytes(key);
    this.checkKeys([k], [], s);
    const rk = this.rkey(s, k);
    const e = this.live(rk);
    if (e === undefined) {
      const token = randomBytes(16).toString("hex");
      const ttl = opts?.leaseTtlMs || LEASE_TTL_MS;
      this.data.set(rk, { value: Buffer.alloc(0), expiresAt: this.now() + ttl, version: 0n, lease: token });
      this.count(s, "misses");
      this.count(s, "lease_grants");
      return { status: "lease", lease: Buffer.from(token, "ascii") };
    }
    if (e.lease !== null) {
      this.count(s, "lease_waits");
      return { status: "wait", retryAfterMs: Math.max(1, Math.min(100, e.expiresAt - this.now())) };
    }
    this.count(s, "hits");
    return { status: "hit", value: Buffer.from(e.value), version: e.version };
  }

  async setWithLease(key: Bytes, value: Bytes, lease: Bytes, opts?: SetOptions): Promise<boolean> {
    const s = this.space(opts);
    const k = toBytes(key);
    const v = toBytes(value);
    const l = toBytes(lease);
    if (l.length === 0) fail("INVALID_ARGUMENT", "SET_WITH_LEASE needs a lease");
    this.checkKeys([k], [v], s);
    const ttl = this.ttl(s, opts?.ttlMs);
    const rk = this.rkey(s, k);
    const e = this.live(rk);
    if (e === undefined || e.lease === null || e.lease !== Buffer.from(l).toString("latin1")) {
      this.count(s, "lease_rejects");
      return false;
    }
    this.put(rk, v, ttl);
    this.count(s, "sets");
    return true;
  }

  async getVersioned(key: Bytes, opts?: CallOptions): Promise<Versioned<Buffer> | null> {
    const s = this.space(opts);
    const k = toBytes(key);
    this.checkKeys([k], [], s);
    const e = this.read(s, k);
    return e === null ? null : { value: Buffer.from(e.value), version: e.version };
  }

  async setVersioned(key: Bytes, value: Bytes, expected: bigint | number, opts?: SetOptions): Promise<SetVersionedResult> {
    const s = this.space(opts);
    const k = toBytes(key);
    const v = toBytes(value);
    this.checkKeys([k], [v], s);
    const ttl = this.ttl(s, opts?.ttlMs);
    const want = BigInt(expected) & U64;
    const rk = this.rkey(s, k);
    const e = this.live(rk);
    const current = e === undefined || e.lease !== null ? 0n : e.version;
    if (current !== want) {
      this.count(s, "version_conflicts");
      return { ok: false, version: current };
    }
    const next = (want + 1n) & U64;
    this.put(rk, v, ttl, next);
    this.count(s, "sets");
    return { ok: true, version: next };
  }

  async stats(_opts?: CallOptions): Promise<Record<string, number>> {
    const out: Record<string, number> = { keys: 0 };
    for (const rk of [...this.data.keys()]) if (this.live(rk) !== undefined) out.keys!++;
    for (const s of this.spaces.values()) {
      for (const c of ["hits", "misses", "sets", "invalidated", "lease_grants", "lease_waits", "lease_rejects", "version_conflicts"]) {
        out[`keyspace.${s.name}.${c}`] = this.counters.get(`keyspace.${s.name}.${c}`) ?? 0;
      }
    }
    return out;
  }

  /** Remaining TTL of a key in ms as Redis PTTL reports it (-2 absent, -1 none); for tests. */
  pttl(key: Bytes, opts?: CallOptions): number {
    const s = this.space(opts);
    const e = this.live(this.rkey(s, toBytes(key)));
    if (e === undefined) return -2;
    return e.expiresAt === 0 ? -1 : e.expiresAt - this.now();
  }

  async quit(): Promise<"OK"> {
    this.closed = true;
    return "OK";
  }

  disconnect(): void {
    this.closed = true;
  }
}
