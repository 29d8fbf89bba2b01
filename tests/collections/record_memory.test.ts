import { describe } from "node:test";
import { memoryTransports } from "../_helpers/cluster.ts";
import { recordLifecycleSuite, recordSuite } from "./record_suite.ts";

describe("record on the memory transport", () => {
  recordSuite(() => Promise.resolve(memoryTransports()));
  recordLifecycleSuite(() => Promise.resolve(memoryTransports()));
});
