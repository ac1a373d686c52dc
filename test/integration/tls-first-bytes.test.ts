/**
 * What becomes of a ClientHello on its way through a tls listener, run against both ways of
 * collecting it (test/helpers/sniff-paths.ts): peeked and left in the kernel, or read and replayed.
 * The upstream must get exactly the client's bytes either way, split hellos must route, refusals must
 * close the same way (FIN, with their reasons), fingerprints must be the same; and one test tells the
 * ways apart from outside, in the kernel: while the route is decided, the hello is still in the
 * proxy's receive queue (ss Recv-Q) when peeked, and gone from it when read. Captured hellos of real
 * clients (test/fixtures) are sent by a raw TCP client, so the bytes to expect are known.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Socket } from "bun";
import { eventually, startProxy, tempDir, writeConfig, type RunningProxy } from "../helpers/proxy.ts";
import { connect, serve, type Client, type Server } from "../helpers/peers.ts";
import { fixture, oneBytePerRecord } from "../helpers/fixtures.ts";
import { envFor, SNIFF_PATHS } from "../helpers/sniff-paths.ts";
import { sniffClientHello } from "../../src/sniff/tls-hello.ts";
import { fingerprints } from "../../src/sniff/fingerprint.ts";

const CURL = fixture("hello-curl"); // www.example.com
const OPENSSL = fixture("hello-openssl"); // api.example.com
const TLS12 = fixture("hello-openssl-tls12"); // no server name; its JA3 is blocked below
const AFTER = new TextEncoder().encode("\x17\x03\x03\x00\x05bytes after the hello");

function fingerprintsOf(hello: Uint8Array) {
  const r = sniffClientHello(hello);
  if (r.kind !== "match") throw new Error("not a hello");
  return fingerprints(r.facts);
}

/** An upstream that keeps every byte of each connection, in accept order, and says nothing. */
function recordingBackend(): Server & { readonly received: Uint8Array[] } {
  const received: Uint8Array[] = [];
  const server = serve({
    open(s: Socket<{ i: number }>) { s.data = { i: received.push(new Uint8Array(0)) - 1 }; },
    data(s: Socket<{ i: number }>, d: Uint8Array) { received[s.data.i] = new Uint8Array([...received[s.data.i]!, ...d]); },
    end(s: Socket<unknown>) { s.end(); },
  } as any);
  return Object.assign(server, { received });
}

/** Write `bytes` `chunk` at a time, one TCP segment each (Bun sets TCP_NODELAY; the pause flushes). */
async function trickle(c: Client, bytes: Uint8Array, chunk: number): Promise<void> {
  for (let i = 0; i < bytes.length; i += chunk) {
    c.socket.write(bytes.subarray(i, i + chunk));
    await Bun.sleep(1);
  }
}

/**
 * A resolver that holds a connection while the file `hold` exists in `dir`: it writes `held` and
 * answers (the recording backend) once `release` exists. Otherwise it leaves routing to the table.
 */
function holdingResolver(dir: string, backendPort: number): string {
  const path = join(dir, "resolver.ts");
  writeFileSync(path, `import { existsSync, writeFileSync } from "node:fs";
export default {
  async resolve(ctx) {
    if (!existsSync(${JSON.stringify(join(dir, "hold"))})) return null;
    writeFileSync(${JSON.stringify(join(dir, "held"))}, String(ctx.client.port));
    while (!existsSync(${JSON.stringify(join(dir, "release"))})) await Bun.sleep(10);
    return { endpoint: "127.0.0.1:${backendPort}", cache: false };
  },
};
`);
  return path;
}

/** A port nothing listens on (the kernel just gave it out and it was closed again). */
function closedPort(): number {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  return port;
}

/** Bytes waiting in the receive queue of the proxy's socket for the client on `clientPort`. */
function proxyRecvQ(proxyPort: number, clientPort: number): number {
  const out = Bun.spawnSync(["ss", "-tnH", "state", "established", `( sport = :${proxyPort} and dport = :${clientPort} )`], { stdout: "pipe" }).stdout.toString().trim();
  if (!out) throw new Error(`no proxy socket for client port ${clientPort}`);
  return Number(out.split(/\s+/)[0]);
}

for (const path of SNIFF_PATHS) describe(`ClientHello ${path.name}`, () => {
  let backend: ReturnType<typeof recordingBackend>;
  let dir: string;
  let config: Record<string, unknown>;
  let proxy: RunningProxy;
  const records = () => proxy.accessLog();
  /** The record of the connection from local port `port`. */
  const recordOf = (port: number) => records().find((r) => r.client === `127.0.0.1:${port}`);

  beforeAll(async () => {
    backend = recordingBackend();
    dir = tempDir();
    config = {
      resolver: holdingResolver(dir, backend.port),
      listeners: [{
        name: "edge", listen: "127.0.0.1:0", protocol: "tls", handshakeTimeoutMs: 3000, skipValidation: true,
        protection: { ja3Blocklist: [fingerprintsOf(TLS12).ja3] },
        routes: [{ name: "pass", upstreams: [`127.0.0.1:${backend.port}`] }],
      }],
    };
    proxy = await startProxy(["serve", "-c", writeConfig(config)], { env: envFor(path) });
  });

  afterAll(async () => {
    await proxy?.stop();
    backend?.stop();
  });

  test("passthrough: the upstream receives exactly the client's bytes, hello first; counted once; fingerprints as computed", async () => {
    const next = backend.received.length;
    const c = await connect(proxy.port);
    const port = c.socket.localPort;
    c.socket.write(CURL);
    await eventually(() => backend.received[next]?.length === CURL.length, 10_000, "the hello at the upstream");
    c.socket.write(AFTER);
    const want = new Uint8Array([...CURL, ...AFTER]);
    await eventually(() => backend.received[next]!.length === want.length, 10_000, "the bytes after it");
    expect(backend.received[next]).toEqual(want);
    c.socket.end();
    await eventually(() => recordOf(port) !== undefined, 10_000, "access-log record");
    const { ja3, ja4 } = fingerprintsOf(CURL);
    expect(recordOf(port)).toMatchObject({ tls: "passthrough", sni: "www.example.com", alpn: null, alpnOffered: ["h2", "http/1.1"], ja3, ja4, bytesIn: want.length, reason: "done" });
  });

  test("a hello one byte per TCP segment, and one split into one-byte records, routes; the upstream gets the same bytes", async () => {
    for (const bytes of [OPENSSL, oneBytePerRecord(OPENSSL)]) {
      const next = backend.received.length;
      const c = await connect(proxy.port);
      const port = c.socket.localPort;
      await trickle(c, bytes, bytes === OPENSSL ? 1 : 6); // split records: one record per segment
      await eventually(() => backend.received[next]?.length === bytes.length, 10_000, "the split hello at the upstream");
      expect(backend.received[next]).toEqual(bytes);
      c.socket.end();
      await eventually(() => recordOf(port) !== undefined, 10_000, "access-log record");
      expect(recordOf(port)).toMatchObject({ sni: "api.example.com", ja3: fingerprintsOf(OPENSSL).ja3, tls: "passthrough" });
    }
  }, 30_000);

  test("refusals close with FIN, not RST, and say why: blocked JA3, malformed, stalled, stopped half-way", async () => {
    const cases: [string, (c: Client) => Promise<void>][] = [
      ["ja3_blocked", async (c) => void c.socket.write(TLS12)],
      ["malformed_hello", async (c) => void c.socket.write(new Uint8Array([22, 3, 1, 0, 4, 2, 0, 0, 0]))],
      ["handshake_timeout", async (c) => void c.socket.write(CURL.subarray(0, 100))],
      ["incomplete_handshake", async (c) => { c.socket.write(CURL.subarray(0, 100)); await Bun.sleep(50); c.socket.end(); }],
    ];
    for (const [reason, act] of cases) {
      const c = await connect(proxy.port);
      const port = c.socket.localPort;
      await act(c);
      const closed = await c.closed;
      expect({ reason, error: closed.error }).toEqual({ reason, error: null }); // a reset would say ECONNRESET
      await eventually(() => recordOf(port) !== undefined, 10_000, `${reason} record`);
      expect(recordOf(port)).toMatchObject({ reason, upstream: null });
    }
  }, 30_000);

  test("an upstream that refuses: closed with upstream_refused, the hello counted in once, the client gets FIN", async () => {
    const refusing = await startProxy(["serve", "-c", writeConfig({ ...config, listeners: [{ ...(config.listeners as object[])[0], routes: [{ name: "gone", upstreams: [`127.0.0.1:${closedPort()}`] }] }] })], { env: envFor(path) });
    try {
      const c = await connect(refusing.port);
      c.socket.write(CURL);
      expect((await c.closed).error).toBeNull();
      await eventually(() => refusing.accessLog().length === 1, 10_000, "access-log record");
      expect(refusing.accessLog()[0]).toMatchObject({ reason: "upstream_refused", tls: "passthrough", bytesIn: CURL.length });
    } finally {
      await refusing.stop();
    }
  });

  test(`while the route is decided, the hello ${path.name === "peek" ? "is still in the kernel" : "has been read"}; then the upstream gets it`, async () => {
    writeFileSync(join(dir, "hold"), "");
    try {
      const next = backend.received.length;
      const c = await connect(proxy.port);
      const port = c.socket.localPort;
      c.socket.write(CURL);
      await eventually(() => existsSync(join(dir, "held")), 10_000, "the resolver to hold the connection");
      // Peeked: the proxy's socket still has every byte of the hello queued. Read: none.
      expect(proxyRecvQ(proxy.port, port)).toBe(path.name === "peek" ? CURL.length : 0);
      writeFileSync(join(dir, "release"), "");
      await eventually(() => backend.received[next]?.length === CURL.length, 10_000, "the held hello at the upstream");
      expect(backend.received[next]).toEqual(CURL);
      c.socket.end();
    } finally {
      for (const f of ["hold", "held", "release"]) rmSync(join(dir, f), { force: true });
    }
  });

  for (const engine of ["splice", "sockmap"] as const) {
    test(`relay ${engine} configured: the passthrough upstream gets the hello first (${path.name === "peek" ? "the engine takes the fds with it still queued" : "userspace: no library"})`, async () => {
      // SWITCHYARD_NATIVE_SOCKMAP: sockmap's opt-in (src/native/sockmap.ts); splice ignores it.
      const kernel = await startProxy(["serve", "-c", writeConfig({ ...config, relay: engine })], { env: { ...envFor(path), SWITCHYARD_NATIVE_SOCKMAP: "experimental" } });
      try {
        const next = backend.received.length;
        const c = await connect(kernel.port);
        c.socket.write(CURL);
        await Bun.sleep(20);
        c.socket.write(AFTER);
        const want = new Uint8Array([...CURL, ...AFTER]);
        await eventually(() => backend.received[next]?.length === want.length, 10_000, "the bytes at the upstream");
        expect(backend.received[next]).toEqual(want);
        c.socket.end();
        await eventually(() => kernel.accessLog().length === 1, 10_000, "access-log record");
        expect(kernel.accessLog()[0]).toMatchObject({ tls: "passthrough", relay: path.name === "peek" ? engine : "userspace", bytesIn: want.length });
      } finally {
        await kernel.stop();
      }
    });
  }
});
