/**
 * The resolver module on an http listener is asked per request, with ctx.host, ctx.path and
 * ctx.method filled, and its routing cache is keyed by them; its answers in HTTP terms: an endpoint
 * (forwarded there over a pool, SSRF-checked unless skipValidation), null (the route table), a
 * refusal (its status, 403 for a non-error status, the message in the body, `resolver_refused` in the
 * access log), a throw (502) and a timeout (504). Two Debian nginx servers as the upstreams, a raw
 * keep-alive client.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { eventually, startProxy, tempDir, writeConfig, type RunningProxy } from "../helpers/proxy.ts";
import { startNginx, type Nginx } from "../helpers/nginx.ts";

const dec = new TextDecoder();
let alpha: Nginx;
let beta: Nginx;
let proxy: RunningProxy;
let calls: string;

beforeAll(async () => {
  alpha = await startNginx("alpha");
  beta = await startNginx("beta");
  const dir = tempDir();
  calls = join(dir, "calls.jsonl");
  writeFileSync(calls, "");
  const resolver = join(dir, "resolver.ts");
  writeFileSync(resolver, `
    import { appendFileSync } from "node:fs";
    export default {
      resolve(ctx) {
        appendFileSync(${JSON.stringify(calls)}, JSON.stringify({ listener: ctx.listener, host: ctx.host, path: ctx.path, method: ctx.method,
          data: new TextDecoder().decode(ctx.data) }) + "\\n");
        switch (ctx.host) {
          case "a.test": return { endpoint: "127.0.0.1:${alpha.port}" };
          case "b.test": return { endpoint: "127.0.0.1:${beta.port}", cache: false };
          case "deny.test": return { status: 403, message: "tenant suspended\\r\\nX-Injected: no" };
          case "gone.test": return { status: 410 };
          case "odd.test": return { status: 200 };
          case "throw.test": throw new Error("boom");
          case "slow.test": return new Promise(() => {});
          default: return null;
        }
      },
    };`);
  proxy = await startProxy(["serve", "--resolver", resolver, "-c", writeConfig({
    log: { access: "stdout" },
    listeners: [
      { name: "web", listen: "127.0.0.1:0", protocol: "http", skipValidation: true, resolveTimeoutMs: 300,
        routes: [{ name: "table", match: { host: "table.test" }, upstreams: [`127.0.0.1:${beta.port}`] }] },
      // Without skipValidation a resolver's loopback answer is refused (SSRF), as on every listener.
      { name: "strict", listen: "127.0.0.1:0", protocol: "http", routes: [] },
    ],
  })]);
});

afterAll(async () => {
  await proxy?.stop();
  await alpha?.stop();
  await beta?.stop();
});

type Answer = { status: number; head: string; body: string };

/** Requests one after another on one keep-alive connection. */
async function exchange(port: number, requests: string[]): Promise<Answer[]> {
  const out: Answer[] = [];
  let buf = "";
  let wake: (() => void) | null = null;
  let closed = false;
  const s = await Bun.connect({ hostname: "127.0.0.1", port, socket: {
    data(_s, d) { buf += dec.decode(d); wake?.(); },
    close() { closed = true; wake?.(); },
  } });
  for (const r of requests) {
    s.write(r);
    for (;;) {
      const m = /^HTTP\/1\.1 (\d+)[^\r]*\r\n((?:[^\r]+\r\n)*)\r\n/.exec(buf);
      const len = !m ? -1 : r.startsWith("HEAD ") ? 0 : Number(/content-length: (\d+)/i.exec(m[2]!)?.[1] ?? 0);
      if (m && buf.length >= m[0].length + len) {
        out.push({ status: Number(m[1]), head: m[0], body: buf.slice(m[0].length, m[0].length + len) });
        buf = buf.slice(m[0].length + len);
        break;
      }
      if (closed) throw new Error(`closed after ${out.length} answers`);
      await new Promise<void>((r) => (wake = r));
    }
  }
  s.end();
  return out;
}

const seen = () => readFileSync(calls, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
const get = (host: string, path = "/", method = "GET") => `${method} ${path} HTTP/1.1\r\nHost: ${host}\r\n${method === "POST" ? "Content-Length: 2\r\n\r\nhi" : "\r\n"}`;

test("asked per request with host, path and method; its endpoint, null and refusals answered in HTTP terms", async () => {
  writeFileSync(calls, "");
  const answers = await exchange(proxy.port, [
    get("a.test", "/one"), get("B.Test:80", "/two"), get("table.test", "/three"), get("deny.test", "/x"),
    get("gone.test"), get("odd.test"), get("throw.test"), get("nowhere.test"), get("a.test", "/after"),
  ]);
  expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 403, 410, 403, 502, 404, 200]);
  expect(answers[0]!.body).toBe("alpha GET /one\n");
  expect(answers[1]!.body).toBe("beta GET /two\n");
  expect(answers[2]!.body).toBe("beta GET /three\n"); // null: the route table
  // The message goes into the body on one line, never into the head.
  expect(answers[3]!.body).toBe("403 Forbidden: resolver_refused: tenant suspended  X-Injected: no\n");
  expect(answers[3]!.head).not.toContain("X-Injected");
  expect(answers[4]!.body).toBe("410 Gone: resolver_refused\n");
  expect(answers[6]!.body).toBe("502 Bad Gateway: resolver_error\n");
  expect(answers[7]!.body).toBe("404 Not Found: no_route\n");
  expect(answers[8]!.body).toBe("alpha GET /after\n"); // the connection goes on after refusals
  expect(seen()).toEqual([
    { listener: "web", host: "a.test", path: "/one", method: "GET", data: get("a.test", "/one") },
    { listener: "web", host: "b.test", path: "/two", method: "GET", data: get("B.Test:80", "/two") },
    { listener: "web", host: "table.test", path: "/three", method: "GET", data: get("table.test", "/three") },
    { listener: "web", host: "deny.test", path: "/x", method: "GET", data: get("deny.test", "/x") },
    { listener: "web", host: "gone.test", path: "/", method: "GET", data: get("gone.test") },
    { listener: "web", host: "odd.test", path: "/", method: "GET", data: get("odd.test") },
    { listener: "web", host: "throw.test", path: "/", method: "GET", data: get("throw.test") },
    { listener: "web", host: "nowhere.test", path: "/", method: "GET", data: get("nowhere.test") },
    { listener: "web", host: "a.test", path: "/after", method: "GET", data: get("a.test", "/after") },
  ]);
  await eventually(() => proxy.accessLog().some((r) => r.path === "/after"), 5000, "access log");
  const log = proxy.accessLog();
  expect(log.find((r) => r.host === "deny.test")).toMatchObject({ route: null, status: 403, reason: "resolver_refused", method: "GET", path: "/x" });
  expect(log.find((r) => r.path === "/one")).toMatchObject({ route: null, status: 200, reason: "done", upstream: `127.0.0.1:${alpha.port}` });
  expect(log.find((r) => r.path === "/three")).toMatchObject({ route: "table", status: 200, upstream: `127.0.0.1:${beta.port}` });
});

test("the cache key has host, path and method: the same request is answered from the cache, another path or method asks again", async () => {
  writeFileSync(calls, "");
  const answers = await exchange(proxy.port, [
    get("a.test", "/c"), get("a.test", "/c"), get("a.test", "/d"), get("a.test", "/c", "POST"), get("a.test", "/c", "POST"),
    get("b.test", "/c"), get("b.test", "/c"), // cache: false
  ]);
  expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200, 200, 200]);
  expect(answers[3]!.body).toBe("alpha POST /c\n");
  expect(seen().map((c) => `${c.method} ${c.host}${c.path}`)).toEqual(["GET a.test/c", "GET a.test/d", "POST a.test/c", "GET b.test/c", "GET b.test/c"]);
});

test("a resolver slower than resolveTimeoutMs: 504 resolver_timeout; a loopback answer without skipValidation: 502 ssrf_blocked", async () => {
  const [slow] = await exchange(proxy.port, [get("slow.test")]);
  expect(slow!.status).toBe(504);
  expect(slow!.body).toBe("504 Gateway Timeout: resolver_timeout\n");
  const strictPort = Number(proxy.addresses[1]!.split(":").at(-1));
  const [blocked] = await exchange(strictPort, [get("a.test", "/ssrf")]);
  expect(blocked!.status).toBe(502);
  expect(blocked!.body).toBe("502 Bad Gateway: ssrf_blocked\n");
  expect(alpha.requests().some((l) => l.includes("/ssrf"))).toBe(false);
});

test("a request body waits while the resolver decides, then reaches the endpoint whole", async () => {
  const [a] = await exchange(proxy.port, [`POST /body HTTP/1.1\r\nHost: b.test\r\nContent-Length: 5\r\n\r\nhello`]);
  expect(a).toMatchObject({ status: 200, body: "beta POST /body\n" });
  expect(beta.requests().some((l) => l.startsWith("POST /body ") && l.includes("len=[5]"))).toBe(true);
});
