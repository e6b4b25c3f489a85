// Conformance scenarios that need no cluster (`requires: []`), run against the
// in-memory fake MemorySlotgate: the fake keeps the server's semantics.
import { MemorySlotgate } from "../../dist/index.js";
import { registerScenarios } from "./lib.mjs";

let base = new MemorySlotgate();
registerScenarios({
  reset: () => {
    base = new MemorySlotgate();
  },
  create: () => base.duplicate(),
  eligible: (s) => (s.requires.length === 0 ? true : `requires ${s.requires.join(", ")}`),
});
