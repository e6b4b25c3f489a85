// Slotgate: the client. A pool of a few connections (connection.ts), a queue
// for calls that cannot be sent yet (no connection ready, or every connection
// at limits.max_inflight), reconnection with backoff and jitter, transparent
// resend of calls the server never executed (SHUTTING_DOWN), client-side
// deadlines and AbortSignal, local limit checks, and one promise method per
// protocol op with ioredis-like names and results.
import { EventEmitter } from "node:events";
import type * as tls from "node:tls";
import { create, toBinary } from "@bufbuild/protobuf";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, Condition, Op, RequestSchema, type Limits, type Request } from "./gen/slotgate_pb.js";
import { byteLength, newReq, type Reply, type Req } from "./wire.js";
import { DEFAULT_MAX_INCOMING_FRAME_BYTES } from "./codec.js";
import { Connection, type Call, type ConnectionConfig, type ConnectionOwner } from "./connection.js";
import { SlotgateError, codeName, localError, type CodeName } from "./errors.js";

/** Bytes accepted wherever a key, value, pattern or lease goes: strings are UTF-8. */
export type Bytes = string | Uint8Array;

export interface TlsOptions {
  /** PEM of the CA(s) that sign the server certificate. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Client certificate and key (mTLS), PEM. */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Host name to verify and send as SNI (default: `host` unless it is an IP literal). */
  servername?: string;
  /** Default true. Set false only for throwaway tests. */
  rejectUnauthorized?: boolean;
  /** Anything else Node's tls.connect accepts. */
  [extra: string]: unknown;
}

export interface SlotgateOptions {
  host?: string;
  port?: number;
  /** TLS settings (TLS is the default); `false` for a server with listen.plaintext. */
  tls?: TlsOptions | false;
  /** Hello auth_token (section 3). */
  token?: Bytes;
  clientName?: string;
  /** Connections in the pool (default 2). */
  poolSize?: number;
  /** Keyspace used by calls that name none (default "" = the default keyspace). */
  keyspace?: string;
  /** Do not connect until the first call (default false). */
  lazyConnect?: boolean;
  /** Bound on TCP + TLS + Hello (default 5000 ms). */
  connectTimeoutMs?: number;
  /** deadline_ms sent when a call gives none (default 0 = the server's default). */
  defaultDeadlineMs?: number;
  /**
   * Client-side timer = the call's deadline (or the server default) plus this
   * margin for the round trip and queueing (default 250 ms).
   */
  timeoutMarginMs?: number;
  /** Reconnect backoff: base and cap of the exponential delay (defaults 50 and 2000 ms), with jitter. */
  retryDelayMs?: number;
  maxRetryDelayMs?: number;
  /** How often a read (GET, MGET, GET_VERSIONED, PING, STATS) is resent after its connection was lost (default 2). */
  maxReadResends?: number;
  /** Cap on incoming frames (default 64 MiB). */
  maxIncomingFrameBytes?: number;
}

export interface CallOptions {
  keyspace?: string;
  /** Server deadline for this call (Request.deadline_ms); the client-side timer adds timeoutMarginMs. */
  deadlineMs?: number;
  signal?: AbortSignal;
}

export interface SetOptions extends CallOptions {
  ttlMs?: number;
  nx?: boolean;
  xx?: boolean;
}

export interface MsetItem {
  key: Bytes;
  value: Bytes;
  ttlMs?: number;
}

export interface KeyResult<V> {
  code: CodeName;
  value: V | null;
  message: string;
}

export type LeaseResult<V> =
  | { status: "hit"; value: V; version: bigint }
  | { status: "lease"; lease: Buffer }
  | { status: "wait"; retryAfterMs: number };

export interface Versioned<V> {
  value: V;
  version: bigint;
}

export type SetVersionedResult = { ok: true; version: bigint } | { ok: false; version: bigint };

export type ClientStatus = "wait" | "connecting" | "ready" | "reconnecting" | "closing" | "end";

const READ_OPS = new Set<number>([Op.GET, Op.MGET, Op.GET_VERSIONED, Op.PING, Op.STATS]);

export function toBytes(b: Bytes): Uint8Array {
  return typeof b === "string" ? Buffer.from(b, "utf8") : b;
}

function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/** A SlotgateError for a Response whose code the call does not treat as an answer. */
export function responseError(r: Reply): SlotgateError {
  const name = codeName(r.code);
  return new SlotgateError(name, r.message || name, {
    retryAfterMs: r.retryAfterMs || undefined,
    version: r.code === Code.VERSION_CONFLICT ? r.version : undefined,
    count: r.count !== 0 ? r.count : undefined,
  });
}

interface Slot {
  conn: Connection | null;
  attempt: number;
  timer: NodeJS.Timeout | undefined;
}

/**
 * The slotgate client. Methods return promises; misses are `null`; failures
 * reject with SlotgateError. Events: `connect` (socket up), `ready` (a
 * connection finished its Hello; argument: the HelloReply), `error` (only
 * emitted when someone listens), `close` (a connection closed),
 * `reconnecting` (delay in ms), `end` (after quit()/disconnect()).
 */
export class Slotgate extends EventEmitter {
  status: ClientStatus = "wait";
  /** Limits from the latest HelloReply (undefined before the first). */
  limits: Limits | undefined;
  readonly keyspace: string;

  private readonly cfg: ConnectionConfig;
  private readonly slots: Slot[];
  private readonly queue: Call[] = [];
  private nextId = 1;
  private readonly defaultDeadlineMs: number;
  private readonly timeoutMarginMs: number;
  private readonly retryDelayMs: number;
  private readonly maxRetryDelayMs: number;
  private readonly maxReadResends: number;
  /** Set while the last handshake failed with a code that no retry fixes (AUTH_FAILED...). */
  private fatal: SlotgateError | undefined;
  private unsettled = 0;
  private drainWaiters: Array<() => void> = [];
  private readonly owner: ConnectionOwner;
  private readonly options: SlotgateOptions;
  private retiredWrites = 0;
  private retiredFrames = 0;

  constructor(options: SlotgateOptions = {}) {
    super();
    this.options = options;
    const t = options.tls;
    this.cfg = {
      host: options.host ?? "127.0.0.1",
      port: options.port ?? 7420,
      tls: t === false ? false : ({ ...(t ?? {}) } as tls.ConnectionOptions),
      token: options.token === undefined ? undefined : toBytes(options.token),
      clientName: options.clientName ?? "slotgate-ts",
      connectTimeoutMs: options.connectTimeoutMs ?? 5000,
      maxIncomingFrameBytes: options.maxIncomingFrameBytes ?? DEFAULT_MAX_INCOMING_FRAME_BYTES,
    };
    this.keyspace = options.keyspace ?? "";
    this.defaultDeadlineMs = options.defaultDeadlineMs ?? 0;
    this.timeoutMarginMs = options.timeoutMarginMs ?? 250;
    this.retryDelayMs = options.retryDelayMs ?? 50;
    this.maxRetryDelayMs = options.maxRetryDelayMs ?? 2000;
    this.maxReadResends = options.maxReadResends ?? 2;
    const n = Math.max(1, Math.floor(options.poolSize ?? 2));
    this.slots = Array.from({ length: n }, () => ({ conn: null, attempt: 0, timer: undefined }));
    this.owner = {
      onConnect: () => this.emit("connect"),
      onReady: (c) => this.onReady(c),
      onResponse: (_c, call, r) => this.settle(call, r),
      onReject: (call, err) => this.fail(call, err),
      onSlotFree: (c) => this.pump(c),
      onClose: (c, err, unsent, unanswered, neverExecuted) => this.onConnClose(c, err, unsent, unanswered, neverExecuted),
    };
    if (!options.lazyConnect) this.connect().catch(() => {});
  }

  /** A new client with the same options (its own pool), as ioredis's duplicate(). */
  duplicate(overrides: SlotgateOptions = {}): Slotgate {
    return new Slotgate({ ...this.options, ...overrides });
  }

  /** Open the pool (done by the constructor unless lazyConnect). Resolves when one connection is ready. */
  connect(): Promise<void> {
    if (this.status === "closing" || this.status === "end") {
      return Promise.reject(localError("CLIENT_CLOSED", "client is closed"));
    }
    if (this.status === "wait") {
      this.status = "connecting";
      for (let i = 0; i < this.slots.length; i++) this.open(i);
    }
    if (this.status === "ready") return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = () => {
        this.off("ready", onReady);
        this.off("end", onEnd);
        this.off("fatal", onFatal);
      };
      const onReady = () => {
        done();
        resolve();
      };
      const onEnd = () => {
        done();
        reject(localError("CLIENT_CLOSED", "client closed before it was ready"));
      };
      const onFatal = (err: SlotgateError) => {
        done();
        reject(err);
      };
      this.on("ready", onReady);
      this.on("end", onEnd);
      this.on("fatal", onFatal);
    });
  }

  private open(i: number): void {
    const slot = this.slots[i]!;
    slot.timer = undefined;
    if (this.status === "closing" || this.status === "end") return;
    slot.conn = new Connection(this.cfg, this.owner);
  }

  private readyConnections(): number {
    let n = 0;
    for (const s of this.slots) if (s.conn !== null && s.conn.state === "ready") n++;
    return n;
  }

  private onReady(c: Connection): void {
    this.limits = c.limits;
    this.fatal = undefined;
    for (const s of this.slots) if (s.conn === c) s.attempt = 0;
    if (this.status !== "closing") this.status = "ready";
    this.emit("ready", c.hello);
    this.pump(c);
  }

  private onConnClose(c: Connection, err: SlotgateError, unsent: Call[], unanswered: Call[], neverExecuted: boolean): void {
    const idx = this.slots.findIndex((s) => s.conn === c);
    const wasReady = c.limits !== undefined;
    if (idx >= 0) this.slots[idx]!.conn = null;
    this.retiredWrites += c.writes;
    this.retiredFrames += c.framesWritten;
    // Calls the server never saw or never executed go back to the head of the queue.
    const back: Call[] = [];
    for (const call of unsent) if (!call.settled) back.push(call);
    for (const call of unanswered) {
      if (call.settled) continue;
      if (neverExecuted) back.push(call);
      else if (call.idempotent && call.resends < this.maxReadResends) {
        call.resends++;
        back.push(call);
      } else {
        this.fail(call, err.local && err.code === "CONNECTION_LOST"
          ? localError("CONNECTION_LOST", `${err.message}; the call was sent and not answered, its outcome is unknown`)
          : err);
      }
    }
    if (back.length > 0) this.queue.unshift(...back);
    const closing = this.status === "closing" || this.status === "end";
    if (!closing && !err.local && !wasReady && (err.code === "AUTH_FAILED" || err.code === "UNSUPPORTED_VERSION")) {
      // No retry fixes these: fail what waits instead of letting it time out.
      this.fatal = err;
      this.emit("fatal", err);
    }
    this.emit("close");
    if (!closing && !(err.local && err.code === "CLIENT_CLOSED")) {
      if (this.listenerCount("error") > 0) this.emit("error", err);
      if (idx >= 0) this.scheduleReconnect(idx);
      if (this.readyConnections() === 0) this.status = "reconnecting";
    }
    if (this.fatal !== undefined && this.readyConnections() === 0) {
      const waiting = this.queue.splice(0);
      for (const call of waiting) this.fail(call, this.fatal);
    }
    this.pump(null);
    this.checkDrained();
  }

  private scheduleReconnect(i: number): void {
    const slot = this.slots[i]!;
    if (slot.timer !== undefined) return;
    const exp = Math.min(this.maxRetryDelayMs, this.retryDelayMs * 2 ** Math.min(slot.attempt, 20));
    const delay = Math.round(exp / 2 + (Math.random() * exp) / 2);
    slot.attempt++;
    this.emit("reconnecting", delay);
    slot.timer = setTimeout(() => this.open(i), delay);
    slot.timer.unref?.();
  }

  /**
   * A snapshot of the client's state: connections (ready or not), calls
   * waiting for a connection, calls outstanding per connection, and the
   * socket writes and request frames since start (pipelining: frames/writes).
   */
  diagnostics(): { connections: number; ready: number; queued: number; inflight: number[]; writes: number; frames: number } {
    let connections = 0;
    const inflight: number[] = [];
    for (const s of this.slots) {
      if (s.conn === null) continue;
      connections++;
      if (s.conn.state === "ready") inflight.push(s.conn.load);
    }
    return {
      connections,
      ready: inflight.length,
      queued: this.queue.length,
      inflight,
      writes: this.retiredWrites + this.slots.reduce((a, s) => a + (s.conn?.writes ?? 0), 0),
      frames: this.retiredFrames + this.slots.reduce((a, s) => a + (s.conn?.framesWritten ?? 0), 0),
    };
  }

  // ---------------------------------------------------------------------
  // Call path

  /**
   * Low-level request path: sends `req` (a Request or its init shape; its id
   * is ignored) encoded by the generated code, and resolves with the raw
   * Response (id and count as numbers), whatever its code. `validate: false`
   * skips the local limit checks (conformance `raw` calls); the client-side
   * deadline and the AbortSignal still apply.
   */
  request(req: Request | MessageInitShape<typeof RequestSchema>, opts: CallOptions & { validate?: boolean } = {}): Promise<Reply> {
    const m = create(RequestSchema, req as MessageInitShape<typeof RequestSchema>);
    if (opts.deadlineMs !== undefined) m.deadlineMs = opts.deadlineMs;
    m.id = 0n;
    const r = newReq(m.op, m.keyspace);
    r.keys = m.keys;
    r.values = m.values;
    r.pattern = m.pattern;
    r.deadlineMs = m.deadlineMs;
    r.rawBody = toBinary(RequestSchema, m);
    return this.submit(r, { signal: opts.signal }, (x) => x, opts.validate ?? true) as Promise<Reply>;
  }

  private submit(req: Req, opts: CallOptions, map: (r: Reply) => unknown, validate = true): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (this.status === "closing" || this.status === "end") {
        reject(localError("CLIENT_CLOSED", "client is closed"));
        return;
      }
      const signal = opts.signal;
      if (signal?.aborted) {
        reject(localError("ABORTED", "the call was aborted"));
        return;
      }
      if (opts.deadlineMs !== undefined) req.deadlineMs = Math.max(0, Math.floor(opts.deadlineMs));
      else if (req.deadlineMs === 0 && req.rawBody === undefined) req.deadlineMs = this.defaultDeadlineMs;
      const call: Call = {
        id: 0,
        req,
        map,
        resolve,
        reject,
        settled: false,
        validate,
        idempotent: READ_OPS.has(req.op),
        resends: 0,
        timer: undefined,
        signal,
        onAbort: undefined,
      };
      this.unsettled++;
      const deadline = req.deadlineMs || (req.op === Op.INVALIDATE ? 30000 : this.limits?.defaultDeadlineMs || 1000);
      call.timer = setTimeout(this.onTimeout, deadline + this.timeoutMarginMs, call, deadline);
      if (signal !== undefined) {
        call.onAbort = () => this.fail(call, localError("ABORTED", "the call was aborted"));
        signal.addEventListener("abort", call.onAbort, { once: true });
      }
      if (this.status === "wait") this.connect().catch(() => {});
      if (this.queue.length === 0) {
        const c = this.pick();
        if (c !== null) {
          this.dispatch(c, call);
          return;
        }
      }
      if (this.fatal !== undefined && this.readyConnections() === 0) {
        this.fail(call, this.fatal);
        return;
      }
      this.queue.push(call);
    });
  }

  private readonly onTimeout = (call: Call, deadline: number): void => {
    this.fail(
      call,
      localError("TIMEOUT", `no answer within ${deadline + this.timeoutMarginMs} ms (deadline ${deadline} ms + margin ${this.timeoutMarginMs} ms)`),
    );
  };

  /**
   * The connection for the next call: the one already collecting this turn's
   * write if it has room (bigger batches, fewer TLS records and syscalls),
   * else the ready connection with the fewest outstanding calls and room for
   * one more, or null.
   */
  private pick(): Connection | null {
    let best: Connection | null = null;
    for (const s of this.slots) {
      const c = s.conn;
      if (c === null || !c.accepting) continue;
      const max = c.limits?.maxInflight || 1024;
      if (c.load >= max) continue;
      if (c.flushScheduled) return c;
      if (best === null || c.load < best.load) best = c;
    }
    return best;
  }

  private dispatch(c: Connection, call: Call): void {
    if (call.validate && c.limits !== undefined) {
      const err = checkLimits(call.req, c.limits);
      if (err !== null) {
        this.fail(call, err);
        return;
      }
    }
    call.id = this.nextId++;
    c.send(call);
  }

  /** Move queued calls onto connections with room. */
  private pump(_hint: Connection | null): void {
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      if (head.settled) {
        this.queue.shift();
        continue;
      }
      const c = this.pick();
      if (c === null) return;
      this.queue.shift();
      this.dispatch(c, head);
    }
  }

  private settle(call: Call, r: Reply): void {
    if (call.settled) return;
    this.finish(call);
    let v: unknown;
    try {
      v = call.map(r);
    } catch (e) {
      call.reject(e);
      return;
    }
    call.resolve(v);
  }

  private fail(call: Call, err: unknown): void {
    if (call.settled) return;
    this.finish(call);
    call.reject(err);
  }

  private finish(call: Call): void {
    call.settled = true;
    clearTimeout(call.timer);
    if (call.onAbort !== undefined) call.signal!.removeEventListener("abort", call.onAbort);
    this.unsettled--;
    if (this.unsettled === 0 && this.drainWaiters.length > 0) this.checkDrained();
  }

  private checkDrained(): void {
    if (this.unsettled !== 0) return;
    const w = this.drainWaiters;
    this.drainWaiters = [];
    for (const f of w) f();
  }

  /**
   * Stop taking calls, wait until every call already made has settled
   * (answered, failed or timed out), then close the connections. Resolves "OK".
   */
  async quit(): Promise<"OK"> {
    if (this.status === "end") return "OK";
    if (this.status !== "closing") {
      this.status = "closing";
      if (this.unsettled > 0) await new Promise<void>((r) => this.drainWaiters.push(r));
      this.closeAll();
    } else {
      await new Promise<void>((r) => this.once("end", () => r()));
    }
    return "OK";
  }

  /** Close at once; calls not yet settled reject with CLIENT_CLOSED. */
  disconnect(): void {
    if (this.status === "end") return;
    this.status = "closing";
    const err = localError("CLIENT_CLOSED", "client disconnected");
    for (const call of this.queue.splice(0)) this.fail(call, err);
    for (const s of this.slots) s.conn?.fail(err);
    this.closeAll();
  }

  private closeAll(): void {
    this.status = "closing";
    for (const call of this.queue.splice(0)) this.fail(call, localError("CLIENT_CLOSED", "client closed"));
    for (const s of this.slots) {
      clearTimeout(s.timer);
      s.timer = undefined;
      const c = s.conn;
      s.conn = null;
      c?.end();
    }
    this.status = "end";
    this.emit("end");
  }

  // ---------------------------------------------------------------------
  // Ops

  /** PING: resolves "PONG". */
  ping(opts?: CallOptions): Promise<string> {
    return this.submit(newReq(Op.PING, ""), opts ?? NO_OPTS, (r) => {
      if (r.code !== Code.OK) throw responseError(r);
      return r.message || "PONG";
    }) as Promise<string>;
  }

  private req1(op: number, key: Bytes, opts: CallOptions | undefined): Req {
    const r = newReq(op, opts?.keyspace ?? this.keyspace);
    r.keys = [key];
    return r;
  }

  /** GET as a UTF-8 string; null on a miss. */
  get(key: Bytes, opts?: CallOptions): Promise<string | null> {
    return this.submit(this.req1(Op.GET, key, opts), opts ?? NO_OPTS, mapGetString) as Promise<string | null>;
  }

  /** GET as a Buffer; null on a miss. */
  getBuffer(key: Bytes, opts?: CallOptions): Promise<Buffer | null> {
    return this.submit(this.req1(Op.GET, key, opts), opts ?? NO_OPTS, mapGetBuffer) as Promise<Buffer | null>;
  }

  /** SET; resolves "OK", or null when an nx/xx condition was not met (as ioredis). */
  set(key: Bytes, value: Bytes, opts?: SetOptions): Promise<"OK" | null> {
    const o = opts ?? NO_OPTS;
    if (o.nx && o.xx) return Promise.reject(localError("INVALID_ARGUMENT", "nx and xx are exclusive"));
    const r = this.req1(Op.SET, key, o);
    r.values = [value];
    r.ttlMs = ms(o.ttlMs);
    r.condition = o.nx ? Condition.COND_NX : o.xx ? Condition.COND_XX : Condition.COND_NONE;
    return this.submit(r, o, mapSet) as Promise<"OK" | null>;
  }

  /** DELETE; resolves the number of keys removed (0 or 1). */
  del(key: Bytes, opts?: CallOptions): Promise<number> {
    return this.submit(this.req1(Op.DELETE, key, opts), opts ?? NO_OPTS, mapCount) as Promise<number>;
  }

  /** EXPIRE in milliseconds (PEXPIRE); resolves 1, or 0 if the key does not exist. */
  expire(key: Bytes, ttlMs: number, opts?: CallOptions): Promise<number> {
    const r = this.req1(Op.EXPIRE, key, opts);
    r.ttlMs = ms(ttlMs);
    return this.submit(r, opts ?? NO_OPTS, (x) => {
      if (x.code === Code.OK) return 1;
      if (x.code === Code.NOT_FOUND) return 0;
      throw responseError(x);
    }) as Promise<number>;
  }

  /** MGET as strings, null per miss. Rejects (with `results`) if any key failed. */
  async mget(keys: Bytes[], opts?: CallOptions): Promise<Array<string | null>> {
    const res = await this.mgetResults(keys, opts);
    return res.map((k) => (k.value === null ? null : k.value.toString("utf8")));
  }

  /** MGET as Buffers, null per miss. Rejects (with `results`) if any key failed. */
  async mgetBuffer(keys: Bytes[], opts?: CallOptions): Promise<Array<Buffer | null>> {
    const res = await this.mgetResults(keys, opts);
    return res.map((k) => k.value);
  }

  /**
   * MGET with every key's own outcome (one per key, in order), for callers
   * that tolerate partial failure (a stopped shard fails only its keys).
   */
  mgetDetailed(keys: Bytes[], opts?: CallOptions): Promise<Array<KeyResult<Buffer>>> {
    const r = newReq(Op.MGET, opts?.keyspace ?? this.keyspace);
    r.keys = keys;
    return this.submit(r, opts ?? NO_OPTS, (x) => mapResults(x, true)) as Promise<Array<KeyResult<Buffer>>>;
  }

  private async mgetResults(keys: Bytes[], opts?: CallOptions): Promise<Array<KeyResult<Buffer>>> {
    const res = await this.mgetDetailed(keys, opts);
    throwIfAnyFailed(res, [Code.OK, Code.NOT_FOUND]);
    return res;
  }

  /**
   * MSET of items (or a plain object of key → value); per-item ttlMs, or
   * opts.ttlMs for all. Resolves "OK" when every item was stored; rejects
   * with `results` otherwise (NOT_APPLIED items included).
   */
  async mset(items: MsetItem[] | Record<string, Bytes>, opts?: SetOptions): Promise<"OK"> {
    const res = await this.msetDetailed(items, opts);
    throwIfAnyFailed(res, [Code.OK]);
    return "OK";
  }

  /** MSET with every item's outcome. */
  msetDetailed(items: MsetItem[] | Record<string, Bytes>, opts?: SetOptions): Promise<Array<KeyResult<never>>> {
    const o = opts ?? NO_OPTS;
    const list: MsetItem[] = Array.isArray(items) ? items : Object.entries(items).map(([key, value]) => ({ key, value }));
    const r = newReq(Op.MSET, o.keyspace ?? this.keyspace);
    r.keys = list.map((it) => it.key);
    r.values = list.map((it) => it.value);
    if (list.some((it) => it.ttlMs)) r.ttlsMs = list.map((it) => ms(it.ttlMs));
    r.ttlMs = ms(o.ttlMs);
    r.condition = o.nx ? Condition.COND_NX : o.xx ? Condition.COND_XX : Condition.COND_NONE;
    return this.submit(r, o, (x) => mapResults(x, false)) as Promise<Array<KeyResult<never>>>;
  }

  /** MDELETE; resolves the number of keys removed. Rejects (with `results`) if any key failed. */
  async mdel(keys: Bytes[], opts?: CallOptions): Promise<number> {
    const { count, results } = await this.mdelDetailed(keys, opts);
    throwIfAnyFailed(results, [Code.OK, Code.NOT_FOUND]);
    return count;
  }

  /** MDELETE with the count and every key's outcome. */
  mdelDetailed(keys: Bytes[], opts?: CallOptions): Promise<{ count: number; results: Array<KeyResult<never>> }> {
    const r = newReq(Op.MDELETE, opts?.keyspace ?? this.keyspace);
    r.keys = keys;
    return this.submit(r, opts ?? NO_OPTS, (x) => ({ results: mapResults(x, false), count: x.count })) as Promise<{
      count: number;
      results: Array<KeyResult<never>>;
    }>;
  }

  /** INVALIDATE: delete every key of the keyspace matching the glob; resolves the count removed. */
  invalidate(pattern: Bytes, opts?: CallOptions): Promise<number> {
    const r = newReq(Op.INVALIDATE, opts?.keyspace ?? this.keyspace);
    r.pattern = pattern;
    return this.submit(r, opts ?? NO_OPTS, mapCount) as Promise<number>;
  }

  /**
   * GET_OR_LEASE (section 5): a hit, a lease to fill with setWithLease, or a
   * wait hint. `leaseTtlMs` 0 = the server's 10 s.
   */
  getOrLease(key: Bytes, opts?: CallOptions & { leaseTtlMs?: number }): Promise<LeaseResult<Buffer>> {
    const o = opts ?? NO_OPTS;
    const r = this.req1(Op.GET_OR_LEASE, key, o);
    r.ttlMs = ms(opts?.leaseTtlMs);
    return this.submit(r, o, mapLease) as Promise<LeaseResult<Buffer>>;
  }

  /** SET_WITH_LEASE; resolves true if stored, false on LEASE_INVALID. */
  setWithLease(key: Bytes, value: Bytes, lease: Bytes, opts?: SetOptions): Promise<boolean> {
    const o = opts ?? NO_OPTS;
    const r = this.req1(Op.SET_WITH_LEASE, key, o);
    r.values = [value];
    r.lease = lease;
    r.ttlMs = ms(o.ttlMs);
    return this.submit(r, o, (x) => {
      if (x.code === Code.OK) return true;
      if (x.code === Code.LEASE_INVALID) return false;
      throw responseError(x);
    }) as Promise<boolean>;
  }

  /** GET_VERSIONED as Buffer + version (0n = unversioned); null on a miss. */
  getVersioned(key: Bytes, opts?: CallOptions): Promise<Versioned<Buffer> | null> {
    return this.submit(this.req1(Op.GET_VERSIONED, key, opts), opts ?? NO_OPTS, (x) => {
      if (x.code === Code.OK) return { value: asBuffer(x.value), version: x.version };
      if (x.code === Code.NOT_FOUND) return null;
      throw responseError(x);
    }) as Promise<Versioned<Buffer> | null>;
  }

  /**
   * SET_VERSIONED (compare-and-set): stores if the current version equals
   * `expected` (0n = absent/unversioned). `{ok: true, version}` = the new
   * version; `{ok: false, version}` = the current one (VERSION_CONFLICT).
   */
  setVersioned(key: Bytes, value: Bytes, expected: bigint | number, opts?: SetOptions): Promise<SetVersionedResult> {
    const o = opts ?? NO_OPTS;
    const r = this.req1(Op.SET_VERSIONED, key, o);
    r.values = [value];
    r.version = BigInt.asUintN(64, BigInt(expected));
    r.ttlMs = ms(o.ttlMs);
    return this.submit(r, o, (x) => {
      if (x.code === Code.OK) return { ok: true, version: x.version };
      if (x.code === Code.VERSION_CONFLICT) return { ok: false, version: x.version };
      throw responseError(x);
    }) as Promise<SetVersionedResult>;
  }

  /** STATS: the server's counters (section 5). */
  stats(opts?: CallOptions): Promise<Record<string, number>> {
    return this.submit(newReq(Op.STATS, ""), opts ?? NO_OPTS, (x) => {
      if (x.code !== Code.OK) throw responseError(x);
      const out: Record<string, number> = {};
      for (const [k, v] of Object.entries(x.stats)) out[k] = Number(v);
      return out;
    }) as Promise<Record<string, number>>;
  }
}

const NO_OPTS: SetOptions = {};

/** A TTL in ms for the wire: a non-negative integer (0 = keyspace default). */
function ms(v: number | undefined): number {
  return v === undefined || !(v > 0) ? 0 : Math.min(Math.floor(v), Number.MAX_SAFE_INTEGER);
}

function mapGetString(r: Reply): string | null {
  if (r.code === Code.OK) return asBuffer(r.value).toString("utf8");
  if (r.code === Code.NOT_FOUND) return null;
  throw responseError(r);
}

function mapGetBuffer(r: Reply): Buffer | null {
  if (r.code === Code.OK) return asBuffer(r.value);
  if (r.code === Code.NOT_FOUND) return null;
  throw responseError(r);
}

function mapSet(r: Reply): "OK" | null {
  if (r.code === Code.OK) return "OK";
  if (r.code === Code.NOT_APPLIED) return null;
  throw responseError(r);
}

function mapCount(r: Reply): number {
  if (r.code === Code.OK || r.code === Code.NOT_FOUND) return Number(r.count);
  throw responseError(r);
}

function mapLease(r: Reply): LeaseResult<Buffer> {
  switch (r.code) {
    case Code.OK:
      return { status: "hit", value: asBuffer(r.value), version: r.version };
    case Code.LEASE_GRANTED:
      return { status: "lease", lease: asBuffer(r.lease) };
    case Code.LEASE_WAIT:
      return { status: "wait", retryAfterMs: r.retryAfterMs };
    default:
      throw responseError(r);
  }
}

function mapResults(r: Reply, withValues: boolean): Array<KeyResult<Buffer>> {
  if (r.code !== Code.OK) throw responseError(r);
  return r.results.map((k) => ({
    code: codeName(k.code),
    value: withValues && k.code === Code.OK ? asBuffer(k.value) : null,
    message: k.message,
  }));
}

function throwIfAnyFailed(res: Array<KeyResult<unknown>>, ok: number[]): void {
  const okNames = ok.map(codeName);
  const bad = res.find((k) => !okNames.includes(k.code));
  if (bad !== undefined) {
    throw new SlotgateError(bad.code, `${res.filter((k) => !okNames.includes(k.code)).length} of ${res.length} keys failed; first: ${bad.message || bad.code}`, {
      results: res,
    });
  }
}

/**
 * Section 4's validation, done before sending so an oversize key or batch
 * fails with its code and no round trip. Returns null when the request fits.
 * Keyspace value limits are not announced; the server checks those.
 */
export function checkLimits(req: Req, l: Limits): SlotgateError | null {
  const keys = req.keys;
  const values = req.values;
  const op = req.op;
  const batch = op === Op.MGET || op === Op.MSET || op === Op.MDELETE;
  if (batch && keys.length === 0) return localError("INVALID_ARGUMENT", "a batch needs at least one key");
  if (batch && l.maxBatchKeys > 0 && keys.length > l.maxBatchKeys) {
    return localError("BATCH_TOO_LARGE", `${keys.length} keys exceed max_batch_keys ${l.maxBatchKeys}`);
  }
  let total = 0;
  for (const k of keys) {
    const n = byteLength(k);
    if (n === 0) return localError("INVALID_KEY", "empty key");
    if (l.maxKeyBytes > 0 && n > l.maxKeyBytes) {
      return localError("KEY_TOO_LARGE", `key of ${n} bytes exceeds max_key_bytes ${l.maxKeyBytes}`);
    }
    total += n;
  }
  if (req.pattern !== null) {
    const n = byteLength(req.pattern);
    if (l.maxKeyBytes > 0 && n > l.maxKeyBytes) return localError("KEY_TOO_LARGE", `pattern of ${n} bytes exceeds max_key_bytes ${l.maxKeyBytes}`);
  }
  for (const v of values) {
    const n = byteLength(v);
    if (l.maxValueBytes > 0 && n > l.maxValueBytes) {
      return localError("VALUE_TOO_LARGE", `value of ${n} bytes exceeds max_value_bytes ${l.maxValueBytes}`);
    }
    total += n;
  }
  if (keys.length > 1 && l.maxBatchBytes > 0 && total > l.maxBatchBytes) {
    return localError("BATCH_TOO_LARGE", `${total} key and value bytes exceed max_batch_bytes ${l.maxBatchBytes}`);
  }
  return null;
}

