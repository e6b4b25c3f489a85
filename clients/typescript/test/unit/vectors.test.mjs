// Golden vectors (proto/testdata/vectors.json): every encode case serialises
// byte for byte to its frame, through the generated code and the client's own
// framing; every decode case unframes and decodes to a message equal to its
// JSON (unknown fields ignored).
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { fromBinary, fromJson, equals, toJson } from "@bufbuild/protobuf";
import { FrameDecoder, decodeServerMessage, encodeClientMessage, frame, proto } from "../../dist/index.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const FILE = process.env.SG_VECTORS || path.resolve(HERE, "../../../../proto/testdata/vectors.json");
const doc = JSON.parse(fs.readFileSync(FILE, "utf8"));
const schema = { ClientMessage: proto.ClientMessageSchema, ServerMessage: proto.ServerMessageSchema };

test("vectors file", () => {
  assert.equal(doc.version, 1);
  assert.ok(doc.encode.length > 0 && doc.decode.length > 0);
});

for (const c of doc.encode) {
  test(`encode ${c.name}`, () => {
    assert.equal(c.type, "ClientMessage");
    const msg = fromJson(proto.ClientMessageSchema, c.json);
    const got = frame(encodeClientMessage(msg)).toString("hex");
    assert.equal(got, c.frame.toLowerCase());
  });
}

function unframe(hex) {
  const bodies = [];
  const bytes = Buffer.from(hex, "hex");
  // Feed byte by byte: the decoder must handle every split of header and body.
  const d = new FrameDecoder();
  for (let i = 0; i < bytes.length; i++) d.push(bytes.subarray(i, i + 1), (b) => bodies.push(Buffer.from(b)));
  assert.equal(bodies.length, 1, "exactly one frame");
  assert.equal(d.buffered, 0);
  return bodies[0];
}

for (const c of doc.decode) {
  test(`decode ${c.name}`, () => {
    const s = schema[c.type];
    assert.ok(s, `unknown type ${c.type}`);
    const body = unframe(c.frame);
    const got = c.type === "ServerMessage" ? decodeServerMessage(body) : fromBinary(s, body);
    const want = fromJson(s, c.json);
    assert.ok(equals(s, got, want), `decoded ${JSON.stringify(toJson(s, got))}, expected ${JSON.stringify(c.json)}`);
  });
}
