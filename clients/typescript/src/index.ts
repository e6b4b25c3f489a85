// Public surface of the slotgate package.
export {
  Slotgate,
  checkLimits,
  toBytes,
  type Bytes,
  type CallOptions,
  type ClientStatus,
  type KeyResult,
  type LeaseResult,
  type MsetItem,
  type SetOptions,
  type SetVersionedResult,
  type SlotgateOptions,
  type TlsOptions,
  type Versioned,
} from "./client.js";
export { SlotgateError, codeName, isRetriable, type ClientCode, type CodeName, type ProtoCodeName } from "./errors.js";
export { FrameDecoder, decodeServerMessage, encodeClientMessage, encodeRequestBody, frame, DEFAULT_MAX_INCOMING_FRAME_BYTES } from "./codec.js";
export * as proto from "./gen/slotgate_pb.js";
export {
  GameCache,
  MemoryGameCache,
  type GameCacheKeyspaces,
  type GameCacheOptions,
  type GameCacheStats,
  type HealthStatus,
  type KeyspaceStats,
  type MsetEntry,
  type SlotgateApi,
} from "./gamecache.js";
export { MemorySlotgate, DEFAULT_KEYSPACES, type MemoryKeyspace, type MemorySlotgateOptions } from "./memory.js";
export { globMatch, globEscape } from "./glob.js";
export { readResponse, writeRequestFrame, requestSize, frameSize, newReq, replyFromMessage, type Reply, type Req, type KeyResultMsg } from "./wire.js";
