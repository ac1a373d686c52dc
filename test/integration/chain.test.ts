/**
 * Listener chaining: one tls listener on one port ends TLS for some names and continues the
 * plaintext into other listeners in-process (`"upstreams": [{ "listener": … }]`): HTTPS into an http
 * listener (curl, keep-alive), implicit TLS (port 465 style) into an smtp listener (swaks
 * --tls-on-connect to Postfix's smtp-sink), and a name that no route terminates passed through to a
 * TLS server of its own on the same port. The chained listeners have no address (`"listen": []`).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { makePki, type Pki } from "../helpers/certs.ts";
import { eventually, runBinary, startProxy, writeConfig, type RunningProxy } from "../helpers/proxy.ts";
import { startSink, swaks, type Sink } from "../helpers/smtp-peers.ts";

let pki: Pki;
let proxy: RunningProxy;
let sink: Sink;
let app: ReturnType<typeof Bun.serve>;
let legacy: ReturnType<typeof Bun.serve>;

beforeAll(async () => {
  pki = makePki();
  const edgeCert = pki.issue("edge", ["web.test", "mail.test"]);
  const legacyCert = pki.issue("legacy", ["legacy.test"]);
  sink = await startSink();
  // What the http listener's upstream was told: the scheme and the host of each request.
  app = Bun.serve({
    hostname: "127.0.0.1", port: 0,
    fetch: (req) => new Response(`${req.headers.get("x-forwarded-proto")} ${req.headers.get("host")} ${new URL(req.url).pathname}`),
  });
  // A TLS server of its own behind the same port: its certificate is what the client sees.
  legacy = Bun.serve({
    hostname: "127.0.0.1", port: 0,
    tls: { cert: Bun.file(legacyCert.cert), key: Bun.file(legacyCert.key) },
    fetch: () => new Response("legacy backend"),
  });
  const config = writeConfig({
    log: { access: "stdout" },
    listeners: [
      {
        name: "edge", listen: "127.0.0.1:0", protocol: "tls", defaultCert: edgeCert,
        routes: [
          { name: "legacy", match: { sni: "legacy.test" }, upstreams: [`127.0.0.1:${legacy.port}`] },
          { name: "smtps", match: { sni: "mail.test" }, terminateTls: true, upstreams: [{ listener: "mx" }] },
          { name: "https", terminateTls: true, upstreams: [{ listener: "web" }] },
        ],
      },
      { name: "web", listen: [], protocol: "http", routes: [{ name: "app", upstreams: [`127.0.0.1:${app.port}`] }] },
      { name: "mx", listen: [], protocol: "smtp", smtp: { hostname: "mx.test" }, routes: [{ name: "sink", upstreams: [`127.0.0.1:${sink.port}`] }] },
    ],
  });
  proxy = await startProxy(["serve", "-c", config]);
});

afterAll(async () => {
  await proxy?.stop();
  await sink?.stop();
  app?.stop(true);
  legacy?.stop(true);
});

async function curl(name: string, paths: string[]): Promise<{ code: number; out: string }> {
  const urls = paths.map((p) => `https://${name}:${proxy.port}${p}`);
  const proc = Bun.spawn(["curl", "-sS", "--cacert", pki.ca, "--resolve", `${name}:${proxy.port}:127.0.0.1`, "-w", "|%{http_code}|%{num_connects}\n", ...urls],
    { stdout: "pipe", stderr: "pipe" });
  const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  return { code: await proc.exited, out: out + err };
}

describe("a tls listener continuing into other listeners", () => {
  test("HTTPS: the http listener serves the plaintext, keep-alive, X-Forwarded-Proto https, TLS facts in its log", async () => {
    const r = await curl("web.test", ["/one", "/two"]);
    expect(r.code).toBe(0);
    // Both requests on one connection (the second made no new connect).
    expect(r.out).toBe(`https web.test:${proxy.port} /one|200|1\nhttps web.test:${proxy.port} /two|200|0\n`);
    await eventually(() => proxy.accessLog().filter((l) => l.listener === "web").length >= 2, 5000, "two request records");
    const records = proxy.accessLog().filter((l) => l.listener === "web");
    expect(records.map((l) => l.path)).toEqual(["/one", "/two"]);
    for (const l of records) {
      expect(l).toMatchObject({ chainedFrom: "edge", route: "app", protocol: "http", sni: "web.test", tls: "terminate", method: "GET", status: 200 });
      expect(typeof l.ja3).toBe("string");
    }
    // The entry listener writes no record of its own for a chained connection.
    expect(proxy.accessLog().some((l) => l.listener === "edge" && l.route === "https")).toBe(false);
  });

  test("implicit TLS into smtp: the proxy's banner after the handshake, no STARTTLS offered, the message delivered", async () => {
    const r = await swaks(proxy.port, ["--tls-on-connect", "--tls-sni", "mail.test", "--tls-ca-path", pki.ca, "--tls-verify",
      "--to", "someone@b.example", "--from", "me@a.example", "--ehlo", "client.example", "--body", "over implicit TLS"]);
    expect(r.output).toContain("<~  220 mx.test ESMTP");
    expect(r.output).not.toContain("STARTTLS");
    expect(r.exitCode).toBe(0);
    await eventually(() => sink.messages().some((m) => m.includes("over implicit TLS")), 5000, "the message at the sink");
    await eventually(() => proxy.accessLog().some((l) => l.listener === "mx"), 5000, "the smtp record");
    const record = proxy.accessLog().find((l) => l.listener === "mx")!;
    expect(record).toMatchObject({ chainedFrom: "edge", route: "sink", sni: "mail.test", tls: "terminate", ehlo: "client.example", rcptDomain: "b.example" });
    // swaks closes its TLS socket right after QUIT, at times before the 221 is read (a reset).
    expect(["done", "client_reset"]).toContain(record.reason as string);
  });

  test("a name no route terminates is passed through to its own TLS server on the same port", async () => {
    const r = await curl("legacy.test", ["/"]);
    expect(r.code).toBe(0);
    expect(r.out).toBe("legacy backend|200|1\n");
    await eventually(() => proxy.accessLog().some((l) => l.route === "legacy"), 5000, "passthrough record");
    expect(proxy.accessLog().find((l) => l.route === "legacy")).toMatchObject({ listener: "edge", tls: "passthrough", sni: "legacy.test" });
  });
});

describe("the configuration check of chaining", () => {
  const base = (edgeRoute: object, web: object = { name: "web", listen: [], protocol: "http", routes: [{ upstreams: ["127.0.0.1:9"] }] }) => ({
    listeners: [{ name: "edge", listen: "127.0.0.1:0", protocol: "tls", defaultCert: { cert: "/nonexistent.pem", key: "/nonexistent.key" }, routes: [edgeRoute] }, web],
  });
  async function validate(config: object): Promise<string> {
    const r = await runBinary(["validate", "-c", writeConfig(config)]);
    expect(r.code).not.toBe(0);
    return r.stderr;
  }

  test("a route that does not end TLS cannot continue into a listener", async () => {
    expect(await validate(base({ upstreams: [{ listener: "web" }] }))).toContain(`only from a "tls" listener with "terminateTls": true`);
  });
  test("an unknown listener is named", async () => {
    expect(await validate(base({ terminateTls: true, upstreams: [{ listener: "nope" }] }))).toContain(`no listener named "nope" (known: edge, web)`);
  });
  test("a listener upstream is the route's only upstream", async () => {
    expect(await validate(base({ terminateTls: true, upstreams: [{ listener: "web" }, "127.0.0.1:1"] }))).toContain(`is the route's only upstream`);
  });
  test("a listener without addresses must be chained into", async () => {
    expect(await validate(base({ terminateTls: true, upstreams: ["127.0.0.1:1"] }))).toContain(`only a listener that a route continues into`);
  });
});
