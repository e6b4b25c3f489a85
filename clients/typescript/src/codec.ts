// Frame codec: 4-byte big-endian length + one protobuf message (PROTOCOL.md
// section 2). Pure functions and a push-style decoder with no I/O, so the
// golden vectors and the unit tests exercise exactly what the connection uses.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { MessageInitShape } from "@bufbuild/protobuf";
import {
  ClientMessageSchema,
  RequestSchema,
  ServerMessageSchema,
  type ClientMessage,
  type ServerMessage,
} from "./gen/slotgate_pb.js";
import { localError } from "./errors.js";

/** Default cap on incoming (server) frames, as the reference C client. */
export const DEFAULT_MAX_INCOMING_FRAME_BYTES = 64 * 1024 * 1024;

export type RequestInit = MessageInitShape<typeof RequestSchema>;

/** Serialise a ClientMessage body (no length prefix). */
export function encodeClientMessage(msg: ClientMessage): Uint8Array {
  return toBinary(ClientMessageSchema, msg);
}

/** Body of a ClientMessage carrying one Request. */
export function encodeRequestBody(req: RequestInit): Uint8Array {
  return toBinary(ClientMessageSchema, create(ClientMessageSchema, { msg: { case: "request", value: req } }));
}

/** Prefix a body with its 4-byte big-endian length. */
export function frame(body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  out.set(body, 4);
  return out;
}

/**
 * Decode one server frame body. Throws a local BAD_FRAME SlotgateError if the
 * bytes do not decode or no oneof member is set (section 2); unknown fields
 * are skipped by the runtime (section 11).
 */
export function decodeServerMessage(body: Uint8Array): ServerMessage {
  let msg: ServerMessage;
  try {
    msg = fromBinary(ServerMessageSchema, body);
  } catch (e) {
    throw localError("BAD_FRAME", `server frame does not decode: ${(e as Error).message}`, e);
  }
  if (msg.msg.case === undefined) throw localError("BAD_FRAME", "server frame has no message set");
  return msg;
}

/**
 * Splits a byte stream into frame bodies. push() calls onFrame for every
 * complete frame, in order, with a view that stays valid (it never aliases a
 * buffer the decoder reuses). A length header above `maxFrameBytes` throws a
 * local FRAME_TOO_LARGE before any of the body is buffered.
 */
export class FrameDecoder {
  // An incomplete frame is kept as a list of chunks and joined once the
  // frame is complete (no quadratic re-copying of a large frame).
  private chunks: Buffer[] = [];
  private held = 0;
  private need = 4;

  constructor(private readonly maxFrameBytes: number = DEFAULT_MAX_INCOMING_FRAME_BYTES) {}

  /** Bytes held for an incomplete frame. */
  get buffered(): number {
    return this.held;
  }

  push(chunk: Buffer, onFrame: (body: Buffer) => void): void {
    let buf = chunk;
    if (this.held > 0) {
      this.chunks.push(chunk);
      this.held += chunk.length;
      if (this.held < this.need) return;
      buf = Buffer.concat(this.chunks, this.held);
      this.chunks = [];
      this.held = 0;
    }
    let off = 0;
    const end = buf.length;
    this.need = 4;
    while (end - off >= 4) {
      const len = buf.readUInt32BE(off);
      if (len > this.maxFrameBytes) {
        throw localError("FRAME_TOO_LARGE", `server frame of ${len} bytes exceeds the client cap of ${this.maxFrameBytes}`);
      }
      if (end - off - 4 < len) {
        this.need = 4 + len;
        break;
      }
      const body = buf.subarray(off + 4, off + 4 + len);
      off += 4 + len;
      onFrame(body);
    }
    if (off < end) {
      const rest = off === 0 ? buf : buf.subarray(off);
      this.chunks.push(rest);
      this.held = rest.length;
    }
  }
}
