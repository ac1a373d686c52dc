import { describe, expect, test } from "bun:test";
import { readConfig } from "../../src/config/schema.ts";

const NOT_BUILT = "is not built yet in this version (see the status table in README.md)";

function http(listener: Record<string, unknown>, routes: unknown[]) {
  return { listeners: [{ name: "web", listen: "127.0.0.1:8080", protocol: "http", ...listener, routes }] };
}

function issues(value: unknown): string[] {
  return readConfig(value, "<test>", {}).issues.map((i) => `${i.path}: ${i.message}`.replace(/^([^:]*): /, "$1: "));
}

function config(value: unknown) {
  const r = readConfig(value, "<test>", {});
  if (!r.config) throw new Error(JSON.stringify(r.issues));
  return r.config;
}

describe("http listener keys", () => {
  test("defaults", () => {
    const l = config(http({}, [{ upstreams: ["127.0.0.1:3000"] }])).listeners[0]!;
    expect(l.http).toEqual({ maxHeaderBytes: 65536, maxHeaders: 100, headerTimeoutMs: 10000, keepAliveTimeoutMs: 60000, forwarded: "append", trustedProxies: [], via: null, notFound: null });
    expect(l.routes[0]!.http).toEqual({ pool: { maxIdle: 32, idleTimeoutMs: 30000 }, timeoutMs: 30000, redirect: null, drop: false, headers: null });
  });

  test("SPEC.md's http listener is valid, except the part not built (serve)", () => {
    const c = config(http({ http: { maxHeaderBytes: 65536, headerTimeoutMs: 10000, keepAliveTimeoutMs: 60000, forwarded: "append", trustedProxies: ["10.0.0.0/8"] } }, [
      { match: { host: "api.example.com", path: "/v1/*", method: ["GET", "POST"] }, upstreams: ["10.0.0.2:3000"], pool: { maxIdle: 64, idleTimeoutMs: 30000 }, timeoutMs: 30000,
        headers: { request: { set: { "x-env": "prod" }, remove: ["x-debug"] }, response: { set: {}, remove: [] } } },
      { match: { host: "cdn-*.**" }, respond: { status: 200, headers: { "content-type": "text/plain" }, body: "edge {host}{path}" } },
      { match: { path: "/old/*" }, redirect: { status: 308, location: "https://{host}{path}" } },
      { match: { path: "/ws" }, upstreams: ["10.0.0.4:8080"] },
      { drop: true },
    ]));
    const [api, cdn, old, , drop] = c.listeners[0]!.routes;
    expect(api!.match).toMatchObject({ host: ["api.example.com"], path: ["/v1/*"], method: ["GET", "POST"] });
    expect(api!.http!.pool).toEqual({ maxIdle: 64, idleTimeoutMs: 30000 });
    expect(api!.http!.headers).toEqual({ request: { set: [["x-env", "prod"]], remove: ["x-debug"] }, response: { set: [], remove: [] } });
    expect(cdn!.respond).toMatchObject({ status: 200, body: "edge {host}{path}", headers: [["content-type", "text/plain"]] });
    expect(old!.http!.redirect).toEqual({ status: 308, location: "https://{host}{path}" });
    expect(drop!.http!.drop).toBe(true);
    expect(c.listeners[0]!.http!.trustedProxies).toHaveLength(1);
  });

  test("via and notFound (a body, or a respond-like object)", () => {
    const a = config(http({ http: { via: "edge-1", notFound: "nothing here\n" } }, [{ upstreams: ["127.0.0.1:1"] }])).listeners[0]!.http!;
    expect(a.via).toBe("edge-1");
    expect(a.notFound).toEqual({ status: 404, contentType: "text/plain; charset=utf-8", body: "nothing here\n" });
    const b = config(http({ http: { notFound: { status: 410, contentType: "text/html", headers: { "x-a": "b" }, body: "<p>{path}</p>" } } }, [{ upstreams: ["127.0.0.1:1"] }])).listeners[0]!.http!;
    expect(b.notFound).toEqual({ status: 410, contentType: "text/html", body: "<p>{path}</p>", headers: [["x-a", "b"]] });
    expect(b.via).toBeNull();
  });

  test.each<[string, unknown, string]>([
    ["a bad host pattern", http({}, [{ match: { host: "a..b" }, upstreams: ["127.0.0.1:1"] }]), "empty label"],
    ["a bad path pattern", http({}, [{ match: { path: "/a*b" }, upstreams: ["127.0.0.1:1"] }]), 'only a trailing "/*"'],
    ["a bad method", http({}, [{ match: { method: "GE T" }, upstreams: ["127.0.0.1:1"] }]), "not a method"],
    ["upstreams and redirect", http({}, [{ upstreams: ["127.0.0.1:1"], redirect: { location: "/" } }]), "not several"],
    ["nothing to do", http({}, [{ match: { path: "/" } }]), "a route needs upstreams (or respond, redirect or drop)"],
    ["a redirect without location", http({}, [{ redirect: { status: 301 } }]), "redirect needs location"],
    ["a header value with CR LF", http({}, [{ respond: { headers: { "x-a": "b\r\nc: d" } } }]), "without CR, LF"],
    ["forwarded spelled wrong", http({ http: { forwarded: "yes" } }, [{ upstreams: ["127.0.0.1:1"] }]), "forwarded must be one of append, replace, off"],
    ["a route setting a framing field", http({}, [{ upstreams: ["127.0.0.1:1"], headers: { request: { set: { "Content-Length": "1" } } } }]), "Content-Length cannot be set by a route"],
    ["a route setting a hop-by-hop field", http({}, [{ upstreams: ["127.0.0.1:1"], headers: { response: { set: { connection: "close" } } } }]), "connection cannot be set by a route"],
    ["a route removing Host", http({}, [{ upstreams: ["127.0.0.1:1"], headers: { request: { remove: ["Host"] } } }]), "Host cannot be removed by a route"],
    ["a set value with CR LF", http({}, [{ upstreams: ["127.0.0.1:1"], headers: { request: { set: { "x-a": "b\r\nc: d" } } } }]), "printable ASCII"],
    ["a bad set name", http({}, [{ upstreams: ["127.0.0.1:1"], headers: { request: { set: { "x a": "b" } } } }]), 'not a field name: "x a"'],
    ["an unknown direction", http({}, [{ upstreams: ["127.0.0.1:1"], headers: { upstream: {} } }]), 'unknown key "upstream"'],
    ["a via that is not a token", http({ http: { via: "my proxy" } }, [{ upstreams: ["127.0.0.1:1"] }]), "via is a pseudonym"],
    ["a notFound status that is not an error", http({ http: { notFound: { status: 200, body: "x" } } }, [{ upstreams: ["127.0.0.1:1"] }]), "status"],
    ["serve", http({}, [{ serve: { root: "/srv" } }]), `serve ${NOT_BUILT}`],
    ["http on a tcp listener", { listeners: [{ listen: "127.0.0.1:1", http: {}, routes: [{ upstreams: ["127.0.0.1:2"] }] }] }, 'http needs protocol "http"'],
    ["match.host on a tls listener", { listeners: [{ listen: "127.0.0.1:1", protocol: "tls", routes: [{ match: { host: "a" }, upstreams: ["127.0.0.1:2"] }] }] }, 'match.host needs protocol "http"'],
    ["pool on a tcp listener", { listeners: [{ listen: "127.0.0.1:1", routes: [{ upstreams: ["127.0.0.1:2"], pool: {} }] }] }, 'pool needs protocol "http"'],
  ])("refused: %s", (_, value, message) => {
    const found = issues(value);
    expect(found.some((m) => m.includes(message))).toBe(true);
  });
});
