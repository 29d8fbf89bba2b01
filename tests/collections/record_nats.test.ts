import { after, before, describe } from "node:test";
import { type NatsServer, startNatsServer } from "../_helpers/nats_server.ts";
import { natsTransports } from "../_helpers/cluster.ts";
import { recordLifecycleSuite, recordSuite } from "./record_suite.ts";

describe("record on a real nats-server", () => {
  let server: NatsServer;
  before(async () => {
    server = await startNatsServer();
  });
  after(async () => {
    await server?.stop();
  });

  recordSuite(() => Promise.resolve(natsTransports(server.url)));
  recordLifecycleSuite(() => Promise.resolve(natsTransports(server.url)));
});
