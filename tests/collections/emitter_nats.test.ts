import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { type NatsServer, startNatsServer } from "../_helpers/nats_server.ts";
import { natsTransports, startCluster } from "../_helpers/cluster.ts";
import { emitterFaultSuite, emitterSuite } from "./emitter_suite.ts";

describe("emitter on a real nats-server", () => {
  let server: NatsServer;
  before(async () => {
    server = await startNatsServer();
  });
  after(async () => {
    await server?.stop();
  });

  emitterSuite(() => Promise.resolve(natsTransports(server.url)));
  emitterFaultSuite(() => Promise.resolve(natsTransports(server.url)));

  it("two clusters on one NATS server stay apart", async () => {
    const one = await startCluster(natsTransports(server.url), ["a", "b"], { clusterId: "one" });
    const two = await startCluster(natsTransports(server.url), ["a", "b"], { clusterId: "two" });
    try {
      for (const p of [...one.peers, ...two.peers]) assert.equal(p.remotePeerIds.size, 1);
      const e1a = one.peers[0].createEmitter<{ x: [string] }>({ emitterId: "shared" });
      const e1b = one.peers[1].createEmitter<{ x: [string] }>({ emitterId: "shared" });
      const e2b = two.peers[1].createEmitter<{ x: [string] }>({ emitterId: "shared" });
      const got1: string[] = [];
      const got2: string[] = [];
      await e1b.subscribe("x", (s) => got1.push(s));
      await e2b.subscribe("x", (s) => got2.push(s));
      await one.peers[0].waitUntilCommitHead();
      assert.deepEqual(await e1a.publish("x", "to one"), ["b"]);
      assert.deepEqual(got1, ["to one"]);
      assert.deepEqual(got2, []);
      assert.deepEqual(e1a.subscriptions.getPeerIds("x"), ["b"]);
    } finally {
      await one.close();
      await two.close();
    }
  });
});
