// One connection to slotgate: socket (TLS or plain), Hello handshake, and the
// multiplexing of calls by id with out-of-order replies. Calls handed to it in
// the same tick are written with one socket write (automatic pipelining). The
// pool in client.ts owns connections, picks one per call, and decides what to
// do with a connection's calls when it fails (resend or reject).
import * as net from "node:net";
import * as tls from "node:tls";
import { create } from "@bufbuild/protobuf";
import {
  ClientMessageSchema,
  type HelloReply,
  type Limits,
  type ServerMessage,
} from "./gen/slotgate_pb.js";
import { FrameDecoder, decodeServerMessage, encodeClientMessage } from "./codec.js";
import { frameSize, readResponse, replyFromMessage, requestSize, writeRequestFrame, type Reply, type Req } from "./wire.js";
import { SlotgateError, codeName, localError } from "./errors.js";

/** One client call as the connection and the pool see it. */
export interface Call {
  /** Id of the current attempt (a resent call gets a new id). */
  id: number;
  req: Req;
  /** Maps the Response to the value the caller's promise resolves with (or throws). */
  map: (r: Reply) => unknown;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  settled: boolean;
  /** Local limit checks before sending (false for the raw path). */
  validate: boolean;
  /** Safe to send again after the connection was lost with it unanswered. */
  idempotent: boolean;
  resends: number;
  timer: NodeJS.Timeout | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

export interface ConnectionConfig {
  host: string;
  port: number;
  tls: tls.ConnectionOptions | false;
  token: Uint8Array | undefined;
  clientName: string;
  connectTimeoutMs: number;
  maxIncomingFrameBytes: number;
}

export interface ConnectionOwner {
  onConnect(c: Connection): void;
  onReady(c: Connection): void;
  onResponse(c: Connection, call: Call, r: Reply): void;
  /** A call failed a check at write time (frame over max_frame_bytes). */
  onReject(call: Call, err: SlotgateError): void;
  /** A written call was answered or dropped: the connection may take more. */
  onSlotFree(c: Connection): void;
  /**
   * The connection is gone. `unsent` were never written; `unanswered` were
   * written and got no Response. `err` says why; `neverExecuted` is true
   * after SHUTTING_DOWN (section 3: unanswered calls were never read).
   */
  onClose(c: Connection, err: SlotgateError, unsent: Call[], unanswered: Call[], neverExecuted: boolean): void;
}

/** How long a socket whose write failed is kept open for reading (see holdOnWriteError). */
const WRITE_ERROR_GRACE_MS = 1000;

export type ConnectionState = "connecting" | "handshake" | "ready" | "closed";

export class Connection {
  state: ConnectionState = "connecting";
  limits: Limits | undefined;
  hello: HelloReply | undefined;
  /** Calls written or about to be written, by id, until answered. */
  readonly inflight = new Map<number, Call>();
  /** Calls to write at the next flush. */
  private out: Call[] = [];
  /** True while a flush is scheduled for this turn (calls made now join it). */
  flushScheduled = false;
  private readonly flushBound = () => this.flush();
  private readonly socket: net.Socket;
  private readonly decoder: FrameDecoder;
  private handshakeTimer: NodeJS.Timeout | undefined;
  private closeErr: SlotgateError | undefined;
  private neverExecuted = false;
  private writeError: Error | undefined;
  private graceTimer: NodeJS.Timeout | undefined;
  /** Socket writes of request frames, and frames written (for diagnostics). */
  writes = 0;
  framesWritten = 0;

  constructor(private readonly cfg: ConnectionConfig, private readonly owner: ConnectionOwner) {
    this.decoder = new FrameDecoder(cfg.maxIncomingFrameBytes);
    const onConnected = () => this.startHandshake();
    if (cfg.tls === false) {
      this.socket = net.connect({ host: cfg.host, port: cfg.port, noDelay: true }, onConnected);
    } else {
      const opts: tls.ConnectionOptions = { ...cfg.tls, host: cfg.host, port: cfg.port };
      if (opts.servername === undefined && net.isIP(cfg.host) === 0) opts.servername = cfg.host;
      this.socket = tls.connect(opts, onConnected);
      this.socket.setNoDelay(true);
    }
    this.handshakeTimer = setTimeout(() => {
      this.fail(localError("CONNECTION_LOST", `no HelloReply within ${cfg.connectTimeoutMs} ms`));
    }, cfg.connectTimeoutMs);
    this.socket.on("data", (chunk: Buffer) => this.onData(chunk));
    this.holdOnWriteError();
    this.socket.on("end", () => {
      // The read side ended: nothing more can arrive.
      if (this.writeError !== undefined) this.socket.destroy();
    });
    this.socket.on("error", (e: Error) => {
      this.fail(localError("CONNECTION_LOST", `connection to ${cfg.host}:${cfg.port} failed: ${e.message}`, e));
    });
    this.socket.on("close", () => {
      this.fail(localError("CONNECTION_LOST", `connection to ${cfg.host}:${cfg.port} closed`));
    });
  }

  /**
   * A failed write (EPIPE, ECONNRESET) means the peer has closed, but the
   * kernel may still hold frames it sent before closing, such as the
   * SHUTTING_DOWN that says which calls were never executed (PROTOCOL.md
   * section 3). Node destroys a socket on a write error at once, before it
   * reads those bytes; so a write error only stops writing, and the socket
   * stays open for reading until the read side ends (EOF, reset, a
   * ConnectionError) or WRITE_ERROR_GRACE_MS pass.
   */
  private holdOnWriteError(): void {
    const sock = this.socket;
    const destroy = sock.destroy.bind(sock);
    sock.destroy = ((err?: Error) => {
      const e = err as NodeJS.ErrnoException | undefined;
      if (e !== undefined && e.syscall === "write" && this.state !== "closed") {
        if (this.writeError === undefined) {
          this.writeError = e;
          this.graceTimer = setTimeout(() => destroy(e), WRITE_ERROR_GRACE_MS);
        }
        // The failed write also marked the readable side errored, which makes
        // Node drop what is still read; undo that, only for this error.
        const rs = (sock as unknown as { _readableState?: { errored?: unknown } })._readableState;
        if (rs !== undefined && rs.errored === e) rs.errored = null;
        return sock;
      }
      clearTimeout(this.graceTimer);
      return destroy(err);
    }) as typeof sock.destroy;
  }

  /** Ready, and its socket still writable: the pool may give it calls. */
  get accepting(): boolean {
    return this.state === "ready" && this.writeError === undefined;
  }

  /** Number of calls the server may still owe an answer for (plus those about to be written). */
  get load(): number {
    return this.inflight.size;
  }

  private startHandshake(): void {
    if (this.state !== "connecting") return;
    this.state = "handshake";
    this.owner.onConnect(this);
    const hello = create(ClientMessageSchema, {
      msg: {
        case: "hello",
        value: { protocolVersion: 1, clientName: this.cfg.clientName, authToken: this.cfg.token ?? new Uint8Array(0) },
      },
    });
    const body = encodeClientMessage(hello);
    const buf = Buffer.allocUnsafe(4 + body.length);
    buf.writeUInt32BE(body.length, 0);
    buf.set(body, 4);
    this.socket.write(buf);
  }

  /** Queue a call for the next flush. The caller has checked state and load. */
  send(call: Call): void {
    this.inflight.set(call.id, call);
    this.out.push(call);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      // After the I/O callbacks of this event-loop turn: every call made
      // while handling this turn's replies (any number of 'data' events)
      // goes out in one write.
      setImmediate(this.flushBound);
    }
  }

  /** Write every queued call with one socket write. */
  private flush(): void {
    this.flushScheduled = false;
    if (this.state !== "ready") return; // fail() already handed them back
    if (this.writeError !== undefined) return; // fail() will hand them back as unsent
    const calls = this.out;
    this.out = [];
    const sizes: number[] = [];
    let total = 0;
    const maxFrame = this.limits?.maxFrameBytes || Infinity;
    let n = 0;
    for (const call of calls) {
      if (call.settled) {
        // Aborted or timed out before it was written: the server never sees it.
        this.inflight.delete(call.id);
        continue;
      }
      const body = requestSize(call.id, call.req);
      const fsize = frameSize(body);
      if (fsize - 4 > maxFrame && call.validate) {
        this.inflight.delete(call.id);
        this.owner.onReject(call, localError("FRAME_TOO_LARGE", `request frame of ${fsize - 4} bytes exceeds max_frame_bytes ${maxFrame}`));
        continue;
      }
      calls[n] = call;
      sizes[n++] = body;
      total += fsize;
    }
    if (n === 0) {
      if (calls.length > 0) this.owner.onSlotFree(this);
      return;
    }
    const buf = Buffer.allocUnsafe(total);
    let off = 0;
    for (let i = 0; i < n; i++) off = writeRequestFrame(buf, off, calls[i]!.id, calls[i]!.req, sizes[i]!);
    this.writes++;
    this.framesWritten += n;
    this.socket.write(buf);
  }

  private onData(chunk: Buffer): void {
    if (this.state === "closed") return;
    try {
      this.decoder.push(chunk, this.onBody);
    } catch (e) {
      const err = e instanceof SlotgateError ? e : localError("BAD_FRAME", String(e), e);
      this.fail(err);
    }
  }

  private readonly onBody = (body: Buffer): void => {
    const r = readResponse(body);
    if (r !== null) this.onReply(r);
    else this.onFrame(decodeServerMessage(body));
  };

  private onReply(r: Reply): void {
    if (this.state !== "ready") throw localError("BAD_FRAME", "server sent a Response before its HelloReply");
    const call = this.inflight.get(r.id);
    if (call === undefined) return; // not ours (never happens with a conforming server)
    this.inflight.delete(r.id);
    this.owner.onResponse(this, call, r);
    this.owner.onSlotFree(this);
  }

  private onFrame(m: ServerMessage): void {
    if (this.state === "closed") return;
    switch (m.msg.case) {
      case "response":
        this.onReply(replyFromMessage(m.msg.value));
        return;
      case "helloReply": {
        if (this.state !== "handshake") throw localError("BAD_FRAME", "unexpected HelloReply");
        clearTimeout(this.handshakeTimer);
        this.hello = m.msg.value;
        this.limits = m.msg.value.limits;
        this.state = "ready";
        this.owner.onReady(this);
        return;
      }
      case "error": {
        const ce = m.msg.value;
        const name = codeName(ce.code);
        this.neverExecuted = name === "SHUTTING_DOWN";
        this.fail(new SlotgateError(name, ce.message || name));
        return;
      }
    }
  }

  /**
   * Close the connection and hand every call back to the owner. Idempotent;
   * the first reason wins.
   */
  fail(err: SlotgateError): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.closeErr = err;
    clearTimeout(this.handshakeTimer);
    clearTimeout(this.graceTimer);
    this.socket.destroy();
    const unsent: Call[] = [];
    const sent = new Set<Call>();
    for (const c of this.out) unsent.push(c);
    for (const c of unsent) sent.add(c);
    const unanswered: Call[] = [];
    for (const c of this.inflight.values()) if (!sent.has(c)) unanswered.push(c);
    this.out = [];
    this.inflight.clear();
    this.owner.onClose(this, err, unsent, unanswered, this.neverExecuted);
  }

  /** Close gracefully (after the pool has drained it). */
  end(): void {
    if (this.state === "closed") return;
    this.state = "closed";
    clearTimeout(this.handshakeTimer);
    this.socket.end();
    this.socket.destroySoon?.();
    this.owner.onClose(this, this.closeErr ?? localError("CLIENT_CLOSED", "connection closed by the client"), [], [], false);
  }
}
