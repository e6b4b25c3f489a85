// The hot path's codec: writes Request frames straight into one batch buffer
// and reads Response frames into plain objects, without the reflection and
// per-field allocations of the generated code (measured: they were a quarter
// of the client's CPU per op, see docs/BENCHMARKS.md). It covers exactly two
// messages: ClientMessage{request} out and ServerMessage{response} in. The
// generated code (src/gen/, from proto/slotgate.proto) stays the reference:
// Hello, HelloReply, ConnectionError, raw requests and anything this reader
// does not recognise go through it, and the tests check both paths produce
// the same bytes and the same messages on every golden vector and on
// randomised requests.
import { fromBinary } from "@bufbuild/protobuf";
import { ResponseSchema, type Response } from "./gen/slotgate_pb.js";

/** A request as the client builds it (keys and values as given by the caller). */
export interface Req {
  op: number;
  keyspace: string;
  keys: Array<string | Uint8Array>;
  values: Array<string | Uint8Array>;
  ttlMs: number;
  condition: number;
  deadlineMs: number;
  ttlsMs: number[] | null;
  pattern: string | Uint8Array | null;
  lease: string | Uint8Array | null;
  version: bigint;
  /** Raw path: the Request encoded by the generated code without its id. */
  rawBody?: Uint8Array;
}

export interface KeyResultMsg {
  code: number;
  value: Uint8Array;
  message: string;
}

/** A Response (same field names as the generated type; id and count as numbers). */
export interface Reply {
  id: number;
  code: number;
  message: string;
  value: Uint8Array;
  results: KeyResultMsg[];
  count: number;
  lease: Uint8Array;
  retryAfterMs: number;
  version: bigint;
  stats: Record<string, bigint>;
}

const EMPTY = new Uint8Array(0);

export function newReq(op: number, keyspace: string): Req {
  return {
    op,
    keyspace,
    keys: [],
    values: [],
    ttlMs: 0,
    condition: 0,
    deadlineMs: 0,
    ttlsMs: null,
    pattern: null,
    lease: null,
    version: 0n,
  };
}

export function byteLength(b: string | Uint8Array): number {
  return typeof b === "string" ? Buffer.byteLength(b, "utf8") : b.length;
}

function varintSize(n: number): number {
  if (n < 0x80) return 1;
  if (n < 0x4000) return 2;
  if (n < 0x200000) return 3;
  if (n < 0x10000000) return 4;
  let s = 4;
  n = Math.floor(n / 0x10000000);
  while (n > 0) {
    s++;
    n = Math.floor(n / 128);
  }
  return s;
}

function bigVarintSize(n: bigint): number {
  let s = 1;
  while (n >= 0x80n) {
    s++;
    n >>= 7n;
  }
  return s;
}

function writeVarint(buf: Buffer, off: number, n: number): number {
  while (n >= 0x80) {
    buf[off++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[off++] = n;
  return off;
}

function writeBigVarint(buf: Buffer, off: number, n: bigint): number {
  while (n >= 0x80n) {
    buf[off++] = Number(n & 0x7fn) | 0x80;
    n >>= 7n;
  }
  buf[off++] = Number(n);
  return off;
}

const ksCache = new Map<string, Buffer>();
function keyspaceBytes(ks: string): Buffer {
  let b = ksCache.get(ks);
  if (b === undefined) {
    b = Buffer.from(ks, "utf8");
    if (ksCache.size < 256) ksCache.set(ks, b);
  }
  return b;
}

/** Size of a length-delimited field: tag + length varint + bytes. */
function lenField(n: number): number {
  return 1 + varintSize(n) + n;
}

/**
 * Body size of Request{id, ...req} (field numbers in order, proto3 defaults
 * omitted, as the generated encoder writes them).
 */
export function requestSize(id: number, r: Req): number {
  if (r.rawBody !== undefined) return (id === 0 ? 0 : 1 + varintSize(id)) + r.rawBody.length;
  let n = id === 0 ? 0 : 1 + varintSize(id);
  if (r.op !== 0) n += 1 + varintSize(r.op);
  if (r.keyspace.length > 0) n += lenField(keyspaceBytes(r.keyspace).length);
  for (const k of r.keys) n += lenField(byteLength(k));
  for (const v of r.values) n += lenField(byteLength(v));
  if (r.ttlMs !== 0) n += 1 + varintSize(r.ttlMs);
  if (r.condition !== 0) n += 1 + varintSize(r.condition);
  if (r.deadlineMs !== 0) n += 1 + varintSize(r.deadlineMs);
  if (r.ttlsMs !== null && r.ttlsMs.length > 0) {
    let p = 0;
    for (const t of r.ttlsMs) p += varintSize(t);
    n += lenField(p);
  }
  if (r.pattern !== null && byteLength(r.pattern) > 0) n += lenField(byteLength(r.pattern));
  if (r.lease !== null && byteLength(r.lease) > 0) n += lenField(byteLength(r.lease));
  if (r.version !== 0n) n += 1 + bigVarintSize(r.version);
  return n;
}

function writeBytesField(buf: Buffer, off: number, tag: number, b: string | Uint8Array): number {
  buf[off++] = tag;
  if (typeof b === "string") {
    const len = Buffer.byteLength(b, "utf8");
    off = writeVarint(buf, off, len);
    return off + buf.write(b, off, len, "utf8");
  }
  off = writeVarint(buf, off, b.length);
  buf.set(b, off);
  return off + b.length;
}

/** Total frame size (length prefix, ClientMessage tag and length, Request body). */
export function frameSize(bodySize: number): number {
  return 4 + 1 + varintSize(bodySize) + bodySize;
}

/**
 * Write the frame of ClientMessage{request: Request{id, ...r}} at `off`;
 * `bodySize` is requestSize(id, r). Returns the offset after the frame.
 */
export function writeRequestFrame(buf: Buffer, off: number, id: number, r: Req, bodySize: number): number {
  const msgSize = 1 + varintSize(bodySize) + bodySize;
  buf.writeUInt32BE(msgSize, off);
  off += 4;
  buf[off++] = 0x12; // ClientMessage.request (2, LEN)
  off = writeVarint(buf, off, bodySize);
  if (id !== 0) {
    buf[off++] = 0x08;
    off = writeVarint(buf, off, id);
  }
  if (r.rawBody !== undefined) {
    buf.set(r.rawBody, off);
    return off + r.rawBody.length;
  }
  if (r.op !== 0) {
    buf[off++] = 0x10;
    off = writeVarint(buf, off, r.op);
  }
  if (r.keyspace.length > 0) off = writeBytesField(buf, off, 0x1a, keyspaceBytes(r.keyspace));
  for (const k of r.keys) off = writeBytesField(buf, off, 0x22, k);
  for (const v of r.values) off = writeBytesField(buf, off, 0x2a, v);
  if (r.ttlMs !== 0) {
    buf[off++] = 0x30;
    off = writeVarint(buf, off, r.ttlMs);
  }
  if (r.condition !== 0) {
    buf[off++] = 0x38;
    off = writeVarint(buf, off, r.condition);
  }
  if (r.deadlineMs !== 0) {
    buf[off++] = 0x40;
    off = writeVarint(buf, off, r.deadlineMs);
  }
  if (r.ttlsMs !== null && r.ttlsMs.length > 0) {
    let p = 0;
    for (const t of r.ttlsMs) p += varintSize(t);
    buf[off++] = 0x4a;
    off = writeVarint(buf, off, p);
    for (const t of r.ttlsMs) off = writeVarint(buf, off, t);
  }
  if (r.pattern !== null && byteLength(r.pattern) > 0) off = writeBytesField(buf, off, 0x52, r.pattern);
  if (r.lease !== null && byteLength(r.lease) > 0) off = writeBytesField(buf, off, 0x5a, r.lease);
  if (r.version !== 0n) {
    buf[off++] = 0x60;
    off = writeBigVarint(buf, off, r.version);
  }
  return off;
}

// ---- reading ------------------------------------------------------------------

/** Thrown inside the fast reader when the bytes need the generic decoder. */
const FALLBACK = Symbol("fallback");

class Reader {
  pos: number;
  constructor(
    readonly buf: Buffer,
    start: number,
    readonly end: number,
  ) {
    this.pos = start;
  }

  /** A varint as a number; values above 2^53 come back as -1 (caller falls back). */
  varint(): number {
    const b = this.buf;
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw FALLBACK;
      const byte = b[this.pos++]!;
      result += (byte & 0x7f) * mul;
      if (byte < 0x80) return result <= Number.MAX_SAFE_INTEGER ? result : -1;
      mul *= 128;
    }
    throw FALLBACK;
  }

  bigVarint(): bigint {
    const b = this.buf;
    let result = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw FALLBACK;
      const byte = b[this.pos++]!;
      result |= BigInt(byte & 0x7f) << shift;
      if (byte < 0x80) return BigInt.asUintN(64, result);
      shift += 7n;
    }
    throw FALLBACK;
  }

  /** [start, end) of a length-delimited field's bytes. */
  len(): number {
    const n = this.varint();
    if (n < 0 || this.pos + n > this.end) throw FALLBACK;
    const start = this.pos;
    this.pos += n;
    return start;
  }

  skip(wire: number): void {
    switch (wire) {
      case 0:
        this.bigVarint();
        return;
      case 1:
        this.pos += 8;
        break;
      case 2:
        this.len();
        return;
      case 5:
        this.pos += 4;
        break;
      default:
        throw FALLBACK;
    }
    if (this.pos > this.end) throw FALLBACK;
  }
}

function readKeyResult(r: Reader, end: number): KeyResultMsg {
  const out: KeyResultMsg = { code: 0, value: EMPTY, message: "" };
  const sub = new Reader(r.buf, r.pos, end);
  while (sub.pos < end) {
    const tag = sub.varint();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 1 && wire === 0) out.code = sub.varint();
    else if (field === 2 && wire === 2) {
      const s = sub.len();
      out.value = r.buf.subarray(s, sub.pos);
    } else if (field === 3 && wire === 2) {
      const s = sub.len();
      out.message = r.buf.toString("utf8", s, sub.pos);
    } else if (field === 1 || field === 2 || field === 3) throw FALLBACK;
    else sub.skip(wire);
  }
  if (out.code < 0) throw FALLBACK;
  return out;
}

function readStatsEntry(r: Reader, end: number, into: Record<string, bigint>): void {
  const sub = new Reader(r.buf, r.pos, end);
  let key = "";
  let value = 0n;
  while (sub.pos < end) {
    const tag = sub.varint();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 1 && wire === 2) {
      const s = sub.len();
      key = r.buf.toString("utf8", s, sub.pos);
    } else if (field === 2 && wire === 0) value = sub.bigVarint();
    else if (field === 1 || field === 2) throw FALLBACK;
    else sub.skip(wire);
  }
  into[key] = value;
}

function emptyReply(): Reply {
  return { id: 0, code: 0, message: "", value: EMPTY, results: [], count: 0, lease: EMPTY, retryAfterMs: 0, version: 0n, stats: {} };
}

/**
 * Read a ServerMessage body that is exactly one `response` field. Returns
 * null when the body is anything else (a HelloReply, a ConnectionError, a
 * repeated or merged response, a field with an unexpected wire type...): the
 * caller then uses the generated decoder, which also rejects what does not
 * decode.
 */
export function readResponse(body: Buffer): Reply | null {
  if (body.length < 2 || body[0] !== 0x12) return null;
  try {
    const top = new Reader(body, 1, body.length);
    const start = top.len();
    if (top.pos !== body.length) return null; // more fields after it: generic path
    const r = new Reader(body, start, body.length);
    const out = emptyReply();
    while (r.pos < r.end) {
      const tag = r.varint();
      const field = tag >>> 3;
      const wire = tag & 7;
      switch (field) {
        case 1:
          if (wire !== 0) throw FALLBACK;
          out.id = r.varint();
          if (out.id < 0) throw FALLBACK;
          break;
        case 2:
          if (wire !== 0) throw FALLBACK;
          out.code = r.varint();
          if (out.code < 0) throw FALLBACK;
          break;
        case 3: {
          if (wire !== 2) throw FALLBACK;
          const s = r.len();
          out.message = body.toString("utf8", s, r.pos);
          break;
        }
        case 4: {
          if (wire !== 2) throw FALLBACK;
          const s = r.len();
          out.value = body.subarray(s, r.pos);
          break;
        }
        case 5: {
          if (wire !== 2) throw FALLBACK;
          const s = r.len();
          const end = r.pos;
          r.pos = s;
          out.results.push(readKeyResult(r, end));
          r.pos = end;
          break;
        }
        case 6:
          if (wire !== 0) throw FALLBACK;
          out.count = Number(BigInt.asIntN(64, r.bigVarint()));
          break;
        case 7: {
          if (wire !== 2) throw FALLBACK;
          const s = r.len();
          out.lease = body.subarray(s, r.pos);
          break;
        }
        case 8:
          if (wire !== 0) throw FALLBACK;
          out.retryAfterMs = Number(BigInt.asUintN(32, r.bigVarint()));
          break;
        case 9:
          if (wire !== 0) throw FALLBACK;
          out.version = r.bigVarint();
          break;
        case 10: {
          if (wire !== 2) throw FALLBACK;
          const s = r.len();
          const end = r.pos;
          r.pos = s;
          readStatsEntry(r, end, out.stats);
          r.pos = end;
          break;
        }
        default:
          r.skip(wire);
      }
    }
    return out;
  } catch (e) {
    if (e === FALLBACK) return null;
    throw e;
  }
}

/** A Reply from a Response decoded by the generated code. */
export function replyFromMessage(m: Response): Reply {
  return {
    id: Number(m.id),
    code: m.code,
    message: m.message,
    value: m.value,
    results: m.results.map((k) => ({ code: k.code, value: k.value, message: k.message })),
    count: Number(m.count),
    lease: m.lease,
    retryAfterMs: m.retryAfterMs,
    version: m.version,
    stats: { ...m.stats },
  };
}

/** Decode a Response body (without the ServerMessage wrapper) with the generated code. */
export function decodeResponseGeneric(body: Uint8Array): Reply {
  return replyFromMessage(fromBinary(ResponseSchema, body));
}
