// Compiled (not run) by test.sh: the published type declarations let a
// TypeScript user write the README's code with strict checking.
import {
  GameCache,
  MemoryGameCache,
  Slotgate,
  SlotgateError,
  type CodeName,
  type GameCacheStats,
  type LeaseResult,
  type SlotgateApi,
} from "slotgate";

interface Session {
  userId: string;
  roles: string[];
}

export async function usage(ca: Buffer): Promise<void> {
  const client = new Slotgate({ host: "127.0.0.1", port: 7420, tls: { ca, servername: "localhost" }, token: "t", poolSize: 2 });
  client.on("ready", () => {});
  const v: string | null = await client.get("k", { keyspace: "session", deadlineMs: 100, signal: AbortSignal.timeout(1000) });
  const b: Buffer | null = await client.getBuffer(Buffer.from([0, 255]));
  const ok: "OK" | null = await client.set("k", new Uint8Array([1]), { ttlMs: 1000, nx: true });
  const l: LeaseResult<Buffer> = await client.getOrLease("k");
  if (l.status === "lease") await client.setWithLease("k", "v", l.lease);
  const ver = await client.getVersioned("k");
  if (ver !== null) {
    const r = await client.setVersioned("k", "v2", ver.version);
    const n: bigint = r.version;
    void n;
  }
  const many: Array<string | null> = await client.mget(["a", "b"]);
  await client.mset([{ key: "a", value: "1", ttlMs: 5 }], { xx: true });
  try {
    await client.del("x");
  } catch (e) {
    if (e instanceof SlotgateError) {
      const c: CodeName = e.code;
      const r: boolean = e.retriable;
      void c;
      void r;
    }
  }
  const api: SlotgateApi = client;
  const cache = new GameCache(api);
  await cache.setUserSession<Session>("u1", { userId: "u1", roles: [] }, 3600);
  const s: Session | null = await cache.getUserSession<Session>("u1");
  const q: number[] = await cache.getCachedQuery("top", async () => [1, 2, 3], 60);
  const st: GameCacheStats = await cache.getStats();
  const mem = new MemoryGameCache();
  await mem.setRoomState("r", { a: 1 });
  await client.quit();
  void [v, b, ok, many, s, q, st];
}
