/**
 * The http listener against real peers on loopback: curl as the client, Debian nginx as the backend
 * (test/helpers/nginx.ts), Bun servers where a backend must hash a body, stream one, stay silent or
 * record the exact bytes it was sent, and a raw-socket client for the framing attacks of issue 14
 * (each one: the proxy answers 400 (or 501) and closes, and no byte it did not validate reached the
 * backend).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Socket } from "bun";
import { eventually, startProxy, tempDir, writeConfig, type RunningProxy } from "../helpers/proxy.ts";
import { startNginx, type Nginx } from "../helpers/nginx.ts";
import { serve, type Server } from "../helpers/peers.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

let alpha: Nginx;
let beta: Nginx;
/** Records every byte each connection sent it, answers nothing. */
let capture: Server;
const captured: Uint8Array[][] = [];
const capturedClosed = new Set<Uint8Array[]>();
/** Hashes request bodies, streams chunked bodies (Bun.serve). */
let bunBackend: ReturnType<typeof Bun.serve>;
const DOWNLOAD = randomBytes(24 * 1024 * 1024);
const DOWNLOAD_SHA = createHash("sha256").update(DOWNLOAD).digest("hex");
let proxy: RunningProxy;
let closedPort: number;

beforeAll(async () => {
  alpha = await startNginx("alpha");
  beta = await startNginx("beta");
  mkdirSync(join(alpha.dir, "www", "files"));
  writeFileSync(join(alpha.dir, "www", "files", "page.txt"), "a static page\n");
  capture = serve({
    open(s: Socket<any>) { s.data = []; captured.push(s.data); },
    data(s: Socket<any>, d: Uint8Array) { s.data.push(new Uint8Array(d)); },
    close(s: Socket<any>) { capturedClosed.add(s.data); },
  } as any);
  bunBackend = Bun.serve({
    hostname: "127.0.0.1", port: 0,
    async fetch(req) {
      const url = new URL(req.url);
      if (url.pathname === "/hash") {
        const h = createHash("sha256");
        let n = 0;
        for await (const chunk of req.body!) { h.update(chunk); n += chunk.length; }
        return new Response(`${n} ${h.digest("hex")}`);
      }
      if (url.pathname === "/stream") {
        let at = 0;
        return new Response(new ReadableStream({
          pull(c) {
            if (at >= DOWNLOAD.length) return c.close();
            const n = Math.min(65_536 + (at % 7919), DOWNLOAD.length - at); // uneven chunk sizes
            c.enqueue(DOWNLOAD.subarray(at, at + n));
            at += n;
          },
        }));
      }
      return new Response("bun");
    },
  });
  closedPort = (() => { const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } }); const p = l.port; l.stop(true); return p; })();
  const config = writeConfig({
    log: { access: "stdout" },
    listeners: [{
      name: "web", listen: "127.0.0.1:0", protocol: "http", handshakeTimeoutMs: 1000,
      http: { headerTimeoutMs: 500, keepAliveTimeoutMs: 1500, maxHeaderBytes: 4096, maxHeaders: 20, trustedProxies: ["10.0.0.0/8"] },
      routes: [
        { name: "a", match: { host: "a.test" }, upstreams: [`127.0.0.1:${alpha.port}`] },
        { name: "b", match: { path: "/beta/*" }, upstreams: [`127.0.0.1:${beta.port}`] },
        { name: "capture", match: { host: "capture.test" }, upstreams: [`127.0.0.1:${capture.port}`], timeoutMs: 400 },
        { name: "bun", match: { host: "bun.test" }, upstreams: [`127.0.0.1:${bunBackend.port}`] },
        { name: "down", match: { host: "down.test" }, upstreams: [`127.0.0.1:${closedPort}`] },
        { name: "edge", match: { host: "cdn-*.**" }, respond: { status: 200, headers: { "x-edge": "{host}" }, body: "edge {host}{path} for {client}" } },
        { name: "old", match: { path: "/old/*" }, redirect: { status: 308, location: "https://{host}{path}" } },
        { name: "drop", match: { host: "drop.test" }, drop: true },
      ],
    }],
  });
  proxy = await startProxy(["serve", "-c", config]);
});

afterAll(async () => {
  if (process.env.HTTP_TEST_DEBUG) console.log(proxy?.stderr());
  await proxy?.stop();
  await alpha?.stop();
  await beta?.stop();
  capture?.stop();
  bunBackend?.stop(true);
});

/** Run curl; its stderr (-v) is returned beside stdout. */
async function curl(args: string[]): Promise<{ out: string; err: string; code: number }> {
  const p = Bun.spawn(["curl", "-sS", "--max-time", "20", ...args], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { out, err, code };
}

interface Raw {
  text(): string;
  readonly closed: Promise<void>;
  isClosed(): boolean;
  write(bytes: Uint8Array | string): void;
  end(): void;
}

/** A raw TCP client: the exact bytes given go out; everything received is kept. */
async function raw(port = proxy.port): Promise<Raw> {
  const got: Uint8Array[] = [];
  let closed = false;
  let done!: () => void;
  const closedP = new Promise<void>((r) => (done = r));
  const s = await Bun.connect({
    hostname: "127.0.0.1", port,
    socket: { data(_s, d) { got.push(new Uint8Array(d)); }, close() { closed = true; done(); }, end(s) { s.end(); } },
  });
  return {
    text: () => dec.decode(Buffer.concat(got)),
    closed: closedP,
    isClosed: () => closed,
    write: (b) => void s.write(typeof b === "string" ? enc.encode(b) : b),
    end: () => s.end(),
  };
}

/** Send `bytes`, wait for the proxy to close; the whole answer. */
async function rawAndClose(bytes: string | Uint8Array, ms = 5000): Promise<string> {
  const c = await raw();
  c.write(bytes);
  await Promise.race([c.closed, Bun.sleep(ms)]);
  expect(c.isClosed()).toBe(true);
  return c.text();
}

describe("routing and keep-alive with curl and nginx", () => {
  test("several requests on one client connection, routed to two nginx backends by host and by path", async () => {
    const before = proxy.accessLog().length;
    const r = await curl(["-v",
      "http://127.0.0.1:" + proxy.port + "/one", "-H", "Host: a.test",
      "--next", "http://127.0.0.1:" + proxy.port + "/beta/x?q=1",
      "--next", "http://127.0.0.1:" + proxy.port + "/two", "-H", "Host: A.TEST:8080",
      "--next", "http://127.0.0.1:" + proxy.port + "/beta/y",
    ]);
    expect(r.code).toBe(0);
    expect(r.out).toBe("alpha GET /one\nbeta GET /beta/x?q=1\nalpha GET /two\nbeta GET /beta/y\n");
    // curl kept its one connection for every request.
    expect(r.err.match(/Re-using existing connection/g)?.length).toBe(3);
    expect(r.err.match(/Connected to/g)?.length).toBe(1);
    await eventually(() => proxy.accessLog().length >= before + 4, 5000, "4 records");
    const records = proxy.accessLog().slice(before, before + 4);
    expect(records.map((x) => [x.route, x.method, x.host, x.path, x.status, x.reused])).toEqual([
      ["a", "GET", "a.test", "/one", 200, false],
      ["b", "GET", "127.0.0.1", "/beta/x?q=1", 200, false],
      ["a", "GET", "a.test", "/two", 200, true], // the pooled connection to alpha
      ["b", "GET", "127.0.0.1", "/beta/y", 200, true],
    ]);
    expect(new Set(records.map((x) => x.id)).size).toBe(1); // one client connection
    for (const x of records) expect(typeof x.upstreamMs).toBe("number");
    // nginx saw the two requests to it on one upstream connection.
    const peers = alpha.requests().filter((l) => l.includes("/one") || l.includes("/two")).map((l) => l.split("peer=")[1]);
    expect(new Set(peers).size).toBe(1);
    // One record per request and none for the connection itself once curl has closed it (SPEC.md).
    await Bun.sleep(500);
    expect(proxy.accessLog().slice(before).filter((x) => x.id === records[0]!.id).map((x) => x.status)).toEqual([200, 200, 200, 200]);
  });

  test("hop-by-hop fields are removed, X-Forwarded-* written, an untrusted client's X-Forwarded-For replaced", async () => {
    const r = await curl([`http://127.0.0.1:${proxy.port}/headers`, "-H", "Host: a.test",
      "-H", "Connection: keep-alive, X-Drop-Me", "-H", "X-Drop-Me: secret", "-H", "TE: trailers", "-H", "Keep-Alive: timeout=5",
      "-H", "Proxy-Authorization: Basic Zm9vOmJhcg==", "-H", "X-Forwarded-For: 6.6.6.6", "-H", "X-Forwarded-Host: evil.test"]);
    expect(r.out).toBe("alpha xff=[127.0.0.1] proto=[http] xhost=[a.test] conn=[] ka=[] te=[] pa=[] x=[]\n");
  });

  test("respond with templates, redirect, 404 when no route matches, drop", async () => {
    const edge = await curl(["-i", `http://127.0.0.1:${proxy.port}/p?x=1`, "-H", "Host: cdn-eu.assets.example"]);
    expect(edge.out).toContain("HTTP/1.1 200 OK");
    expect(edge.out).toContain("x-edge: cdn-eu.assets.example");
    expect(edge.out).toEndWith("\r\n\r\nedge cdn-eu.assets.example/p?x=1 for 127.0.0.1");
    const old = await curl(["-i", `http://127.0.0.1:${proxy.port}/old/page?a=b`, "-H", "Host: www.example"]);
    expect(old.out).toContain("HTTP/1.1 308 Permanent Redirect");
    expect(old.out).toContain("location: https://www.example/old/page?a=b");
    const none = await curl(["-i", `http://127.0.0.1:${proxy.port}/nowhere`, "-H", "Host: nobody.test"]);
    expect(none.out).toContain("HTTP/1.1 404 Not Found");
    expect(none.out).toContain("no_route");
    const drop = await rawAndClose("GET / HTTP/1.1\r\nHost: drop.test\r\n\r\n");
    expect(drop).toBe("");
  });

  test("HEAD, 204 and 304 have no body, and the requests pipelined after them are answered in order", async () => {
    const page = await curl(["-i", `http://127.0.0.1:${proxy.port}/files/page.txt`, "-H", "Host: a.test"]);
    const tag = /ETag: (\S+)/i.exec(page.out)![1]!;
    const c = await raw();
    c.write(
      "HEAD /files/page.txt HTTP/1.1\r\nHost: a.test\r\n\r\n" +
      "GET /nocontent HTTP/1.1\r\nHost: a.test\r\n\r\n" +
      `GET /files/page.txt HTTP/1.1\r\nHost: a.test\r\nIf-None-Match: ${tag}\r\n\r\n` +
      "GET /last HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
    );
    await Promise.race([c.closed, Bun.sleep(5000)]);
    const text = c.text();
    const statuses = [...text.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((m) => m[1]);
    expect(statuses).toEqual(["200", "204", "304", "200"]);
    // The HEAD answer says the length and carries no body: the next bytes are the 204's status line.
    expect(text).toMatch(/Content-Length: 14\r\n(?:[^\r]*\r\n)*\r\nHTTP\/1\.1 204/);
    expect(text).toEndWith("\r\n\r\nalpha GET /last\n");
  });
});

describe("bodies streamed both ways (sha256)", () => {
  test("a chunked upload of 24 MiB reaches the backend byte-exact", async () => {
    const dir = tempDir();
    const file = join(dir, "up.bin");
    const body = randomBytes(24 * 1024 * 1024);
    writeFileSync(file, body);
    const r = await curl([`http://127.0.0.1:${proxy.port}/hash`, "-H", "Host: bun.test", "-H", "Transfer-Encoding: chunked", "--data-binary", `@${file}`]);
    expect(r.out).toBe(`${body.length} ${createHash("sha256").update(body).digest("hex")}`);
  });

  test("a Content-Length upload of 24 MiB reaches the backend byte-exact", async () => {
    const dir = tempDir();
    const file = join(dir, "up.bin");
    const body = randomBytes(24 * 1024 * 1024);
    writeFileSync(file, body);
    const r = await curl([`http://127.0.0.1:${proxy.port}/hash`, "-H", "Host: bun.test", "--data-binary", `@${file}`]);
    expect(r.out).toBe(`${body.length} ${createHash("sha256").update(body).digest("hex")}`);
  });

  test("a chunked download of 24 MiB reaches the client byte-exact", async () => {
    const dir = tempDir();
    const file = join(dir, "down.bin");
    // Then a second request on the same connection, over the same pooled upstream connection (reuse
    // after a large streamed body; whether the upstream was paused at the body's last bytes, the case
    // session.ts resumes it for, depends on timing and is not forced here).
    const r = await curl(["-D", "-", "-o", file, `http://127.0.0.1:${proxy.port}/stream`, "-H", "Host: bun.test",
      "--next", `http://127.0.0.1:${proxy.port}/after`, "-H", "Host: bun.test"]);
    expect(r.out.toLowerCase()).toContain("transfer-encoding: chunked");
    expect(r.out).toEndWith("bun");
    const got = await Bun.file(file).arrayBuffer();
    expect(createHash("sha256").update(new Uint8Array(got)).digest("hex")).toBe(DOWNLOAD_SHA);
  });
});

describe("upstream failures and timeouts", () => {
  test("502 when the upstream refuses the connection, with the reason in the body and the access log", async () => {
    const r = await curl(["-i", `http://127.0.0.1:${proxy.port}/`, "-H", "Host: down.test"]);
    expect(r.out).toContain("HTTP/1.1 502 Bad Gateway");
    expect(r.out).toContain("connect_failed");
    await eventually(() => proxy.accessLog().some((x) => x.route === "down" && x.status === 502 && x.reason === "connect_failed"), 5000, "502 record");
  });

  test("504 when the upstream does not answer within the route's timeoutMs", async () => {
    const t0 = performance.now();
    const r = await curl(["-i", `http://127.0.0.1:${proxy.port}/slow`, "-H", "Host: capture.test"]);
    expect(r.out).toContain("HTTP/1.1 504 Gateway Timeout");
    expect(r.out).toContain("upstream_timeout");
    expect(performance.now() - t0).toBeGreaterThan(350);
    await eventually(() => proxy.accessLog().some((x) => x.route === "capture" && x.status === 504 && x.reason === "upstream_timeout"), 5000, "504 record");
  });

  test("a head that does not arrive within headerTimeoutMs gets 408 and the connection closes", async () => {
    const c = await raw();
    c.write("GET /a HTTP/1.1\r\nHost: a.test\r\n\r\nGET /b HTTP/1.1\r\nHost: a");
    const t0 = performance.now();
    await Promise.race([c.closed, Bun.sleep(5000)]);
    expect(c.isClosed()).toBe(true);
    expect(performance.now() - t0).toBeGreaterThan(400);
    expect(c.text()).toContain("alpha GET /a");
    expect(c.text()).toContain("HTTP/1.1 408 Request Timeout");
    expect(c.text()).toContain("header_timeout");
  });

  test("an idle keep-alive connection is closed after keepAliveTimeoutMs, silently", async () => {
    const c = await raw();
    c.write("GET /a HTTP/1.1\r\nHost: a.test\r\n\r\n");
    const t0 = performance.now();
    await Promise.race([c.closed, Bun.sleep(5000)]);
    expect(c.isClosed()).toBe(true);
    expect(performance.now() - t0).toBeGreaterThan(1400);
    expect(c.text()).toEndWith("alpha GET /a\n");
  });

  test("an Upgrade request with a body gets 501, not a hang (bodiless ones are forwarded: http-websocket.test.ts)", async () => {
    const text = await rawAndClose("POST /ws HTTP/1.1\r\nHost: a.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 1\r\n\r\nx");
    expect(text).toStartWith("HTTP/1.1 501 Not Implemented");
    expect(text).toContain("upgrade_not_supported");
  });
});

describe("framing attacks: 400 (or 501) and close; nothing unvalidated reaches the backend", () => {
  const H = "POST /x HTTP/1.1\r\nHost: capture.test\r\n";
  // [name, bytes, status, reason]: rejected in the head, so the backend gets nothing at all.
  const HEAD_CASES: [string, string, number, string][] = [
    ["Content-Length with Transfer-Encoding", `${H}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400, "content_length_with_transfer_encoding"],
    ["two different Content-Length values", `${H}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!`, 400, "conflicting_content_length"],
    ["Content-Length not 1*DIGIT", `${H}Content-Length: +5\r\n\r\nhello`, 400, "invalid_content_length"],
    ["Content-Length overflow", `${H}Content-Length: 99999999999999999999999\r\n\r\n`, 400, "content_length_overflow"],
    ["chunked not the last coding", `${H}Transfer-Encoding: chunked, gzip\r\n\r\n`, 400, "chunked_not_last"],
    ["chunked twice", `${H}Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n`, 400, "chunked_twice"],
    ["a coding not understood", `${H}Transfer-Encoding: foo, chunked\r\n\r\n0\r\n\r\n`, 501, "unknown_transfer_coding"],
    ["Transfer-Encoding on HTTP/1.0", `POST /x HTTP/1.0\r\nHost: capture.test\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400, "transfer_encoding_in_http10"],
    ["obs-fold", `${H}X-A: one\r\n two\r\nContent-Length: 0\r\n\r\n`, 400, "obs_fold"],
    ["bare CR in the head", `${H}X-A: o\rne\r\nContent-Length: 0\r\n\r\n`, 400, "bare_cr"],
    ["bare LF as a line end in the head", `${H}X-A: one\nContent-Length: 0\r\n\r\n`, 400, "bare_lf"],
    ["space before the colon", `${H}Content-Length : 0\r\n\r\n`, 400, "whitespace_before_colon"],
  ];
  test.each(HEAD_CASES)("%s", async (_, bytes, status, reason) => {
    const before = captured.length;
    const text = await rawAndClose(bytes);
    expect(text).toStartWith(`HTTP/1.1 ${status} `);
    expect(text).toContain(reason);
    expect(text.toLowerCase()).toContain("connection: close");
    await Bun.sleep(50);
    expect(captured.length).toBe(before); // not even a connection to the backend
  });

  const CH = `${H}Transfer-Encoding: chunked\r\n\r\n`;
  // Rejected in the chunked body. The head and the chunks before the fault are sent first and reach
  // the backend (they were validated); then the faulty bytes, which must not reach it: the proxy
  // answers 400, closes the client and the backend connection.
  const BODY_CASES: [string, string, string, string][] = [
    ["bare LF in chunk framing", "5\r\nhello\r\n", "3\nabc\r\n0\r\n\r\n", "bare_lf_in_chunk"],
    ["a chunk size that is not hex", "5\r\nhello\r\n", "zz\r\n", "invalid_chunk_size"],
    ["a chunk size over 64 bits", "5\r\nhello\r\n", "10000000000000000\r\n", "chunk_size_overflow"],
    ["CR inside a chunk extension", "", "5;a\rb\r\nhello\r\n0\r\n\r\n", "bare_cr_in_chunk"],
    ["LF inside a chunk extension", "", "5;a\nb\r\nhello\r\n0\r\n\r\n", "bare_lf_in_chunk"],
    ["no CRLF after the chunk data", "5\r\nhello", "XX0\r\n\r\n", "missing_crlf_after_chunk_data"],
  ];
  test.each(BODY_CASES)("%s", async (_, valid, bad, reason) => {
    const before = captured.length;
    const c = await raw();
    c.write(CH + valid);
    await eventually(() => captured.length === before + 1 && dec.decode(Buffer.concat(captured[before]!)).endsWith("\r\n\r\n" + valid), 3000, "the validated bytes at the backend");
    const backend = captured[before]!;
    const got = dec.decode(Buffer.concat(backend));
    expect(got).toStartWith("POST /x HTTP/1.1\r\nHost: capture.test\r\nTransfer-Encoding: chunked\r\n");
    c.write(bad);
    await Promise.race([c.closed, Bun.sleep(5000)]);
    expect(c.isClosed()).toBe(true);
    expect(c.text()).toStartWith("HTTP/1.1 400 Bad Request");
    expect(c.text()).toContain(reason);
    await eventually(() => capturedClosed.has(backend), 3000, "the backend connection closed");
    expect(dec.decode(Buffer.concat(backend))).toBe(got); // not one byte of the faulty part
  });

  test("a head over maxHeaderBytes gets 431", async () => {
    const text = await rawAndClose(`GET / HTTP/1.1\r\nHost: a.test\r\nX-Big: ${"a".repeat(5000)}\r\n\r\n`);
    expect(text).toStartWith("HTTP/1.1 431 ");
    expect(text).toContain("header_too_large");
  });

  test("more header lines than maxHeaders gets 431", async () => {
    let h = "GET / HTTP/1.1\r\nHost: a.test\r\n";
    for (let i = 0; i < 25; i++) h += `X-${i}: v\r\n`;
    const text = await rawAndClose(h + "\r\n");
    expect(text).toStartWith("HTTP/1.1 431 ");
    expect(text).toContain("too_many_headers");
  });

  test("a bad head after a good one on the same connection: the first is answered, the second refused", async () => {
    const text = await rawAndClose("GET /ok HTTP/1.1\r\nHost: a.test\r\n\r\nGET /bad HTTP/1.1\r\nHost: a.test\r\nX: a\rb\r\n\r\n");
    expect(text).toContain("alpha GET /ok\n");
    expect(text).toContain("HTTP/1.1 400 Bad Request");
    expect(text).toContain("bare_cr");
  });
});
