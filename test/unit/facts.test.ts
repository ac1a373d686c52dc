import { describe, expect, test } from "bun:test";
import { ConnFacts, logFields, MATCHED_FACTS, NO_FACTS, RESOLVER_FACTS } from "../../src/protocol/facts.ts";
import { cacheKey, resolveContext } from "../../src/route/resolve-context.ts";

const where = { listener: "edge", port: 443, clientIp: "10.0.0.1", clientPort: 5555, data: null };

describe("one shape", () => {
  test("every field is initialised (none undefined), so every instance has the same keys in the same order", () => {
    const f = new ConnFacts();
    expect(Object.values(f).every((v) => v !== undefined)).toBe(true);
    expect(Object.keys(f)).toEqual(Object.keys(NO_FACTS));
    for (const name of [...RESOLVER_FACTS, ...MATCHED_FACTS]) expect(Object.keys(f)).toContain(name);
  });

  test("the facts the coming protocols learn are there, null until filled", () => {
    const f = new ConnFacts();
    for (const name of ["host", "path", "method", "ehlo", "mailFrom", "rcptDomain"] as const) expect(f[name]).toBeNull();
  });
});

describe("resolver context and cache key, derived from the facts", () => {
  test("the context carries every resolver fact, alpn as the first offered", () => {
    const f = Object.assign(new ConnFacts(), { sni: "a.example", alpn: ["h2", "http/1.1"], database: "app" });
    const ctx = resolveContext(where, f);
    expect(ctx).toMatchObject({ listener: "edge", port: 443, client: { ip: "10.0.0.1", port: 5555 }, sni: "a.example", alpn: "h2", database: "app", host: null, ehlo: null });
    for (const name of RESOLVER_FACTS) expect(name in ctx).toBe(true);
  });

  test("a different value of any fact the resolver sees gives a different key (no answer serves another tenant)", () => {
    const base = cacheKey(resolveContext(where, NO_FACTS));
    for (const name of RESOLVER_FACTS) {
      const f = new ConnFacts();
      if (name === "alpn") f.alpn = ["h2"];
      else f[name] = "x";
      expect(cacheKey(resolveContext(where, f))).not.toBe(base);
    }
  });

  test("a value moved from one fact to another changes the key (fields are separated)", () => {
    const a = Object.assign(new ConnFacts(), { database: "x", user: null });
    const b = Object.assign(new ConnFacts(), { database: null, user: "x" });
    expect(cacheKey(resolveContext(where, a))).not.toBe(cacheKey(resolveContext(where, b)));
  });

  test("the same facts give the same key", () => {
    const f = () => Object.assign(new ConnFacts(), { sni: "a.example", user: "u" });
    expect(cacheKey(resolveContext(where, f()))).toBe(cacheKey(resolveContext(where, f())));
  });
});

describe("access-log fields, derived from the facts", () => {
  test("tcp: the TLS fields, null; nothing else", () => {
    expect(logFields(NO_FACTS)).toEqual({ sni: null, alpn: null, alpnOffered: [], ja3: null, ja4: null, tls: "none" });
  });

  test("learned facts appear, unlearned ones do not; alpn is the negotiated one", () => {
    const f = Object.assign(new ConnFacts(), { sni: "db.example", alpn: ["postgresql"], alpnNegotiated: "postgresql", tls: "terminate", database: "app", user: "alice" });
    expect(logFields(f)).toEqual({ sni: "db.example", alpn: "postgresql", alpnOffered: ["postgresql"], ja3: null, ja4: null, tls: "terminate", database: "app", user: "alice" });
  });
});
