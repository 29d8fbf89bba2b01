import { after, before, describe } from "node:test";
import { type NatsServer, startNatsServer } from "../_helpers/nats_server.ts";
import { natsTransports } from "../_helpers/cluster.ts";
import { mapFaultSuite, mapSuite } from "./map_suite.ts";

describe("map on a real nats-server", () => {
  let server: NatsServer;
  before(async () => {
    server = await startNatsServer();
  });
  after(async () => {
    await server?.stop();
  });

  mapSuite(() => Promise.resolve(natsTransports(server.url)));
  mapFaultSuite(() => Promise.resolve(natsTransports(server.url)));
});
