import { after, before, describe } from "node:test";
import { type NatsServer, startNatsServer } from "../_helpers/nats_server.ts";
import { natsTransports } from "../_helpers/cluster.ts";
import { queueSuite } from "./queue_suite.ts";

describe("queue on a real nats-server", () => {
  let server: NatsServer;
  before(async () => {
    server = await startNatsServer();
  });
  after(async () => {
    await server?.stop();
  });

  queueSuite(() => Promise.resolve(natsTransports(server.url)));
});
