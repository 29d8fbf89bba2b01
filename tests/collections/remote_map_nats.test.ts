import { after, before, describe } from "node:test";
import { type NatsServer, startNatsServer } from "../_helpers/nats_server.ts";
import { natsTransports } from "../_helpers/cluster.ts";
import { remoteMapFaultSuite, remoteMapSuite } from "./remote_map_suite.ts";

describe("remote map on a real nats-server", () => {
  let server: NatsServer;
  before(async () => {
    server = await startNatsServer();
  });
  after(async () => {
    await server?.stop();
  });

  remoteMapSuite(() => Promise.resolve(natsTransports(server.url)));
  remoteMapFaultSuite(() => Promise.resolve(natsTransports(server.url)));
});
