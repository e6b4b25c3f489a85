// GameCache: the game-domain layer, with the method names and semantics of the
// ioredis-based cache service it replaces (user sessions, room state, asset
// metadata, game-system templates, batches, invalidation, cached queries,
// health and stats), on top of any client with the Slotgate op surface: the
// real Slotgate, or MemorySlotgate for unit tests (MemoryGameCache).
//
// Key layout (PROTOCOL.md section 6: one hash tag per entity, first in the key):
//   session     {user:<id>}:session
//   room        {room:<id>}:state
//   asset       {asset:<id>}:meta
//   gamesystem  {gamesystem:<id>}:template
//   ""          {query:<key>}        getCachedQuery
//   ""          <your key>           mget / mset / invalidatePattern
import type { Slotgate } from "./client.js";
import { SlotgateError } from "./errors.js";
import { globEscape } from "./glob.js";
import { MemorySlotgate, type MemorySlotgateOptions } from "./memory.js";

/** The op surface GameCache needs; Slotgate and MemorySlotgate both provide it. */
export type SlotgateApi = Pick<
  Slotgate,
  | "ping"
  | "get"
  | "getBuffer"
  | "set"
  | "del"
  | "expire"
  | "mget"
  | "mgetBuffer"
  | "mgetDetailed"
  | "mset"
  | "msetDetailed"
  | "mdel"
  | "mdelDetailed"
  | "invalidate"
  | "getOrLease"
  | "setWithLease"
  | "getVersioned"
  | "setVersioned"
  | "stats"
  | "quit"
  | "disconnect"
>;

export interface GameCacheKeyspaces {
  session: string;
  room: string;
  asset: string;
  gamesystem: string;
  /** Keyspace of mget/mset/invalidatePattern/getCachedQuery (default "" = the default keyspace). */
  general: string;
}

export interface GameCacheOptions {
  /** Keyspace names on the server (defaults: session, room, asset, gamesystem, and ""). */
  keyspaces?: Partial<GameCacheKeyspaces>;
  /** Value encoding (default JSON). */
  serialize?: (v: unknown) => string | Uint8Array;
  deserialize?: (b: Buffer) => unknown;
  /** Lease TTL of getCachedQuery: how long one caller may take to compute (default 10000 ms). */
  queryLeaseTtlMs?: number;
  /** Default TTL of getCachedQuery in seconds (default 300). */
  queryTtlSeconds?: number;
}

export interface KeyspaceStats {
  hits: number;
  misses: number;
  /** hits / (hits + misses), 0 when there were no reads. */
  hitRate: number;
  sets: number;
  invalidated: number;
  leaseGrants: number;
}

export interface GameCacheStats {
  hits: number;
  misses: number;
  hitRate: number;
  /** Per GameCache keyspace role (session, room, asset, gamesystem, general). */
  keyspaces: Record<keyof GameCacheKeyspaces, KeyspaceStats>;
  /** Every server counter as STATS returned it. */
  raw: Record<string, number>;
}

export interface HealthStatus {
  status: "healthy" | "unhealthy";
  latencyMs: number;
  error?: string;
}

export interface MsetEntry<T = unknown> {
  key: string;
  value: T;
  /** Seconds; default: the keyspace's default TTL. */
  ttl?: number;
}

const ROLES: Array<keyof GameCacheKeyspaces> = ["session", "room", "asset", "gamesystem", "general"];

function tagId(kind: string, id: string | number): string {
  const s = String(id);
  if (s.length === 0 || /[{}]/.test(s)) throw new SlotgateError("INVALID_KEY", `${kind} id must be non-empty and without { or }`, { local: true });
  return `{${kind}:${s}}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

const seconds = (s: number | undefined): number | undefined => (s === undefined || s <= 0 ? undefined : Math.round(s * 1000));

/**
 * The game-domain cache. Methods mirror the ioredis-based service: misses are
 * `null`, values are serialised as JSON, TTLs are in seconds and default to
 * the server keyspace's `default_ttl_ms` when omitted.
 */
export class GameCache {
  readonly client: SlotgateApi;
  readonly keyspaces: GameCacheKeyspaces;
  private readonly ser: (v: unknown) => string | Uint8Array;
  private readonly de: (b: Buffer) => unknown;
  private readonly leaseTtlMs: number;
  private readonly queryTtl: number;

  constructor(client: SlotgateApi, options: GameCacheOptions = {}) {
    this.client = client;
    this.keyspaces = { session: "session", room: "room", asset: "asset", gamesystem: "gamesystem", general: "", ...(options.keyspaces ?? {}) };
    this.ser = options.serialize ?? ((v) => JSON.stringify(v === undefined ? null : v));
    this.de = options.deserialize ?? ((b) => JSON.parse(b.toString("utf8")));
    this.leaseTtlMs = options.queryLeaseTtlMs ?? 10_000;
    this.queryTtl = options.queryTtlSeconds ?? 300;
  }

  private async read<T>(keyspace: string, key: string): Promise<T | null> {
    const b = await this.client.getBuffer(key, { keyspace });
    return b === null ? null : (this.de(b) as T);
  }

  private async write(keyspace: string, key: string, value: unknown, ttlSeconds?: number): Promise<void> {
    await this.client.set(key, this.ser(value), { keyspace, ttlMs: seconds(ttlSeconds) });
  }

  static userKey(userId: string | number): string {
    return `${tagId("user", userId)}:session`;
  }
  static roomKey(roomId: string | number): string {
    return `${tagId("room", roomId)}:state`;
  }
  static assetKey(assetId: string | number): string {
    return `${tagId("asset", assetId)}:meta`;
  }
  static gameSystemKey(systemId: string | number): string {
    return `${tagId("gamesystem", systemId)}:template`;
  }
  static queryKey(key: string): string {
    return tagId("query", key);
  }

  getUserSession<T = unknown>(userId: string | number): Promise<T | null> {
    return this.read<T>(this.keyspaces.session, GameCache.userKey(userId));
  }
  setUserSession<T = unknown>(userId: string | number, session: T, ttlSeconds?: number): Promise<void> {
    return this.write(this.keyspaces.session, GameCache.userKey(userId), session, ttlSeconds);
  }

  getRoomState<T = unknown>(roomId: string | number): Promise<T | null> {
    return this.read<T>(this.keyspaces.room, GameCache.roomKey(roomId));
  }
  setRoomState<T = unknown>(roomId: string | number, state: T, ttlSeconds?: number): Promise<void> {
    return this.write(this.keyspaces.room, GameCache.roomKey(roomId), state, ttlSeconds);
  }

  getAssetMetadata<T = unknown>(assetId: string | number): Promise<T | null> {
    return this.read<T>(this.keyspaces.asset, GameCache.assetKey(assetId));
  }
  setAssetMetadata<T = unknown>(assetId: string | number, metadata: T, ttlSeconds?: number): Promise<void> {
    return this.write(this.keyspaces.asset, GameCache.assetKey(assetId), metadata, ttlSeconds);
  }

  getGameSystemTemplate<T = unknown>(systemId: string | number): Promise<T | null> {
    return this.read<T>(this.keyspaces.gamesystem, GameCache.gameSystemKey(systemId));
  }
  setGameSystemTemplate<T = unknown>(systemId: string | number, template: T, ttlSeconds?: number): Promise<void> {
    return this.write(this.keyspaces.gamesystem, GameCache.gameSystemKey(systemId), template, ttlSeconds);
  }

  /** Values of `keys` in the general keyspace, null per miss (one request, one Redis MGET per slot). */
  async mget<T = unknown>(keys: string[]): Promise<Array<T | null>> {
    if (keys.length === 0) return [];
    const res = await this.client.mgetBuffer(keys, { keyspace: this.keyspaces.general });
    return res.map((b) => (b === null ? null : (this.de(b) as T)));
  }

  /** Store several values in the general keyspace, each with its own TTL (seconds). */
  async mset<T = unknown>(entries: Array<MsetEntry<T>>): Promise<void> {
    if (entries.length === 0) return;
    await this.client.mset(
      entries.map((e) => ({ key: e.key, value: this.ser(e.value), ttlMs: seconds(e.ttl) })),
      { keyspace: this.keyspaces.general },
    );
  }

  /** Delete one key of the general keyspace; resolves the number removed. */
  delete(key: string): Promise<number> {
    return this.client.del(key, { keyspace: this.keyspaces.general });
  }

  /**
   * Forget everything about one entity: every key tagged `{kind:id}` in each
   * keyspace. Each INVALIDATE is pinned to the one master owning the tag.
   */
  private async invalidateEntity(kind: string, id: string | number): Promise<number> {
    const tag = tagId(kind, id);
    const pattern = `{${globEscape(tag.slice(1, -1))}}*`;
    const spaces = [...new Set(ROLES.map((r) => this.keyspaces[r]))];
    const counts = await Promise.all(spaces.map((keyspace) => this.client.invalidate(pattern, { keyspace })));
    return counts.reduce((a, b) => a + b, 0);
  }

  /** Remove all of a user's keys ({user:<id>}…) in every keyspace; resolves the count. */
  invalidateUserData(userId: string | number): Promise<number> {
    return this.invalidateEntity("user", userId);
  }

  /** Remove all of a room's keys ({room:<id>}…) in every keyspace; resolves the count. */
  invalidateRoomData(roomId: string | number): Promise<number> {
    return this.invalidateEntity("room", roomId);
  }

  /**
   * Delete every key matching a Redis glob. In the general keyspace "" the
   * pattern sees full Redis keys of every keyspace (as the ioredis service's
   * pattern did); pass `keyspace` to restrict it.
   */
  invalidatePattern(pattern: string, keyspace: string = this.keyspaces.general): Promise<number> {
    return this.client.invalidate(pattern, { keyspace });
  }

  /**
   * Cached query with fleet-wide single fill: the first caller anywhere gets a
   * lease and runs `compute`; every other caller (any process) waits for its
   * value. If compute throws, the lease is given up (the key deleted) so the
   * next caller computes, and the error is rethrown.
   */
  async getCachedQuery<T>(key: string, compute: () => Promise<T> | T, ttlSeconds: number = this.queryTtl): Promise<T> {
    const k = GameCache.queryKey(key);
    const keyspace = this.keyspaces.general;
    for (;;) {
      const r = await this.client.getOrLease(k, { keyspace, leaseTtlMs: this.leaseTtlMs });
      if (r.status === "hit") return this.de(r.value) as T;
      if (r.status === "wait") {
        await sleep(r.retryAfterMs > 0 ? r.retryAfterMs : 10);
        continue;
      }
      let value: T;
      try {
        value = await compute();
      } catch (e) {
        await this.client.del(k, { keyspace }).catch(() => 0);
        throw e;
      }
      await this.client.setWithLease(k, this.ser(value), r.lease, { keyspace, ttlMs: seconds(ttlSeconds) });
      return value;
    }
  }

  /** PING round trip. Never throws. */
  async healthCheck(): Promise<HealthStatus> {
    const t0 = performance.now();
    try {
      await this.client.ping();
      return { status: "healthy", latencyMs: performance.now() - t0 };
    } catch (e) {
      return { status: "unhealthy", latencyMs: performance.now() - t0, error: (e as Error).message };
    }
  }

  /** Hit rate per keyspace (and overall) from the server's STATS counters since it started. */
  async getStats(): Promise<GameCacheStats> {
    const raw = await this.client.stats();
    const ks = {} as Record<keyof GameCacheKeyspaces, KeyspaceStats>;
    let hits = 0;
    let misses = 0;
    const seen = new Set<string>();
    for (const role of ROLES) {
      const name = this.keyspaces[role] === "" ? "default" : this.keyspaces[role];
      const c = (n: string) => raw[`keyspace.${name}.${n}`] ?? 0;
      const s: KeyspaceStats = {
        hits: c("hits"),
        misses: c("misses"),
        hitRate: 0,
        sets: c("sets"),
        invalidated: c("invalidated"),
        leaseGrants: c("lease_grants"),
      };
      s.hitRate = s.hits + s.misses === 0 ? 0 : s.hits / (s.hits + s.misses);
      ks[role] = s;
      if (!seen.has(name)) {
        seen.add(name);
        hits += s.hits;
        misses += s.misses;
      }
    }
    return { hits, misses, hitRate: hits + misses === 0 ? 0 : hits / (hits + misses), keyspaces: ks, raw };
  }

  /** Drain and close the underlying client. */
  async close(): Promise<void> {
    await this.client.quit();
  }
}

/**
 * GameCache over MemorySlotgate: the same interface and semantics (TTLs,
 * leases, versions), in process, for game-server unit tests.
 */
export class MemoryGameCache extends GameCache {
  declare readonly client: MemorySlotgate;

  constructor(options: GameCacheOptions & { memory?: MemorySlotgateOptions } = {}) {
    super(new MemorySlotgate(options.memory), options);
  }
}
