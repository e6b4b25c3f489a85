// The client's connection behaviour against a scriptable fake server
// (fakeserver.mjs): multiplexing and out-of-order replies, pipelining,
// max_inflight, bad and oversize server frames, SHUTTING_DOWN resend, lost
// connections, local limit checks, deadlines, aborts, handshake errors,
// quit() draining, events.
import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { Slotgate, SlotgateError, proto } from "../../dist/index.js";
import { startFakeServer, response, connectionError, until } from "./fakeserver.mjs";

const { Code, Op } = proto;

function client(port, o = {}) {
  return new Slotgate({ host: "127.0.0.1", port, tls: false, poolSize: 1, retryDelayMs: 5, ...o });
}

function answerGet(conn, req) {
  conn.send(response({ id: req.id, value: req.keys[0] }));
}

async function rejects(p, code) {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof SlotgateError, `not a SlotgateError: ${e}`);
    assert.equal(e.code, code, e.message);
    return e;
  }
  assert.fail(`expected ${code}, the call succeeded`);
}

test("replies out of order reach their own callers", async () => {
  const srv = await startFakeServer({
    onRequest: (conn) => {
      if (conn.requests.length === 3) for (const r of [...conn.requests].reverse()) answerGet(conn, r);
    },
  });
  const c = client(srv.port);
  try {
    const got = await Promise.all([c.get("a"), c.get("b"), c.get("c")]);
    assert.deepEqual(got, ["a", "b", "c"]);
    const ids = srv.state.requests.map((r) => r.id);
    assert.equal(new Set(ids).size, 3, "ids are unique");
  } finally {
    c.disconnect();
    await srv.close();
  }
});

test("calls made in the same tick go out in one socket write", async () => {
  const srv = await startFakeServer({ onRequest: answerGet });
  const c = client(srv.port);
  try {
    await c.ping().catch(() => {});
    await c.connect();
    const before = c.diagnostics();
    const keys = Array.from({ length: 100 }, (_, i) => `k${i}`);
    const got = await Promise.all(keys.map((k) => c.get(k)));
    assert.deepEqual(got, keys);
    const after = c.diagnostics();
    assert.equal(after.frames - before.frames, 100);
    assert.equal(after.writes - before.writes, 1);
  } finally {
    c.disconnect();
    await srv.close();
  }
});

test("never more than limits.max_inflight outstanding on a connection", async () => {
  const held = [];
  const srv = await startFakeServer({ limits: { maxInflight: 4 }, onRequest: (conn, req) => held.push([conn, req]) });
  const c = client(srv.port);
  try {
    await c.connect();
    const calls = Array.from({ length: 10 }, (_, i) => c.get(`k${i}`));
    await until(() => held.length === 4, "4 requests");
    assert.equal(c.diagnostics().queued, 6);
    // Answer one at a time: exactly one more arrives each time.
    while (held.length > 0) {
      const [conn, req] = held.shift();
      answerGet(conn, req);
      const total = srv.state.requests.length;
      if (total < 10) await until(() => srv.state.requests.length === total + 1, "one more request");
      assert.ok(held.length <= 4);
    }
    assert.deepEqual(await Promise.all(calls), Array.from({ length: 10 }, (_, i) => `k${i}`));
  } finally {
    c.disconnect();
    await srv.close();
  }
});

test("an oversize server frame fails the connection, rejects pending calls, and the client reconnects", async () => {
  const srv = await startFakeServer({
    onRequest: (conn, req) => {
      if (srv.state.hellos === 1) {
        const hdr = Buffer.alloc(4);
        hdr.writeUInt32BE(4096);
        conn.send(hdr); // header only: the cap is checked before any body
      } else answerGet(conn, req);
    },
  });
  const c = client(srv.port, { maxIncomingFrameBytes: 1024 });
  const errors = [];
  c.on("error", (e) => errors.push(e));
  try {
    // A write: a read would be resent on the new connection.
    const e = await rejects(c.set("a", "1"), "FRAME_TOO_LARGE");
    assert.equal(e.local, true);
    assert.equal(await c.get("b"), "b");
    assert.equal(srv.state.hellos, 2);
    assert.equal(errors[0]?.code, "FRAME_TOO_LARGE");
  } finally {
    c.disconnect();
    await srv.close();
  }
});

test("an undecodable server frame fails the connection with BAD_FRAME and the client reconnects", async () => {
  const srv = await startFakeServer({
    onRequest: (conn, req) => {
      if (srv.state.hellos === 1) conn.send(Buffer.from("00000003ffffff", "hex"));
      else answerGet(conn, req);
    },
  });
  const c = client(srv.port);
  try {
    const [a, b] = await Promise.allSettled([c.set("a", "1"), c.set("b", "2")]);
    assert.equal(a.reason?.code, "BAD_FRAME");
    assert.equal(b.reason?.code, "BAD_FRAME");
    assert.equal(await c.get("c"), "c");
  } finally {
    c.disconnect();
    await srv.close();
  }
});

test("after SHUTTING_DOWN, calls the server never answered are resent on a new connection", async () => {
  const srv = await startFakeServer({
    onRequest: (conn, req) => {
      if (srv.state.hellos === 1) {
        if (conn.requests.length === 3) {
          conn.send(response({ id: conn.requests[0].id }));
          conn.send(connectionError(Code.SHUTTING_DOWN, "server is shutting down"));
          conn.socket.end();
        }
      } else conn.send(response({ id: req.id }));
    },
  });
  const c = client(srv.port);
  try {
    const got = await Promise.all([c.set("a", "1"), c.set("b", "2"), c.set("c", "3")]);
    assert.deepEqual(got, ["OK", "OK", "OK"]);
    assert.equal(srv.conns[0].requests.length, 3);
    assert.deepEqual(
      srv.conns[1].requests.map((r) => Buffer.from(r.keys[0]).toString()),
      ["b", "c"],
    );
  } finally {
    c.disconnect();
    await srv.close();
  }
});

test("a SHUTTING_DOWN sent just before the server reset the connection is still read after a failed write", async () => {
  let c;
  let late;
  const srv = await startFakeServer({
    onRequest: (conn, req) => {
      if (srv.state.hellos > 1) {
        conn.send(response({ id: req.id }));
        return;
      }
      if (conn.requests.length !== 2) return;
      // The server drains: SHUTTING_DOWN, then it closes with input unread,
      // which resets the connection. Holding the event loop until the reset
      // has reached the client's socket, then making a call, orders things
      // as they race in production: the client's next write fails before it
      // has read the SHUTTING_DOWN.
      conn.socket.write(connectionError(Code.SHUTTING_DOWN, "server is shutting down"), () => {
        conn.socket.resetAndDestroy();
        const until = Date.now() + 50;
        while (Date.now() < until);
        late = c.set("late", "3");
      });
    },
  });
  c = client(srv.port);
  try {
    const early = await Promise.all([c.set("a", "1"), c.set("b", "2")]);
    assert.deepEqual(early, ["OK", "OK"]);
    assert.equal(await late, "OK");
    assert.deepEqual(
      srv.conns[1].requests.map((r) => Buffer.from(r.keys[0]).toString()).sort(),
      ["a", "b", "late"],
    );
  } finally {
    c.disconnect();
    await srv.close();
  }
});

test("a lost connection fails unanswered writes with CONNECTION_LOST and resends reads", async () => {
  const srv = await startFakeServer({
    onRequest: (conn, req) => {
      if (srv.state.hellos === 1) {
        if (conn.requests.length === 2) conn.close();
      } else answerGet(conn, req);
    },
  });
  const c = client(srv.port);
  try {
    const [w, r] = await Promise.allSettled([c.set("w", "1"), c.get("r")]);
    assert.equal(w.status, "rejected");
    assert.equal(w.reason.code, "CONNECTION_LOST");
    assert.equal(w.reason.retriable, true);
    assert.equal(r.status, "fulfilled");
    assert.equal(r.value, "r");
  } finally {
    c.disconnect();
    await srv.close();
  }
});

test("limits from the HelloReply are checked locally, with no round trip", async () => {
  const srv = await startFakeServer({
    limits: { maxKeyBytes: 8, maxValueBytes: 16, maxBatchKeys: 2, maxBatchBytes: 20 },
    onRequest: answerGet,
  });
  const c = client(srv.port);
  try {
    await c.connect();
    assert.equal((await rejects(c.get("123456789"), "KEY_TOO_LARGE")).local, true);
    await rejects(c.get(""), "INVALID_KEY");
    await rejects(c.set("k", "x".repeat(17)), "VALUE_TOO_LARGE");
    await rejects(c.mget(["a", "b", "c"]), "BATCH_TOO_LARGE");
    await rejects(c.mset([{ key: "a", value: "x".repeat(10) }, { key: "b", value: "x".repeat(10) }]), "BATCH_TOO_LARGE");
    await rejects(c.invalidate("p".repeat(9)), "KEY_TOO_LARGE");
    await rejects(c.mdel([]), "INVALID_ARGUMENT");
    assert.equal(srv.state.requests.length, 0);
    assert.equal(await c.get("12345678"), "12345678");
    assert.equal(srv.state.requests.length, 1);
  } finally {
    c.disconnect();
    await srv.close();
  }
});

test("a call the server never answers fails with TIMEOUT from the client's deadline", async () => {
  const srv = await startFakeServer({});
  const c = client(srv.port, { timeoutMarginMs: 20 });
  try {
    const e = await rejects(c.get("k", { deadlineMs: 30 }), "TIMEOUT");
    assert.equal(e.local, true);
    assert.equal(e.retriable, true);
    assert.equal(srv.state.requests[0].deadlineMs, 30);
  } finally {
    c.disconnect();
    await srv.close();
  }
});

test("a dead proxy: calls fail with TIMEOUT within their deadline instead of hanging", async () => {
  const probe = net.createServer();
  await new Promise((r) => probe.listen(0, "127.0.0.1", r));
  const port = probe.address().port;
  await new Promise((r) => probe.close(r));
  const c = client(port, { timeoutMarginMs: 20 });
  try {
    await rejects(c.get("k", { deadlineMs: 50 }), "TIMEOUT");
  } finally {
    c.disconnect();
  }
});

test("an AbortSignal rejects the call with ABORTED", async () => {
  const srv = await startFakeServer({});
  const c = client(srv.port);
  try {
    const ac = new AbortController();
    const p = c.get("k", { signal: ac.signal });
    await until(() => srv.state.requests.length === 1, "the request");
    ac.abort();
    await rejects(p, "ABORTED");
    await rejects(c.get("k", { signal: ac.signal }), "ABORTED");
  } finally {
    c.disconnect();
    await srv.close();
  }
});

test("AUTH_FAILED in the handshake fails the calls with AUTH_FAILED", async () => {
  const srv = await startFakeServer({ onHello: () => connectionError(Code.AUTH_FAILED, "authentication failed") });
  const c = client(srv.port, { token: "wrong" });
  try {
    const e = await rejects(c.ping(), "AUTH_FAILED");
    assert.equal(e.local, false);
    assert.equal(e.retriable, false);
    await rejects(c.set("a", "b"), "AUTH_FAILED");
    await rejects(c.connect(), "AUTH_FAILED");
  } finally {
    c.disconnect();
    await srv.close();
  }
});

test("codes map to results and typed errors; unknown codes are errors", async () => {
  const srv = await startFakeServer({
    onRequest: (conn, req) => {
      const k = Buffer.from(req.keys[0] ?? []).toString();
      const code = { miss: Code.NOT_FOUND, nx: Code.NOT_APPLIED, odd: 999, shard: Code.SHARD_UNAVAILABLE }[k] ?? Code.OK;
      conn.send(response({ id: req.id, code, message: code === Code.OK ? "" : `code ${code}` }));
    },
  });
  const c = client(srv.port);
  try {
    assert.equal(await c.get("miss"), null);
    assert.equal(await c.set("nx", "v", { nx: true }), null);
    const u = await rejects(c.get("odd"), "UNKNOWN_999");
    assert.equal(u.retriable, false);
    const s = await rejects(c.get("shard"), "SHARD_UNAVAILABLE");
    assert.equal(s.retriable, true);
    assert.equal(s.numericCode, 301);
    assert.equal(srv.state.requests.find((r) => r.op === Op.SET).condition, proto.Condition.COND_NX);
  } finally {
    c.disconnect();
    await srv.close();
  }
});

test("quit() lets calls in flight finish, refuses new ones, then closes", async () => {
  const held = [];
  const srv = await startFakeServer({ onRequest: (conn, req) => held.push([conn, req]) });
  const c = client(srv.port);
  const events = [];
  for (const ev of ["connect", "ready", "close", "end"]) c.on(ev, () => events.push(ev));
  try {
    const p = c.get("k");
    await until(() => held.length === 1, "the request");
    const q = c.quit();
    await rejects(c.get("late"), "CLIENT_CLOSED");
    answerGet(...held[0]);
    assert.equal(await p, "k");
    assert.equal(await q, "OK");
    assert.deepEqual(events.filter((e) => e !== "close"), ["connect", "ready", "end"]);
    assert.equal(c.status, "end");
  } finally {
    c.disconnect();
    await srv.close();
  }
});

test("a pool: calls of one turn share a connection's write; the next turn goes to the least loaded connection", async () => {
  const held = [];
  const srv = await startFakeServer({
    onRequest: (conn, req) => {
      held.push([conn, req]);
      if (held.length === 30) for (const h of held) answerGet(...h);
    },
  });
  const c = client(srv.port, { poolSize: 3 });
  try {
    await until(() => c.diagnostics().ready === 3, "3 ready connections");
    const calls = [];
    for (let turn = 0; turn < 3; turn++) {
      for (let i = 0; i < 10; i++) calls.push(c.get(`k${turn}-${i}`));
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all(calls);
    assert.deepEqual(srv.conns.map((x) => x.requests.length).sort(), [10, 10, 10]);
  } finally {
    c.disconnect();
    await srv.close();
  }
});
