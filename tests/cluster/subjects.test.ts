import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ClusterSubjects, encodeSubjectToken } from "../../src/cluster/subjects.ts";
import { isValidPublishSubject } from "../../src/transport/subject.ts";

describe("subjects", () => {
  it("passes plain tokens and encodes everything else injectively", () => {
    assert.equal(encodeSubjectToken("chat_room-1"), "chat_room-1");
    const tricky = ["a.b", "a b", "*", ">", "", "~x", "ünï", "a\tb", "chat.room"];
    const encoded = tricky.map(encodeSubjectToken);
    assert.equal(new Set(encoded).size, tricky.length);
    for (const token of encoded) {
      assert.match(token, /^~[A-Za-z0-9_-]*$/);
      assert.ok(isValidPublishSubject(`x.${token === "~" ? "~e" : token}`));
    }
  });

  it("builds inbox, broadcast and event subjects under the prefix", () => {
    const s = new ClusterSubjects(ClusterSubjects.prefixFor("orders"));
    assert.equal(s.broadcast, "hamok.orders.all");
    assert.equal(s.inbox("p1"), "hamok.orders.peer.p1");
    assert.equal(s.event("chat", "a.b"), `hamok.orders.emit.chat.${encodeSubjectToken("a.b")}`);
    assert.ok(isValidPublishSubject(s.event("weird id", "x y.z*")));
    assert.ok(isValidPublishSubject(new ClusterSubjects(ClusterSubjects.prefixFor("a.b c")).broadcast));
  });
});
