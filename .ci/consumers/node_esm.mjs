// Node ESM consumer: `import` resolves the package's `default` condition (dist/).
import process from "node:process";
import * as lib from "@hamok/core";
import { run } from "./scenario.mjs";

await run(lib, { label: "node-esm", natsUrl: process.env.HAMOK_NATS_URL });
