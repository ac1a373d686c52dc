/**
 * 100 MB chunked bodies both ways through the http listener, byte-exact by sha256, each with a slow
 * reader on the far side: the upload's backend (python3, raw socket, test/helpers/http-bulk.py
 * hash-server) hashes the decoded request body pausing 10 ms every 256 KiB; the download's backend is
 * Bun.serve streaming uneven chunks, its client (python3, raw socket, test/helpers/http-bulk.py, 64 KiB
 * receive buffer) decodes the chunked response pausing 10 ms every 256 KiB. The proxy must pass the
 * slowness back to the sender rather than buffer: its resident memory is sampled during each
 * transfer and must stay within 64 MiB of what it was before. The same for an upgraded connection
 * (a tunnel after 101): 50 MB each way at once, the client reading slowly.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { eventually, rssOf, startProxy, tempDir, writeConfig, type RunningProxy } from "../helpers/proxy.ts";
import { writeAll } from "../helpers/peers.ts";

const SIZE = 100 * 1000 * 1000;
const BULK = join(import.meta.dir, "../helpers/http-bulk.py");
const DATA = randomBytes(SIZE);
const DATA_SHA = createHash("sha256").update(DATA).digest("hex");
const PAUSE_EVERY = 256 * 1024;
const PAUSE_MS = 10;
const RSS_GROWTH_BOUND = 64 * 1024 * 1024;

let backend: ReturnType<typeof Bun.serve>;
let hashServer: import("bun").Subprocess;
/** Answers an upgrade with 101, then sends TUNNEL_DATA and hashes what it receives (a raw Bun server). */
let tunnelServer: import("bun").TCPSocketListener<{ buf: string; upgraded: boolean }>;
const TUNNEL_SIZE = 50 * 1000 * 1000;
const TUNNEL_DATA = DATA.subarray(0, TUNNEL_SIZE);
const TUNNEL_SHA = createHash("sha256").update(TUNNEL_DATA).digest("hex");
let tunnelReceived = { n: 0, hash: createHash("sha256") };
let proxy: RunningProxy;
let file: string;

beforeAll(async () => {
  file = join(tempDir(), "upload.bin");
  writeFileSync(file, DATA);
  hashServer = Bun.spawn(["/usr/bin/python3", BULK, "hash-server", String(PAUSE_MS)], { stdout: "pipe", stderr: "inherit" });
  const reader = (hashServer.stdout as ReadableStream<Uint8Array>).getReader();
  const hashPort = Number(new TextDecoder().decode((await reader.read()).value).trim());
  reader.releaseLock();
  tunnelServer = Bun.listen<{ buf: string; upgraded: boolean }>({
    hostname: "127.0.0.1", port: 0,
    socket: {
      open(s) { s.data = { buf: "", upgraded: false }; },
      data(s, d) {
        if (s.data.upgraded) {
          tunnelReceived.n += d.length;
          tunnelReceived.hash.update(d);
          return;
        }
        s.data.buf += Buffer.from(d).toString("latin1");
        const end = s.data.buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        s.data.upgraded = true;
        const rest = Buffer.from(s.data.buf.slice(end + 4), "latin1");
        tunnelReceived.n += rest.length;
        tunnelReceived.hash.update(rest);
        s.write("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: bulk\r\n\r\n");
        void writeAll(s, TUNNEL_DATA);
      },
    },
  });
  backend = Bun.serve({
    hostname: "127.0.0.1", port: 0, idleTimeout: 60,
    fetch() {
      let at = 0;
      return new Response(new ReadableStream({
        pull(c) {
          if (at >= DATA.length) return c.close();
          const n = Math.min(65_536 + (at % 7919), DATA.length - at); // uneven chunk sizes
          c.enqueue(DATA.subarray(at, at + n));
          at += n;
        },
      }));
    },
  });
  proxy = await startProxy(["serve", "-c", writeConfig({
    log: { access: "stdout" },
    listeners: [{ name: "web", listen: "127.0.0.1:0", protocol: "http", idleTimeoutMs: 120_000,
      routes: [
        { name: "hash", match: { path: "/hash" }, upstreams: [`127.0.0.1:${hashPort}`], timeoutMs: 120_000 },
        { name: "tunnel", match: { path: "/tunnel" }, upstreams: [`127.0.0.1:${tunnelServer.port}`] },
        { name: "stream", upstreams: [`127.0.0.1:${backend.port}`], timeoutMs: 120_000 },
      ] }],
  })]);
});

afterAll(async () => {
  await proxy?.stop();
  backend?.stop(true);
  tunnelServer?.stop(true);
  if (hashServer && hashServer.exitCode === null) {
    process.kill(hashServer.pid, "SIGTERM");
    await hashServer.exited;
  }
});

/** Run python3 http-bulk.py with `args`, sampling the proxy's RSS until it exits; resolves with its output and the peak growth. */
async function bulk(args: string[]): Promise<{ out: string; growth: number }> {
  const before = rssOf(proxy.pid);
  let peak = before;
  const p = Bun.spawn(["/usr/bin/python3", BULK, ...args], { stdout: "pipe", stderr: "pipe" });
  const sampler = setInterval(() => { peak = Math.max(peak, rssOf(proxy.pid)); }, 50);
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  clearInterval(sampler);
  if (code !== 0) throw new Error(`http-bulk.py ${args.join(" ")} exited ${code}: ${err}`);
  return { out: out.trim(), growth: peak - before };
}

test("a 100 MB chunked upload reaches a slow-reading backend byte-exact, the proxy's memory bounded", async () => {
  const started = Date.now();
  const { out, growth } = await bulk(["upload", String(proxy.port), "bulk.test", file]);
  expect(out, JSON.stringify(proxy.accessLog().at(-1))).toBe(`HTTP/1.1 200 OK ${SIZE} ${DATA_SHA} te=chunked`);
  expect(growth).toBeLessThan(RSS_GROWTH_BOUND);
  // The backend's pauses alone take (SIZE / PAUSE_EVERY) × PAUSE_MS: the upload cannot have finished sooner.
  expect(Date.now() - started).toBeGreaterThan((SIZE / PAUSE_EVERY) * PAUSE_MS * 0.9);
  console.log(`upload: ${SIZE} bytes in ${Date.now() - started} ms, proxy RSS growth ${(growth / 1048576).toFixed(1)} MiB`);
}, 120_000);

test("a 100 MB chunked download reaches a slow-reading client byte-exact, the proxy's memory bounded", async () => {
  const started = Date.now();
  const { out, growth } = await bulk(["download", String(proxy.port), "bulk.test", String(PAUSE_MS)]);
  expect(out).toBe(`${SIZE} ${DATA_SHA}`);
  expect(growth).toBeLessThan(RSS_GROWTH_BOUND);
  console.log(`download: ${SIZE} bytes in ${Date.now() - started} ms, proxy RSS growth ${(growth / 1048576).toFixed(1)} MiB`);
}, 120_000);

test("an upgraded connection (101) relays 50 MB each way at once byte-exact, the client reading slowly, memory bounded", async () => {
  tunnelReceived = { n: 0, hash: createHash("sha256") };
  const started = Date.now();
  const { out, growth } = await bulk(["tunnel", String(proxy.port), String(TUNNEL_SIZE), String(PAUSE_MS)]);
  const [sentSha, n, gotSha] = out.split(" ");
  expect(`${n} ${gotSha}`).toBe(`${TUNNEL_SIZE} ${TUNNEL_SHA}`);
  await eventually(() => tunnelReceived.n >= TUNNEL_SIZE, 30_000, "the upstream received the client's bytes");
  expect(`${tunnelReceived.n} ${tunnelReceived.hash.digest("hex")}`).toBe(`${TUNNEL_SIZE} ${sentSha}`);
  expect(growth).toBeLessThan(RSS_GROWTH_BOUND);
  expect(Date.now() - started).toBeGreaterThan((TUNNEL_SIZE / PAUSE_EVERY) * PAUSE_MS * 0.9);
  console.log(`tunnel: ${TUNNEL_SIZE} bytes each way in ${Date.now() - started} ms, proxy RSS growth ${(growth / 1048576).toFixed(1)} MiB`);
}, 120_000);
