// Bun consumer: the `bun` condition resolves the TypeScript sources.
import process from "node:process";
import * as lib from "@hamok/core";
// @ts-ignore: a plain JS helper without types
import { run } from "./scenario.mjs";

await run(lib, { label: "bun", natsUrl: process.env.HAMOK_NATS_URL });
