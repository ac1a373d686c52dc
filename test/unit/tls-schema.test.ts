import { describe, expect, test } from "bun:test";
import { issues, minimal, valid, type Json } from "../helpers/schema.ts";


const tls = (listener: Json = {}, route: Json = {}) => minimal({ protocol: "tls", ...listener }, route);

describe("TLS keys", () => {
  test("a tls listener with certificates, mTLS, protection and routes of every kind", () => {
    const c = valid(tls({
      defaultCert: { cert: "/c.pem", key: "/c.key" }, certDir: "/certs", mtls: { ca: "/ca.pem" },
      protection: { ja3Blocklist: ["5a1edc7f170af1014fc65c994878e63c"], ja4Blocklist: ["t13d1516h2_8daaf6152771_e5627efa2ab1"], requireSni: true },
    }, { match: { sni: ["*.Example.com", "a.test."], alpn: "h2" }, terminateTls: true, upstreamTls: { serverName: "in.test" } }));
    const l = c.listeners[0]!;
    expect(l.defaultCert).toEqual({ cert: "/c.pem", key: "/c.key" });
    expect(l.mtls).toEqual({ ca: "/ca.pem", requireClientCert: true });
    expect(l.tlsProtection.requireSni).toBe(true);
    const r = l.routes[0]!;
    expect(r.match?.sni).toEqual(["*.example.com", "a.test"]);
    expect(r.match?.alpn).toEqual(["h2"]);
    expect(r.terminateTls).toBe(true);
    expect(r.upstreamTls).toEqual({ serverName: "in.test", ca: null, verify: true });
  });

  test.each<[string, Json, string]>([
    ["a wildcard in the middle", tls({}, { match: { sni: "a.*.test" } }), 'listeners[0].routes[0].match.sni: only a leading "*." wildcard is supported: "a.*.test"'],
    ["a malformed JA3", tls({ protection: { ja3Blocklist: ["xyz"] } }), "listeners[0].protection.ja3Blocklist[0]: a JA3 fingerprint is 32 lower-case hex digits (the MD5)"],
    ["terminateTls on tcp", minimal({}, { terminateTls: true }), 'listeners[0].routes[0].terminateTls: terminateTls needs protocol "tls" or "postgres" (this listener is "tcp")'],
    ["cert without terminating", tls({}, { cert: { cert: "a", key: "b" } }), 'listeners[0].routes[0].cert: cert applies to a route that terminates TLS (set "terminateTls": true)'],
    ["defaultCert on tcp", minimal({ defaultCert: { cert: "a", key: "b" } }), 'listeners[0].defaultCert: defaultCert needs protocol "tls", "postgres", "smtp" or "mysql" (this listener is "tcp")'],
    ["a terminating route with no certificate anywhere", tls({}, { terminateTls: true }), "listeners[0].routes[0]: this route terminates TLS but has no cert, and the listener has neither defaultCert nor certDir"],
    ["respond on a tls listener", minimal({ protocol: "tls" }, { upstreams: undefined, respond: { body: "x" } }), 'listeners[0].routes[0].respond: respond answers plain HTTP, which a "tls" listener\'s clients do not speak'],
    ["a route cert on a postgres listener", minimal({ protocol: "postgres", defaultCert: { cert: "a", key: "b" } }, { cert: { cert: "c", key: "d" } }), "listeners[0].routes[0].cert: a postgres listener ends TLS before the route is known (the database is inside TLS): set defaultCert or certDir on the listener"],
    ["a certificate without key", tls({ defaultCert: { cert: "a" } }), "listeners[0].defaultCert: a certificate needs both cert and key (file paths)"],
  ])("%s", (_, value, expected) => {
    expect(issues(value)).toEqual([expected]);
  });

  test("a mysql route may ask for TLS to its server (upstreamTls, verify on by default); a postgres route may not", () => {
    const mysql = minimal({ protocol: "mysql" }, { match: { database: "alpha" }, upstreamTls: { serverName: "db.internal", ca: "/ca.pem" } });
    expect(valid(mysql).listeners[0]!.routes[0]!.upstreamTls).toEqual({ serverName: "db.internal", ca: "/ca.pem", verify: true });
    expect(valid(minimal({ protocol: "mysql" }, { upstreamTls: {} })).listeners[0]!.routes[0]!.upstreamTls).toEqual({ serverName: null, ca: null, verify: true });
    expect(issues(minimal({ protocol: "mysql" }, { upstreamTls: { verify: "no" } }))).toHaveLength(1);
    expect(issues(minimal({ protocol: "postgres" }, { upstreamTls: {} }))).toEqual([
      "listeners[0].routes[0].upstreamTls: a postgres listener ends TLS before the route is known (the database is inside TLS): set nothing: TLS to PostgreSQL servers is not built",
    ]);
  });

  test("postgres routes terminate by default", () => {
    expect(valid(minimal({ protocol: "postgres" }, { match: { database: "orders" } })).listeners[0]!.routes[0]!.terminateTls).toBe(true);
  });
});
