// A tiny game server on GameCache: players log in (sessions), join a room and
// move tokens (room state, updated with compare-and-set so two servers never
// overwrite each other's moves), read a leaderboard computed once for the
// whole fleet (getCachedQuery), and the room is forgotten when the game ends.
//
//   node examples/game-server.mjs --memory        in-process fake, no server
//   tests/conformance/run.sh -- node clients/typescript/examples/game-server.mjs
//                                                 a live slotgate (SG_CONF_* env)
// Environment for a live server: SLOTGATE_HOST, SLOTGATE_PORT, SLOTGATE_CA,
// SLOTGATE_TOKEN, SLOTGATE_SERVERNAME (or the SG_CONF_* names of the
// conformance runner).
import fs from "node:fs";
import { GameCache, MemoryGameCache, Slotgate } from "slotgate";

const env = process.env;
const memory = process.argv.includes("--memory");

function connect() {
  if (memory) return new MemoryGameCache();
  const client = new Slotgate({
    host: env.SLOTGATE_HOST ?? env.SG_CONF_HOST ?? "127.0.0.1",
    port: Number(env.SLOTGATE_PORT ?? env.SG_CONF_PORT ?? 7420),
    tls: {
      ca: fs.readFileSync(env.SLOTGATE_CA ?? env.SG_CONF_CA ?? "deploy/local/tls/ca.pem"),
      servername: env.SLOTGATE_SERVERNAME ?? env.SG_CONF_SERVER_NAME ?? "localhost",
    },
    token: env.SLOTGATE_TOKEN ?? env.SG_CONF_TOKEN,
    clientName: "example-game-server",
  });
  client.on("error", (e) => console.error(`slotgate: ${e.code}: ${e.message}`));
  return new GameCache(client);
}

const cache = connect();
const roomId = `demo-${process.pid}`;

// 1. Players log in: a session each, one hour.
const players = ["alice", "bob", "carol"].map((name) => `${name}-${process.pid}`);
for (const userId of players) {
  await cache.setUserSession(userId, { userId, roomId, loggedInAt: Date.now() }, 3600);
}
console.log("sessions:", (await Promise.all(players.map((p) => cache.getUserSession(p)))).map((s) => s.userId).join(", "));

// 2. The room starts empty; every move is a compare-and-set on the room state,
// so concurrent moves (from any server of the fleet) are never lost.
await cache.setRoomState(roomId, { tokens: {}, turn: 0 });
const roomKey = GameCache.roomKey(roomId);
async function move(userId, x, y) {
  for (;;) {
    const cur = await cache.client.getVersioned(roomKey, { keyspace: "room" });
    const state = cur ? JSON.parse(cur.value.toString()) : { tokens: {}, turn: 0 };
    state.tokens[userId] = { x, y };
    state.turn++;
    const r = await cache.client.setVersioned(roomKey, JSON.stringify(state), cur ? cur.version : 0n, { keyspace: "room" });
    if (r.ok) return state.turn;
    // VERSION_CONFLICT: someone moved first; read again and retry.
  }
}
await Promise.all(players.map((p, i) => move(p, i, i * 2)));
const room = await cache.getRoomState(roomId);
console.log(`room ${roomId}: turn ${room.turn}, tokens ${JSON.stringify(room.tokens)}`);

// 3. A leaderboard that is expensive to compute: 20 concurrent requests, one computation.
let computed = 0;
const leaderboard = () =>
  cache.getCachedQuery(
    `leaderboard:${roomId}`,
    async () => {
      computed++;
      await new Promise((r) => setTimeout(r, 20)); // the database query
      return players.map((p, i) => ({ userId: p, score: 100 * (players.length - i) }));
    },
    30,
  );
const boards = await Promise.all(Array.from({ length: 20 }, leaderboard));
console.log(`leaderboard: ${boards[0].map((e) => `${e.userId}=${e.score}`).join(" ")} (computed ${computed} time for 20 requests)`);

// 4. Health and hit rates.
const health = await cache.healthCheck();
const stats = await cache.getStats();
console.log(`health: ${health.status} (${health.latencyMs.toFixed(2)} ms); session hit rate ${stats.keyspaces.session.hitRate.toFixed(2)}`);

// 5. Game over: forget the room and log everyone out.
const removed = (await cache.invalidateRoomData(roomId)) + (await Promise.all(players.map((p) => cache.invalidateUserData(p)))).reduce((a, b) => a + b, 0);
console.log(`game over: ${removed} keys removed; alice's session now ${JSON.stringify(await cache.getUserSession(players[0]))}`);

await cache.close();
if (computed !== 1) {
  console.error("the leaderboard was computed more than once");
  process.exit(1);
}
