import { describe, expect, test } from "bun:test";
import { NO_FACTS } from "../../src/protocol/facts.ts";
import { RouteTable } from "../../src/route/table.ts";
import { parseCidr, type Cidr } from "../../src/net/ip.ts";
import type { RouteConfig } from "../../src/config/types.ts";

interface Route {
  readonly config: RouteConfig;
}

function cidr(text: string): Cidr {
  const c = parseCidr(text);
  if (!c) throw new Error(`test prefix does not parse: ${text}`);
  return c;
}


/** A route; `clients` undefined makes it a default route (no match). */
function route(name: string, clients?: string[]): Route {
  return {
    config: {
      name,
      match: clients === undefined ? null : { clientCidr: clients.map(cidr), sni: [], alpn: [], database: [], user: [], ehlo: [], rcptDomain: [] },
      upstreams: [],
      balance: "round-robin",
      respond: { status: 200, contentType: "text/plain", body: name },
      rateLimit: null,
      terminateTls: false, cert: null, mtls: null, upstreamTls: null, xclient: false,
    },
  };
}

/** Name of the route chosen for a client address (or null client), or null when none matches. */
function pick(table: RouteTable<Route>, client: string | null): string | null {
  // A null client (e.g. a unix socket) is given as "unix", which no CIDR matches.
  return table.match(client ?? "unix", NO_FACTS)?.config.name ?? null;
}

describe("order", () => {
  test("the first matching route wins, in the order written", () => {
    const table = new RouteTable([route("wide", ["10.0.0.0/8"]), route("narrow", ["10.1.0.0/16"])]);
    expect(pick(table, "10.1.2.3")).toBe("wide");
  });

  test("a later route is tried when earlier ones do not match", () => {
    const table = new RouteTable([route("narrow", ["10.1.0.0/16"]), route("wide", ["10.0.0.0/8"])]);
    expect(pick(table, "10.1.2.3")).toBe("narrow");
    expect(pick(table, "10.2.0.1")).toBe("wide");
  });

  test("the match object is returned as given", () => {
    const r = route("only", ["0.0.0.0/0"]);
    expect(new RouteTable([r]).match("1.2.3.4", NO_FACTS)).toBe(r);
  });
});

describe("default route", () => {
  test.each([
    ["first", ["default", "a", "b"]],
    ["middle", ["a", "default", "b"]],
    ["last", ["a", "b", "default"]],
  ])("written %s, it is used only when nothing else matches", (_, order) => {
    const byName: Record<string, Route> = {
      a: route("a", ["192.0.2.0/24"]),
      b: route("b", ["198.51.100.0/24"]),
      default: route("default"),
    };
    const table = new RouteTable(order.map((n) => byName[n]!));
    expect(pick(table, "192.0.2.9")).toBe("a");
    expect(pick(table, "198.51.100.9")).toBe("b");
    expect(pick(table, "203.0.113.1")).toBe("default");
    expect(pick(table, null)).toBe("default");
  });

  test("a table of only a default route sends everything there", () => {
    const table = new RouteTable([route("default")]);
    expect(pick(table, "1.2.3.4")).toBe("default");
    expect(pick(table, "::1")).toBe("default");
    expect(pick(table, null)).toBe("default");
    expect(table.isEmpty).toBe(false);
  });

  test("no default route: an unmatched client gets null", () => {
    const table = new RouteTable([route("a", ["10.0.0.0/8"])]);
    expect(pick(table, "11.0.0.1")).toBeNull();
    expect(table.isEmpty).toBe(false);
  });

  test("an empty table matches nothing and says so", () => {
    const table = new RouteTable<Route>([]);
    expect(table.isEmpty).toBe(true);
    expect(pick(table, "1.2.3.4")).toBeNull();
  });
});

describe("clientCidr", () => {
  const table = new RouteTable([
    route("v4", ["10.0.0.0/8", "192.168.1.0/24"]),
    route("v6", ["2001:db8::/32"]),
    route("loopback6", ["::1/128"]),
  ]);

  test.each([
    ["10.0.0.1", "v4"],
    ["10.255.255.255", "v4"],
    ["192.168.1.77", "v4"], // any entry of the list matches (OR)
    ["192.168.2.1", null],
    ["11.0.0.0", null],
    ["2001:db8::1", "v6"],
    ["2001:db8:ffff::1", "v6"],
    ["2001:db9::1", null],
    ["::1", "loopback6"],
    ["::2", null],
    // A dual-stack socket reports IPv4 peers as IPv4-mapped IPv6: judged as the IPv4 address.
    ["::ffff:10.1.2.3", "v4"],
    ["::ffff:192.168.1.1", "v4"],
    ["::ffff:11.0.0.1", null],
  ])("client %s → %p", (client, expected) => {
    expect(pick(table, client)).toBe(expected);
  });

  test("a client without a known address matches no clientCidr route", () => {
    expect(pick(table, null)).toBeNull();
  });

  test("an IPv4-mapped prefix matches plain IPv4 clients", () => {
    const t = new RouteTable([route("mapped", ["::ffff:10.0.0.0/104"])]);
    expect(pick(t, "10.9.9.9")).toBe("mapped");
    expect(pick(t, "11.0.0.1")).toBeNull();
  });

  test("an IPv6-only prefix does not match IPv4 clients, mapped or not", () => {
    const t = new RouteTable([route("all6", ["::/0"])]);
    expect(pick(t, "2001:db8::1")).toBe("all6");
    expect(pick(t, "10.0.0.1")).toBeNull();
    expect(pick(t, "::ffff:10.0.0.1")).toBeNull();
  });

  test("0.0.0.0/0 matches every IPv4 client", () => {
    const t = new RouteTable([route("all4", ["0.0.0.0/0"]), route("default")]);
    expect(pick(t, "255.255.255.255")).toBe("all4");
    expect(pick(t, "::ffff:1.1.1.1")).toBe("all4");
    expect(pick(t, "::1")).toBe("default");
  });
});
