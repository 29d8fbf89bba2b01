import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  hasWildcard,
  isValidHeaderKey,
  isValidHeaderValue,
  isValidPublishSubject,
  isValidSubscribeSubject,
  subjectMatches,
} from "../../src/transport/subject.ts";

describe("subject rules", () => {
  it("accepts literal publish subjects and rejects malformed or wildcard ones", () => {
    for (const ok of ["a", "a.b", "hamok.c1.peer.p-1", "a*b.c>", "_INBOX.x"]) {
      assert.equal(isValidPublishSubject(ok), true, ok);
    }
    for (const bad of ["", ".", "a.", ".a", "a..b", "a b", "a\nb", "a\u0000b", "a.*", "*", ">", "a.>"]) {
      assert.equal(isValidPublishSubject(bad), false, JSON.stringify(bad));
    }
  });

  it("accepts wildcards in subscriptions, with > only as the last token", () => {
    for (const ok of ["a", "*", ">", "a.*", "a.>", "*.b.>", "a.*.c"]) {
      assert.equal(isValidSubscribeSubject(ok), true, ok);
    }
    for (const bad of ["", "a..b", "a.>.b", ">.a", "a b", "a."]) {
      assert.equal(isValidSubscribeSubject(bad), false, JSON.stringify(bad));
    }
    assert.equal(hasWildcard("a.*"), true);
    assert.equal(hasWildcard("a.b>"), false);
  });

  it("matches * to exactly one token and > to one or more trailing tokens", () => {
    const m = (pattern: string, subject: string) => subjectMatches(pattern.split("."), subject.split("."));
    assert.equal(m("a.b", "a.b"), true);
    assert.equal(m("a.b", "a.b.c"), false);
    assert.equal(m("a.*", "a.b"), true);
    assert.equal(m("a.*", "a"), false);
    assert.equal(m("a.*", "a.b.c"), false);
    assert.equal(m("a.>", "a"), false);
    assert.equal(m("a.>", "a.b"), true);
    assert.equal(m("a.>", "a.b.c.d"), true);
    assert.equal(m("*.b.>", "x.b.c"), true);
    assert.equal(m("*.b.>", "x.c.c"), false);
    assert.equal(m(">", "anything.at.all"), true);
  });

  it("checks header keys and values like NATS", () => {
    assert.equal(isValidHeaderKey("traceparent"), true);
    assert.equal(isValidHeaderKey("X-Mixed-Case"), true);
    for (const bad of ["", "a b", "a:b", "ä"]) assert.equal(isValidHeaderKey(bad), false, bad);
    assert.equal(isValidHeaderValue("any text: with spaces"), true);
    assert.equal(isValidHeaderValue("a\r\nb"), false);
    assert.equal(isValidHeaderValue("a\nb"), false);
  });
});
