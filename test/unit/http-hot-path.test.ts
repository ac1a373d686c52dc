/**
 * copyRange (the hot path's copy without a view for short ranges) and RequestHead.hostIs/pathIs (the
 * session reuses the previous request's strings when they say the bytes are the same), and the pool of
 * request heads idle connections give back.
 */
import { describe, expect, test } from "bun:test";
import { copyRange } from "../../src/http/copy-range.ts";
import { RequestHead } from "../../src/http/head.ts";
import { parseRequestHead } from "../../src/http/parse-head.ts";
import { LIMITS, enc } from "../helpers/http.ts";
import { freeRequestHeads, giveRequestHead, takeRequestHead } from "../../src/http/head-pool.ts";

describe("copyRange", () => {
  test("copies exactly src[s..e) to out at `at`, short (loop) and long (set) alike", () => {
    for (const n of [0, 1, 511, 512, 513, 5000]) {
      const src = Uint8Array.from({ length: n + 20 }, (_, i) => (i * 7 + 3) & 0xff);
      const out = new Uint8Array(n + 40).fill(0xee);
      expect(copyRange(out, 9, src, 10, 10 + n)).toBe(9 + n);
      expect([...out.subarray(9, 9 + n)]).toEqual([...src.subarray(10, 10 + n)]);
      expect(out.subarray(0, 9).every((b) => b === 0xee)).toBe(true);
      expect(out.subarray(9 + n).every((b) => b === 0xee)).toBe(true);
    }
  });
  test("the whole source", () => {
    const src = new Uint8Array(2000).fill(5);
    const out = new Uint8Array(2000);
    expect(copyRange(out, 0, src, 0, 2000)).toBe(2000);
    expect(out.every((b) => b === 5)).toBe(true);
  });
});

function parse(text: string): RequestHead {
  const r = parseRequestHead(enc(text), 0, new RequestHead(LIMITS));
  if (r.kind !== "head") throw new Error(r.kind);
  return r;
}

describe("RequestHead.hostIs / pathIs", () => {
  test("true exactly when host() / path() would return the string", () => {
    const head = parse("GET /a?b=1 HTTP/1.1\r\nHost: Shop.Example:8080\r\n\r\n");
    expect(head.hostIs("Shop.Example:8080")).toBe(true);
    expect(head.hostIs("shop.example:8080")).toBe(false); // as received, case and all
    expect(head.hostIs("Shop.Example:808")).toBe(false);
    expect(head.hostIs("")).toBe(false);
    expect(head.pathIs("/a?b=1")).toBe(true);
    expect(head.pathIs("/a")).toBe(false);
    expect(head.pathIs("")).toBe(false);
  });
  test("absolute form: the authority is the host; the path is never taken as the same", () => {
    const head = parse("GET http://a.example:80/x HTTP/1.1\r\nHost: a.example:80\r\n\r\n");
    expect(head.hostIs("a.example:80")).toBe(true); // the target's authority
    expect(head.hostIs("a.example")).toBe(false);
    expect(head.path()).toBe("/x");
    expect(head.pathIs("/x")).toBe(false);
  });
  test("HTTP/1.0 without Host: the empty string", () => {
    const head = parse("GET / HTTP/1.0\r\n\r\n");
    expect(head.hostIs("")).toBe(true);
    expect(head.hostIs("a")).toBe(false);
  });
});

describe("head-pool (request heads shared by idle connections)", () => {
  const config = { maxHeaderBytes: 4096, maxHeaders: 10, headerTimeoutMs: 1, keepAliveTimeoutMs: 1, forwarded: "append", trustedProxies: [] } as const;
  test("a head given back is handed out again, without the bytes it last held, sized by its configuration", () => {
    const free = freeRequestHeads(config as never);
    const a = takeRequestHead(config as never, free);
    expect(a.fields.length).toBe(40);
    expect(a.limits.maxHeaderBytes).toBe(4096);
    const r = parseRequestHead(enc("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 0, a);
    expect(r.kind).toBe("head");
    giveRequestHead(free, a);
    expect(a.bytes.length).toBe(0);
    const b = takeRequestHead(config as never, free);
    expect(b).toBe(a);
    expect(takeRequestHead(config as never, free)).not.toBe(a); // the list is empty: a new one
  });
  test("a head resumed by one connection and reused by another parses from scratch", () => {
    const free = freeRequestHeads(config as never);
    const head = takeRequestHead(config as never, free);
    const part = enc("GET /first HTTP/1.1\r\nHost: a");
    const r1 = parseRequestHead(part, 0, head);
    expect(r1.kind).toBe("need-more");
    giveRequestHead(free, head); // (a session gives a head back only when idle; this checks the worst case)
    const other = takeRequestHead(config as never, free);
    const r2 = parseRequestHead(enc("GET /second HTTP/1.1\r\nHost: b\r\n\r\n"), 0, other, r1.kind === "need-more" ? r1.resume : 0);
    expect(r2.kind).toBe("head");
    expect((r2 as RequestHead).path()).toBe("/second");
    expect((r2 as RequestHead).host()).toBe("b");
  });
});
