import { describe, expect, test } from "bun:test";
import { RouteTable } from "../../src/route/table.ts";
import { ConnFacts } from "../../src/protocol/facts.ts";
import { normaliseName } from "../../src/config/tls-schema.ts";
import type { RouteConfig, RouteMatch } from "../../src/config/types.ts";

interface Route { readonly config: RouteConfig }

function route(name: string, match: Partial<RouteMatch> | null): Route {
  return {
    config: {
      name, upstreams: [], balance: "round-robin", respond: null, rateLimit: null, terminateTls: false, cert: null, mtls: null, upstreamTls: null, xclient: false,
      match: match === null ? null : { clientCidr: [], alpn: [], database: [], user: [], ehlo: [], rcptDomain: [], ...match, sni: (match.sni ?? []).map(normaliseName) },
    },
  };
}

function pick(table: RouteTable<Route>, given: Partial<Pick<ConnFacts, "sni" | "alpn" | "database" | "user">>): string | null {
  return table.match("127.0.0.1", Object.assign(new ConnFacts(), given))?.config.name ?? null;
}

describe("sni", () => {
  const table = new RouteTable([
    route("wild", { sni: ["*.example.com"] }),
    route("exact", { sni: ["API.example.com."] }),
    route("any", { sni: [""] }),
  ]);

  test("exact beats wildcard whatever the order written", () => {
    expect(pick(table, { sni: "api.example.com" })).toBe("exact");
  });
  test("a wildcard covers one label only", () => {
    expect(pick(table, { sni: "www.example.com" })).toBe("wild");
    expect(pick(table, { sni: "a.b.example.com" })).toBe("any");
    expect(pick(table, { sni: "example.com" })).toBe("any");
  });
  test('"" is the default for any name and for no name', () => {
    expect(pick(table, { sni: "other.test" })).toBe("any");
    expect(pick(table, { sni: null })).toBe("any");
  });
  test("without a default, an unknown name has no route", () => {
    const t = new RouteTable([route("exact", { sni: ["a.test"] })]);
    expect(pick(t, { sni: "b.test" })).toBeNull();
    expect(pick(t, { sni: null })).toBeNull();
  });
  test("config names are normalised: upper case and a trailing dot", () => {
    expect(normaliseName("API.Example.COM.")).toBe("api.example.com");
  });
  test("a route without match is the fallback after every tier", () => {
    const t = new RouteTable([route("default", null), route("exact", { sni: ["a.test"] })]);
    expect(pick(t, { sni: "a.test" })).toBe("exact");
    expect(pick(t, { sni: "b.test" })).toBe("default");
  });
});

describe("alpn, database, user: AND with sni", () => {
  test("alpn narrows an sni route; the next tier takes the rest", () => {
    const t = new RouteTable([
      route("pg", { sni: ["db.test"], alpn: ["postgresql"] }),
      route("web", { sni: ["db.test"] }),
    ]);
    expect(pick(t, { sni: "db.test", alpn: ["postgresql"] })).toBe("pg");
    expect(pick(t, { sni: "db.test", alpn: ["h2", "http/1.1"] })).toBe("web");
    expect(pick(t, { sni: "db.test" })).toBe("web");
  });
  test("database and user", () => {
    const t = new RouteTable([
      route("orders-admin", { database: ["orders"], user: ["admin"] }),
      route("orders", { database: ["orders"] }),
      route("rest", null),
    ]);
    expect(pick(t, { database: "orders", user: "admin" })).toBe("orders-admin");
    expect(pick(t, { database: "orders", user: "bob" })).toBe("orders");
    expect(pick(t, { database: "Orders", user: "bob" })).toBe("rest");
    expect(pick(t, {})).toBe("rest");
  });
});
