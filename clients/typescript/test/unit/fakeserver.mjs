// A scriptable stand-in for slotgate's client protocol (plaintext, loopback),
// for unit tests of the client's connection behaviour: the test decides what
// each request gets (an answer now, later, never, a broken frame, a
// ConnectionError). Redis is never involved.
import net from "node:net";
import { create, toBinary, fromBinary } from "@bufbuild/protobuf";
import { FrameDecoder, frame, proto } from "../../dist/index.js";

export function serverFrame(init) {
  return frame(toBinary(proto.ServerMessageSchema, create(proto.ServerMessageSchema, init)));
}

export function response(fields) {
  return serverFrame({ msg: { case: "response", value: fields } });
}

export function connectionError(code, message = "") {
  return serverFrame({ msg: { case: "error", value: { code, message } } });
}

/**
 * start({ limits, onHello(conn, hello) -> frame|undefined, onRequest(conn, req) })
 * conn: { socket, requests: [], send(buf), close() }. Resolves { port, conns, hellos, close() }.
 */
export async function startFakeServer(opts = {}) {
  const conns = [];
  const state = { hellos: 0, requests: [] };
  const limits = {
    maxFrameBytes: 8 << 20,
    maxKeyBytes: 1024,
    maxValueBytes: 4 << 20,
    maxBatchKeys: 1000,
    maxInflight: 1024,
    defaultDeadlineMs: 1000,
    maxBatchBytes: 8 << 20,
    ...(opts.limits ?? {}),
  };
  const server = net.createServer((socket) => {
    const conn = {
      socket,
      requests: [],
      chunks: 0,
      send: (b) => socket.write(b),
      close: () => socket.destroy(),
    };
    conns.push(conn);
    const dec = new FrameDecoder(64 << 20);
    socket.on("error", () => {});
    socket.on("data", (chunk) => {
      conn.chunks++;
      dec.push(chunk, (body) => {
        const m = fromBinary(proto.ClientMessageSchema, body);
        if (m.msg.case === "hello") {
          state.hellos++;
          const custom = opts.onHello?.(conn, m.msg.value);
          if (custom !== undefined) {
            socket.write(custom);
            return;
          }
          socket.write(
            serverFrame({
              msg: {
                case: "helloReply",
                value: { protocolVersion: 1, serverVersion: "fake", serverName: "slotgate", limits },
              },
            }),
          );
          return;
        }
        const req = m.msg.value;
        conn.requests.push(req);
        state.requests.push(req);
        opts.onRequest?.(conn, req);
      });
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: server.address().port,
    conns,
    state,
    async close() {
      for (const c of conns) c.socket.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** Wait (bounded) until pred() is true; polls on the event loop. */
export async function until(pred, what = "condition", ms = 5000) {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
