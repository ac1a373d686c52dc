import { describe, expect, test } from "bun:test";
import { ConnFacts } from "../../src/protocol/facts.ts";
import { RouteTable } from "../../src/route/table.ts";
import type { RouteConfig, RouteMatch } from "../../src/config/types.ts";

/** A route matching on HTTP facts only (lists as the schema leaves them). */
function route(name: string, match: Partial<RouteMatch> | null): { config: RouteConfig } {
  return {
    config: {
      name,
      match: match === null ? null : { clientCidr: [], sni: [], alpn: [], database: [], user: [], ehlo: [], rcptDomain: [], ...match },
      upstreams: [], balance: "round-robin", respond: null, rateLimit: null,
      terminateTls: false, cert: null, mtls: null, upstreamTls: null, xclient: false,
    },
  };
}

function facts(host: string, path: string, method = "GET"): ConnFacts {
  const f = new ConnFacts();
  f.host = host;
  f.path = path;
  f.method = method;
  return f;
}

const table = new RouteTable([
  route("api", { host: ["api.example.com"], path: ["/v1/*"], method: ["GET", "POST"] }),
  route("cdn", { host: ["cdn-*.**"] }),
  route("wild", { host: ["*.example.com"] }),
  route("old", { path: ["/old/*"] }),
  route("ws", { path: ["/ws"] }),
  route("default", null),
]);

const pick = (host: string, path: string, method = "GET") => table.match("127.0.0.1", facts(host, path, method))?.config.name;

describe("HTTP facts in the route table: first match wins, every field must hold", () => {
  test("host, path and method together", () => {
    expect(pick("api.example.com", "/v1/users?id=3")).toBe("api");
    expect(pick("api.example.com", "/v1", "POST")).toBe("api");
  });
  test("a method not listed falls through to the next route that matches", () => {
    expect(pick("api.example.com", "/v1/users", "DELETE")).toBe("wild");
  });
  test("methods are case-sensitive (RFC 9110 §9.1)", () => {
    expect(pick("api.example.com", "/v1/users", "get")).toBe("wild");
  });
  test("a path outside the prefix falls through", () => {
    expect(pick("api.example.com", "/v2/users")).toBe("wild");
  });
  test("segment wildcards", () => {
    expect(pick("cdn-eu.assets.net", "/x")).toBe("cdn");
    expect(pick("cdn-eu", "/x")).toBe("default");
  });
  test("path-only routes, exact and prefix, query ignored", () => {
    expect(pick("other.net", "/old/page?x=1")).toBe("old");
    expect(pick("other.net", "/ws?token=1")).toBe("ws");
    expect(pick("other.net", "/ws/more")).toBe("default");
  });
  test("the default route when nothing matches", () => {
    expect(pick("other.net", "/")).toBe("default");
  });
  test("a route with a host condition does not match a request without a host", () => {
    const f = new ConnFacts();
    f.path = "/v1/x";
    f.method = "GET";
    expect(table.match("127.0.0.1", f)?.config.name).toBe("default");
  });
});
