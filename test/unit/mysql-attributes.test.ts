/**
 * Routing by MySQL connection attributes: route `match.connectionAttributes` (an extension to
 * SPEC.md, src/config/mysql-schema.ts) read by the schema, matched by the route table
 * (src/route/table.ts), and given to the resolver as ctx.connectionAttributes, inside its cache key.
 */
import { describe, expect, test } from "bun:test";
import { ConnFacts } from "../../src/protocol/facts.ts";
import { RouteTable } from "../../src/route/table.ts";
import { cacheKey, resolveContext } from "../../src/route/resolve-context.ts";
import type { RouteConfig } from "../../src/config/types.ts";
import { issues, minimal, valid } from "../helpers/schema.ts";
import { parseClientHandshake } from "../../src/mysql/handshake-response.ts";
import { fixture } from "../helpers/fixtures.ts";

interface Route {
  readonly config: RouteConfig;
}

function route(name: string, attributes?: Record<string, string[]>, database: string[] = []): Route {
  return {
    config: {
      name,
      match: attributes === undefined && database.length === 0 ? null
        : { clientCidr: [], sni: [], alpn: [], database, user: [], ehlo: [], rcptDomain: [], ...(attributes ? { connectionAttributes: attributes } : {}) },
      upstreams: [], balance: "round-robin", respond: null, rateLimit: null,
      terminateTls: true, cert: null, mtls: null, upstreamTls: null, xclient: false,
    },
  };
}

function facts(attributes: Record<string, string> | null, database: string | null = null): ConnFacts {
  return Object.assign(new ConnFacts(), { database, connectionAttributes: attributes === null ? null : new Map(Object.entries(attributes)) });
}

const pick = (t: RouteTable<Route>, f: ConnFacts) => t.match("127.0.0.1", f)?.config.name ?? null;

describe("route table: match.connectionAttributes", () => {
  const table = new RouteTable([
    route("cli", { program_name: ["mysql", "mariadb"] }),
    route("py-beta", { _client_name: ["PyMySQL"] }, ["beta"]),
    route("both", { _client_name: ["libmariadb"], _os: ["Linux"] }),
    route("default"),
  ]);

  test("a listed value of the attribute matches; another value, or the attribute missing, does not", () => {
    expect(pick(table, facts({ program_name: "mysql" }))).toBe("cli");
    expect(pick(table, facts({ program_name: "mariadb", _client_name: "libmariadb" }))).toBe("cli");
    expect(pick(table, facts({ program_name: "MySQL" }))).toBe("default"); // exact, case included
    expect(pick(table, facts({ _pid: "1" }))).toBe("default");
  });

  test("with other match keys: all must hold (AND)", () => {
    expect(pick(table, facts({ _client_name: "PyMySQL" }, "beta"))).toBe("py-beta");
    expect(pick(table, facts({ _client_name: "PyMySQL" }, "alpha"))).toBe("default");
  });

  test("several attributes: every one must hold", () => {
    expect(pick(table, facts({ _client_name: "libmariadb", _os: "Linux" }))).toBe("both");
    expect(pick(table, facts({ _client_name: "libmariadb", _os: "Windows" }))).toBe("default");
  });

  test("a client that sent no attributes never matches a route that names some", () => {
    expect(pick(table, facts(null))).toBe("default");
    expect(pick(new RouteTable([route("cli", { program_name: ["mysql"] })]), facts(null))).toBeNull();
  });

  test("the attributes of a captured mariadb CLI response (program_name mysql) route it", () => {
    const bytes = fixture("mysql-native-client");
    const parsed = parseClientHandshake(bytes.subarray(4, 4 + (bytes[0]! | (bytes[1]! << 8) | (bytes[2]! << 16))));
    if (parsed.kind !== "response41") throw new Error(parsed.kind);
    expect(parsed.response.attributes?.get("program_name")).toBe("mysql");
    expect(pick(table, Object.assign(new ConnFacts(), { connectionAttributes: parsed.response.attributes }))).toBe("cli");
  });
});

describe("resolver: ctx.connectionAttributes and the cache key", () => {
  const where = { listener: "db", port: 3306, clientIp: "10.0.0.1", clientPort: 5555, data: null };

  test("the context carries the attributes as a plain object, or null", () => {
    expect(resolveContext(where, facts({ program_name: "mysql", _pid: "7" })).connectionAttributes).toEqual({ program_name: "mysql", _pid: "7" });
    expect(resolveContext(where, facts(null)).connectionAttributes).toBeNull();
  });

  test("different attributes give different keys; none and an empty set differ; the same give the same", () => {
    const key = (a: Record<string, string> | null) => cacheKey(resolveContext(where, facts(a)));
    expect(key({ program_name: "a" })).not.toBe(key({ program_name: "b" }));
    expect(key({ program_name: "a" })).not.toBe(key({ program_nam: "ea" }));
    expect(key(null)).not.toBe(key({}));
    expect(key({ program_name: "a" })).toBe(key({ program_name: "a" }));
  });
});

describe("schema: match.connectionAttributes", () => {
  test("a value or a list of values per attribute", () => {
    const c = valid(minimal({ protocol: "mysql" }, { match: { connectionAttributes: { program_name: "mysql", _client_name: ["PyMySQL", "libmariadb"] } } }));
    expect(c.listeners[0]!.routes[0]!.match?.connectionAttributes).toEqual({ program_name: ["mysql"], _client_name: ["PyMySQL", "libmariadb"] });
  });

  test.each([
    ["on another protocol", minimal({ protocol: "postgres" }, { match: { connectionAttributes: { a: "b" } } }), 'listeners[0].routes[0].match.connectionAttributes: match.connectionAttributes needs protocol "mysql" (this listener is "postgres")'],
    ["not an object", minimal({ protocol: "mysql" }, { match: { connectionAttributes: ["program_name"] } }), 'listeners[0].routes[0].match.connectionAttributes: connectionAttributes is an object of attribute name → value or list of values, e.g. { "program_name": "mysql" }'],
    ["empty", minimal({ protocol: "mysql" }, { match: { connectionAttributes: {} } }), "listeners[0].routes[0].match.connectionAttributes: connectionAttributes is empty: leave it out to match any client"],
    ["an empty list", minimal({ protocol: "mysql" }, { match: { connectionAttributes: { a: [] } } }), "listeners[0].routes[0].match.connectionAttributes.a: an empty list would match no client"],
    ["a value that is not a string", minimal({ protocol: "mysql" }, { match: { connectionAttributes: { a: 1 } } }), "listeners[0].routes[0].match.connectionAttributes.a: an attribute's accepted value is a string or a list of strings, got 1"],
    ["a list entry that is not a string", minimal({ protocol: "mysql" }, { match: { connectionAttributes: { a: ["x", 2] } } }), "listeners[0].routes[0].match.connectionAttributes.a[1]: a entries are strings, got 2"],
  ] as const)("refused: %s", (_, config, expected) => {
    expect(issues(config)).toEqual([expected]);
  });
});
