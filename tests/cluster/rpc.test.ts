import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { RequestBody, ResponseBody } from "../../internal.ts";
import { RpcRouter } from "../../src/cluster/rpc.ts";
import { REAL_SCHEDULER, type Scheduler } from "../../src/cluster/scheduler.ts";

describe("RpcRouter", () => {
  it("a late answer to a request of the process before a restart does not answer the new process's request", async () => {
    // the process before the restart and the one after share the peer id "a"; each counts from 1
    const sent: RequestBody[] = [];
    const sender = {
      sendRequest: (_to: string, body: RequestBody) => void sent.push(body),
      sendResponse: (_to: string, _body: ResponseBody) => {},
    };
    let wall = 1_700_000_000_000;
    const scheduler: Scheduler = { ...REAL_SCHEDULER, now: () => wall };
    const before = new RpcRouter(sender, "a", scheduler);
    before.request("b", "join", new Uint8Array(), 60_000).catch(() => {});
    before.close();
    wall += 1500; // the restart, a moment later
    const after = new RpcRouter(sender, "a", scheduler);
    const answer = after.request("b", "leave", new Uint8Array(), 60_000);
    const [old, current] = sent;
    assert.notEqual(old!.requestId, current!.requestId);
    // b answers the old request late: the new process takes it for nobody's
    assert.equal(after.onResponse("b", { requestId: old!.requestId, ok: true }), false);
    assert.equal(after.onResponse("b", { requestId: current!.requestId, ok: true }), true);
    assert.equal(await answer, undefined);
    after.close();
  });

  it("a router made again in the same millisecond (a peer closed and made again) does not take the old one's answers", async () => {
    const sent: RequestBody[] = [];
    const sender = {
      sendRequest: (_to: string, body: RequestBody) => void sent.push(body),
      sendResponse: (_to: string, _body: ResponseBody) => {},
    };
    const scheduler: Scheduler = { ...REAL_SCHEDULER, now: () => 1_700_000_000_000 };
    const before = new RpcRouter(sender, "a", scheduler);
    before.request("b", "join", new Uint8Array(), 60_000).catch(() => {});
    before.close();
    const after = new RpcRouter(sender, "a", scheduler);
    const answer = after.request("b", "leave", new Uint8Array(), 60_000);
    const [old, current] = sent;
    assert.notEqual(old!.requestId, current!.requestId);
    assert.equal(after.onResponse("b", { requestId: old!.requestId, ok: true }), false);
    assert.equal(after.onResponse("b", { requestId: current!.requestId, ok: true }), true);
    assert.equal(await answer, undefined);
    after.close();
  });
});
