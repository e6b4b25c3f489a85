// Typed errors. Every failure a caller sees is a SlotgateError whose `code` is
// the protocol's Code name without the CODE_ prefix ("NOT_FOUND",
// "SHARD_UNAVAILABLE", ...), or one of the few client-side codes listed in
// ClientCode for failures that never reached the server as a Response.
import { Code } from "./gen/slotgate_pb.js";

/** Codes the client raises itself (no Response carried them). */
export type ClientCode =
  /** The connection closed with the call written and unanswered: outcome unknown. */
  | "CONNECTION_LOST"
  /** quit()/disconnect() was called, or the client was closed before the call was sent. */
  | "CLIENT_CLOSED"
  /** The caller's AbortSignal fired. */
  | "ABORTED";

/** Protocol code names: the proto enum names without CODE_ ("OK", "NOT_FOUND", ...). */
export type ProtoCodeName = keyof typeof Code;

/** Every code a SlotgateError can carry; a code this client does not know is `UNKNOWN_<n>`. */
export type CodeName = ProtoCodeName | ClientCode | `UNKNOWN_${number}`;

const NAME_BY_NUMBER = new Map<number, string>();
for (const [name, value] of Object.entries(Code)) {
  if (typeof value === "number") NAME_BY_NUMBER.set(value, name);
}

/** Name of a numeric protocol code; unknown numbers become `UNKNOWN_<n>`. */
export function codeName(code: number): CodeName {
  return (NAME_BY_NUMBER.get(code) ?? `UNKNOWN_${code}`) as CodeName;
}

/** Numeric protocol code of a name, or undefined for client-side codes. */
export function codeNumber(name: string): number | undefined {
  const v = (Code as unknown as Record<string, number>)[name];
  return typeof v === "number" ? v : undefined;
}

// Section 9's "Retry?" column: codes after which the same call may succeed if
// sent again (for writes only when the write is idempotent: the outcome of a
// TIMEOUT, SHARD_UNAVAILABLE or CONNECTION_LOST write is unknown).
const RETRIABLE = new Set<string>([
  "LEASE_WAIT",
  "HANDSHAKE_REQUIRED",
  "TOO_MANY_CONNECTIONS",
  "SHUTTING_DOWN",
  "OUTPUT_LIMIT",
  "BATCH_TOO_LARGE",
  "TIMEOUT",
  "SHARD_UNAVAILABLE",
  "CLUSTER_DOWN",
  "INTERNAL",
  "CONNECTION_LOST",
]);

/** True if section 9 says the call may be retried after this code. */
export function isRetriable(code: string): boolean {
  if (RETRIABLE.has(code)) return true;
  // Unknown codes: classify by range (section 11); 300s are backend errors.
  const m = /^UNKNOWN_(\d+)$/.exec(code);
  return m !== null && Number(m[1]) >= 300 && Number(m[1]) < 400;
}

export interface SlotgateErrorDetails {
  /** Set by a local check or a client-side event (no server Response). */
  local?: boolean;
  /** Per-key outcomes when a batch call fails because some keys failed. */
  results?: unknown[];
  /** Server hint for LEASE_WAIT. */
  retryAfterMs?: number;
  /** Current version for VERSION_CONFLICT. */
  version?: bigint;
  /** Keys removed before an INVALIDATE failed. */
  count?: number;
  cause?: unknown;
}

/**
 * The one error class of this package. `code` is the protocol's Code name
 * (without CODE_) or a ClientCode; `retriable` follows section 9 of
 * PROTOCOL.md; `local` is true when the client raised it without a server
 * answer (limit checks, deadlines, lost connections, aborts).
 */
export class SlotgateError extends Error {
  readonly code: CodeName;
  /** Numeric protocol code; undefined for client-side codes. */
  readonly numericCode: number | undefined;
  readonly retriable: boolean;
  readonly local: boolean;
  readonly results?: unknown[];
  readonly retryAfterMs?: number;
  readonly version?: bigint;
  readonly count?: number;

  constructor(code: CodeName | string, message: string, details: SlotgateErrorDetails = {}) {
    super(message, details.cause !== undefined ? { cause: details.cause } : undefined);
    this.name = "SlotgateError";
    this.code = code as CodeName;
    this.numericCode = codeNumber(code);
    this.retriable = isRetriable(code);
    this.local = details.local ?? false;
    if (details.results !== undefined) this.results = details.results;
    if (details.retryAfterMs !== undefined) this.retryAfterMs = details.retryAfterMs;
    if (details.version !== undefined) this.version = details.version;
    if (details.count !== undefined) this.count = details.count;
  }
}

/** A local (client-raised) error. */
export function localError(code: CodeName | string, message: string, cause?: unknown): SlotgateError {
  return new SlotgateError(code, message, { local: true, cause });
}
