// Conformance suite against a live slotgate: run through
//   tests/conformance/run.sh -- node --test clients/typescript/test/conformance/proxy.test.mjs
// (clients/typescript/test.sh does). Skipped when SG_CONF_HOST is not set.
import fs from "node:fs";
import { Slotgate } from "../../dist/index.js";
import { registerScenarios } from "./lib.mjs";

const env = process.env;

function create(options) {
  const c = new Slotgate({
    host: env.SG_CONF_HOST,
    port: Number(env.SG_CONF_PORT),
    tls: {
      ca: fs.readFileSync(env.SG_CONF_CA),
      cert: env.SG_CONF_CERT ? fs.readFileSync(env.SG_CONF_CERT) : undefined,
      key: env.SG_CONF_KEY ? fs.readFileSync(env.SG_CONF_KEY) : undefined,
      servername: env.SG_CONF_SERVER_NAME,
    },
    token: options.token ?? env.SG_CONF_TOKEN,
    poolSize: options.pool_size ?? 2,
    clientName: "conformance-ts",
  });
  return c;
}

if (!env.SG_CONF_HOST) {
  const { test } = await import("node:test");
  test("conformance against a live slotgate", { skip: "SG_CONF_HOST not set (run through tests/conformance/run.sh)" }, () => {});
} else {
  registerScenarios({ create, eligible: () => true });
}
