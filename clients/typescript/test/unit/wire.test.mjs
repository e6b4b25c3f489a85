// The hot-path codec (src/wire.ts) against the generated code: the same bytes
// for every golden request and for randomised requests, the same message for
// every golden response and for randomised responses.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { create, fromBinary, fromJson, toBinary } from "@bufbuild/protobuf";
import { frame, frameSize, newReq, proto, readResponse, replyFromMessage, requestSize, writeRequestFrame } from "../../dist/index.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const doc = JSON.parse(fs.readFileSync(process.env.SG_VECTORS || path.resolve(HERE, "../../../../proto/testdata/vectors.json"), "utf8"));

function reqFromMessage(m) {
  const r = newReq(m.op, m.keyspace);
  r.keys = m.keys;
  r.values = m.values;
  r.ttlMs = Number(m.ttlMs);
  r.condition = m.condition;
  r.deadlineMs = m.deadlineMs;
  r.ttlsMs = m.ttlsMs.length ? m.ttlsMs.map(Number) : null;
  r.pattern = m.pattern;
  r.lease = m.lease;
  r.version = m.version;
  return r;
}

function fastFrame(id, r) {
  const body = requestSize(id, r);
  const buf = Buffer.alloc(frameSize(body));
  const end = writeRequestFrame(buf, 0, id, r, body);
  assert.equal(end, buf.length, "size computed = bytes written");
  return buf;
}

const generated = (m) => frame(toBinary(proto.ClientMessageSchema, create(proto.ClientMessageSchema, { msg: { case: "request", value: m } })));

test("every golden request frame, byte for byte", () => {
  let n = 0;
  for (const c of doc.encode) {
    if (!c.json.request) continue;
    const m = fromJson(proto.ClientMessageSchema, c.json).msg.value;
    if ([m.ttlMs, m.id, ...m.ttlsMs].some((v) => v > BigInt(Number.MAX_SAFE_INTEGER))) continue; // the client never sends these
    assert.equal(fastFrame(Number(m.id), reqFromMessage(m)).toString("hex"), c.frame, c.name);
    n++;
  }
  assert.ok(n >= 15, `${n} request vectors`);
});

function rnd(n) {
  return Math.floor(Math.random() * n);
}
function rbytes(max) {
  const b = Buffer.alloc(rnd(max));
  for (let i = 0; i < b.length; i++) b[i] = rnd(256);
  return b;
}
function rstr(max) {
  const chars = ["a", "{", "}", "é", "字", "😀", "\u0000", ":"];
  let s = "";
  for (let i = rnd(max); i > 0; i--) s += chars[rnd(chars.length)];
  return s;
}

test("randomised requests: the same bytes as the generated encoder", () => {
  for (let t = 0; t < 3000; t++) {
    const strings = rnd(2) === 0;
    const keys = Array.from({ length: rnd(4) }, () => (strings ? rstr(20) : rbytes(20)));
    const values = Array.from({ length: rnd(3) }, () => (strings ? rstr(300) : rbytes(300)));
    const big = [0, 1, 127, 128, 16383, 16384, 2 ** 31, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER];
    const r = newReq([0, 1, 2, 3, 10, 11, 20, 21, 23, 30, 99][rnd(11)], ["", "room", "session", "k-é"][rnd(4)]);
    r.keys = keys;
    r.values = values;
    r.ttlMs = big[rnd(big.length)];
    r.condition = rnd(3);
    r.deadlineMs = [0, 1, 300, 4294967295][rnd(4)];
    r.ttlsMs = rnd(2) ? Array.from({ length: rnd(4) }, () => big[rnd(big.length)]) : null;
    r.pattern = rnd(2) ? (strings ? rstr(10) : rbytes(10)) : null;
    r.lease = rnd(2) ? rbytes(40) : null;
    r.version = [0n, 1n, 300n, (1n << 64n) - 1n][rnd(4)];
    const id = big[rnd(big.length)];
    const enc = (b) => (typeof b === "string" ? Buffer.from(b) : b);
    const m = {
      id: BigInt(id),
      op: r.op,
      keyspace: r.keyspace,
      keys: keys.map(enc),
      values: values.map(enc),
      ttlMs: BigInt(r.ttlMs),
      condition: r.condition,
      deadlineMs: r.deadlineMs,
      ttlsMs: (r.ttlsMs ?? []).map(BigInt),
      pattern: r.pattern === null ? new Uint8Array(0) : enc(r.pattern),
      lease: r.lease ?? new Uint8Array(0),
      version: r.version,
    };
    assert.equal(fastFrame(id, r).toString("hex"), generated(m).toString("hex"), `case ${t}`);
  }
});

function body(hex) {
  return Buffer.from(hex, "hex").subarray(4);
}

test("every golden response: the fast reader agrees with the generated decoder, or defers to it", () => {
  let fast = 0;
  for (const c of doc.decode) {
    if (c.type !== "ServerMessage") continue;
    const b = body(c.frame);
    const r = readResponse(b);
    if (r === null) continue;
    const m = fromBinary(proto.ServerMessageSchema, b);
    assert.equal(m.msg.case, "response", c.name);
    assert.deepEqual(r, replyFromMessage(m.msg.value), c.name);
    fast++;
  }
  assert.ok(fast >= 20, `${fast} responses read on the fast path`);
});

test("randomised responses: the fast reader and the generated decoder agree", () => {
  for (let t = 0; t < 3000; t++) {
    const stats = {};
    for (let i = rnd(3); i > 0; i--) stats[rstr(8)] = BigInt(rnd(2 ** 31)) * BigInt(rnd(2 ** 31));
    const m = create(proto.ServerMessageSchema, {
      msg: {
        case: "response",
        value: {
          id: BigInt([0, 1, 300, 2 ** 40, Number.MAX_SAFE_INTEGER][rnd(5)]),
          code: [0, 1, 2, 3, 4, 203, 301, 399, 1000][rnd(9)],
          message: rstr(30),
          value: rbytes(200),
          results: Array.from({ length: rnd(4) }, () => ({ code: rnd(400), value: rbytes(20), message: rstr(5) })),
          count: [0n, 1n, 5000n, -1n, -(2n ** 40n)][rnd(5)],
          lease: rbytes(33),
          retryAfterMs: rnd(2 ** 32),
          version: [0n, 7n, (1n << 64n) - 1n][rnd(3)],
          stats,
        },
      },
    });
    const b = Buffer.from(toBinary(proto.ServerMessageSchema, m));
    const r = readResponse(b);
    assert.ok(r !== null, `case ${t} takes the fast path`);
    assert.deepEqual(r, replyFromMessage(fromBinary(proto.ServerMessageSchema, b).msg.value), `case ${t}`);
  }
});

test("the fast reader defers HelloReply, ConnectionError, truncated and merged messages", () => {
  const hello = toBinary(proto.ServerMessageSchema, create(proto.ServerMessageSchema, { msg: { case: "helloReply", value: { protocolVersion: 1 } } }));
  assert.equal(readResponse(Buffer.from(hello)), null);
  const err = toBinary(proto.ServerMessageSchema, create(proto.ServerMessageSchema, { msg: { case: "error", value: { code: 106 } } }));
  assert.equal(readResponse(Buffer.from(err)), null);
  assert.equal(readResponse(Buffer.from("1205080710", "hex")), null, "truncated");
  assert.equal(readResponse(Buffer.from("12020807120210 01".replace(/ /g, ""), "hex")), null, "two response fields are merged by the generic decoder");
  assert.equal(readResponse(Buffer.from("1202 0a01".replace(/ /g, ""), "hex")), null, "wrong wire type for id");
});
