// Deno consumer: deno.json's import map points `@hamok/core` at the installed package's mod.ts.
import process from "node:process";
import * as lib from "@hamok/core";
// @ts-ignore: a plain JS helper without types
import { run } from "./scenario.mjs";

await run(lib, { label: "deno", natsUrl: process.env.HAMOK_NATS_URL });
