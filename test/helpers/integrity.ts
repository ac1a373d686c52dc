/**
 * The relay-integrity suite: every path a connection's bytes can take through the proxy, each run
 * with the same exchanges between two Python peers (test/helpers/integrity-peer.py, which share no
 * code and no TLS library with the proxy). Each exchange checks the bytes both ways against their
 * seeded stream (a sha256 and the first differing offset), at the paces that expose ordering and
 * backpressure bugs: a slow reader on either side, a writer of small or odd-sized writes, large
 * writes, and a half-close where the path can carry one.
 *
 * A path is a proxy config for a backend port plus how each peer speaks (plain, TLS, PostgreSQL
 * startup then TLS). Protocols added later add their path here; a path left out can lose data unseen.
 */
import { resolve } from "node:path";
import { startProxy, writeConfig, type RunningProxy } from "./proxy.ts";
import type { Pki } from "./certs.ts";

const PEER = resolve(import.meta.dir, "integrity-peer.py");

/** How one side of an exchange behaves. */
export interface Pace {
  send: number;
  writeSize: number;
  writeDelayMs?: number;
  readSize?: number;
  readDelayMs?: number;
}

export interface Exchange {
  name: string;
  client: Pace;
  backend: Pace;
  /** The client sends, shuts its write side, and the backend answers only after that EOF. */
  halfClose?: boolean;
}

const MB = 1_000_000;

/**
 * The exchanges every path runs. The first is the reported reproduction: 6 MB in 8211-byte writes
 * to a backend reading 8 KiB per millisecond.
 */
export const EXCHANGES: Exchange[] = [
  { name: "client writes 8211-byte chunks, the backend reads 8 KiB per ms (both ways at once)",
    client: { send: 6 * MB, writeSize: 8211 }, backend: { send: 2 * MB, writeSize: 65536, readSize: 8192, readDelayMs: 1 } },
  { name: "the client reads slowly, the backend writes 256 KiB at a time",
    client: { send: 1 * MB, writeSize: 65536, readSize: 4096, readDelayMs: 1 }, backend: { send: 6 * MB, writeSize: 262144 } },
  { name: "small writes both ways (100 and 1 bytes), fast readers",
    client: { send: 200_000, writeSize: 100 }, backend: { send: 20_000, writeSize: 1 } },
  { name: "large writes both ways at once, fast readers",
    client: { send: 16 * MB, writeSize: 1 << 20 }, backend: { send: 16 * MB, writeSize: 1 << 20 } },
  { name: "half-close: the client's FIN arrives after all its bytes, the backend answers after it",
    client: { send: 3 * MB, writeSize: 8211 }, backend: { send: 3 * MB, writeSize: 65536, readSize: 8192, readDelayMs: 1 }, halfClose: true },
];

export interface PeerTls { ca: string; servername: string }

/** One path through the proxy. */
export interface RelayPath {
  name: string;
  /** The proxy's config (JSON) for a backend on this port. */
  config(backendPort: number): unknown;
  env?: Record<string, string>;
  /** How the client speaks to the proxy. */
  client: { tls?: PeerTls; postgres?: boolean; mysql?: boolean; proxyHeader?: boolean };
  /** How the backend speaks: TLS with this certificate, after skipping a PostgreSQL startup message or a PROXY header. */
  backend: { tls?: { cert: string; key: string }; postgres?: boolean; mysql?: boolean; proxyHeader?: boolean };
  /** The path cannot carry a half-close (a TLS client cannot shut its write side and read on). */
  noHalfClose?: boolean;
}

export interface SideResult { received: number; intact: boolean; eof: boolean; firstDiff: number | null; sendError?: string; recvError?: string }

export interface ExchangeResult { client: SideResult; backend: SideResult; log: Record<string, unknown>[]; stderr: string }

const CLIENT_SEED = 11;
const BACKEND_SEED = 22;

function paceArgs(p: Pace): string[] {
  return ["--send", String(p.send), "--write-size", String(p.writeSize), "--write-delay-ms", String(p.writeDelayMs ?? 0),
    "--read-size", String(p.readSize ?? 65536), "--read-delay-ms", String(p.readDelayMs ?? 0)];
}

async function lines(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void): Promise<void> {
  let buf = "";
  for await (const chunk of stream) {
    buf += new TextDecoder().decode(chunk);
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      onLine(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  }
}

/** Start the backend peer, the proxy, then the client; wait for both peers' verdicts. */
export async function runExchange(path: RelayPath, x: Exchange, timeoutMs = 90_000): Promise<ExchangeResult> {
  const half = x.halfClose === true;
  const backendArgs = ["/usr/bin/python3", PEER, "server", "--seed", String(BACKEND_SEED), "--peer-seed", String(CLIENT_SEED),
    ...paceArgs(x.backend), "--expect", String(x.client.send)];
  if (half) backendArgs.push("--want-eof", "--answer-after-eof");
  if (path.backend.tls) backendArgs.push("--tls", "--cert", path.backend.tls.cert, "--key", path.backend.tls.key);
  if (path.backend.postgres) backendArgs.push("--pg-server");
  if (path.backend.mysql) backendArgs.push("--my-server");
  if (path.backend.proxyHeader) backendArgs.push("--proxy-server");
  const backend = Bun.spawn(backendArgs, { stdout: "pipe", stderr: "pipe" });
  let proxy: RunningProxy | null = null;
  let client: ReturnType<typeof Bun.spawn> | null = null;
  const killer = setTimeout(() => { backend.kill(); client?.kill(); }, timeoutMs);
  try {
    const port = Promise.withResolvers<number>();
    let backendResult: SideResult | null = null;
    const backendDone = lines(backend.stdout as ReadableStream<Uint8Array>, (l) => {
      const v = JSON.parse(l);
      if ("port" in v) port.resolve(v.port);
      else backendResult = v;
    });
    void backend.exited.then(() => port.reject(new Error("backend peer exited before listening")));
    const backendPort = await port.promise;
    proxy = await startProxy(["serve", "-c", writeConfig(path.config(backendPort))], { env: path.env, binary: process.env.SWITCHYARD_BINARY });
    const clientArgs = ["/usr/bin/python3", PEER, "client", "--port", String(proxy.port), "--seed", String(CLIENT_SEED),
      "--peer-seed", String(BACKEND_SEED), ...paceArgs(x.client), "--expect", String(x.backend.send)];
    if (half) clientArgs.push("--half-close", "--want-eof");
    if (path.client.tls) clientArgs.push("--tls", "--ca", path.client.tls.ca, "--servername", path.client.tls.servername);
    if (path.client.postgres) clientArgs.push("--pg-client");
    if (path.client.mysql) clientArgs.push("--my-client");
    if (path.client.proxyHeader) clientArgs.push("--proxy-client");
    client = Bun.spawn(clientArgs, { stdout: "pipe", stderr: "pipe" });
    let clientResult: SideResult | null = null;
    await lines(client.stdout as ReadableStream<Uint8Array>, (l) => { clientResult = JSON.parse(l); });
    await backendDone;
    const clientErr = await new Response(client.stderr as ReadableStream).text();
    const backendErr = await new Response(backend.stderr).text();
    if (!clientResult || !backendResult) {
      throw new Error(`a peer gave no verdict (client exit ${await client.exited}, backend exit ${await backend.exited})\n` +
        `client: ${clientErr}\nbackend: ${backendErr}\nproxy: ${proxy.stderr()}`);
    }
    // The access-log record of the exchange; it is written at the end, after both peers are done.
    const deadline = Date.now() + 5_000;
    while (proxy.accessLog().length === 0 && Date.now() < deadline) await Bun.sleep(20);
    return { client: clientResult, backend: backendResult, log: proxy.accessLog(), stderr: proxy.stderr() };
  } finally {
    clearTimeout(killer);
    backend.kill();
    client?.kill();
    await proxy?.stop();
  }
}

/** The paths of this proxy: every relay engine for plain TCP, and every TLS and PostgreSQL route. */
export function relayPaths(pki: Pki): RelayPath[] {
  const proxyCert = pki.issue("integrity-proxy", ["edge.test"]);
  const backendCert = pki.issue("integrity-backend", ["backend.test"]);
  const edge: PeerTls = { ca: pki.ca, servername: "edge.test" };
  const backendName: PeerTls = { ca: pki.ca, servername: "backend.test" };
  const tcp = (relay: string) => (port: number) => ({
    relay, listeners: [{ name: "tcp", listen: "127.0.0.1:0", routes: [{ upstreams: [`127.0.0.1:${port}`] }] }],
  });
  const tcpWith = (relay: string, listener: Record<string, unknown>, route: Record<string, unknown>) => (port: number) => ({
    relay, listeners: [{ name: "tcp", listen: "127.0.0.1:0", ...listener, routes: [{ ...route, upstreams: [`127.0.0.1:${port}`] }] }],
  });
  const tls = (relay: string, route: Record<string, unknown>) => (port: number) => ({
    relay, listeners: [{ name: "tls", listen: "127.0.0.1:0", protocol: "tls", defaultCert: proxyCert,
      routes: [{ name: "r", ...route, upstreams: [`127.0.0.1:${port}`] }] }],
  });
  return [
    { name: "tcp, userspace relay", config: tcp("userspace"), client: {}, backend: {} },
    { name: "tcp, splice relay", config: tcp("splice"), client: {}, backend: {} },
    { name: "tcp, uring relay (native accept: the engine accepts, dials and relays)", config: tcp("uring"), client: {}, backend: {} },
    { name: "tcp, uring relay (Bun accepts and dials, handed over at connect)", config: tcp("uring"),
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", SWITCHYARD_NATIVE_ACCEPT: "off" }, client: {}, backend: {} },
    { name: "tcp, auto (native accept: uring)", config: tcp("auto"), client: {}, backend: {} },
    { name: "tcp, auto with Bun accepting (userspace, then splice mid-stream)", config: tcp("auto"),
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", SWITCHYARD_NATIVE_ACCEPT: "off" }, client: {}, backend: {} },
    { name: "tcp, the route sends a PROXY v2 header (Bun accepts), auto", config: tcpWith("auto", {}, { proxyProtocol: "v2" }), client: {}, backend: { proxyHeader: true } },
    { name: "tcp, the route sends a PROXY v1 header, uring at connect", config: tcpWith("uring", {}, { proxyProtocol: "v1" }), client: {}, backend: { proxyHeader: true } },
    { name: "tcp, the listener reads a PROXY v1 header (acceptProxyProtocol), auto", config: tcpWith("auto", { acceptProxyProtocol: { from: ["127.0.0.1/32"] } }, {}),
      client: { proxyHeader: true }, backend: {} },
    { name: "tls terminated, userspace relay", config: tls("userspace", { terminateTls: true }), client: { tls: edge }, backend: {}, noHalfClose: true },
    { name: "tls terminated, relay auto (stays in userspace)", config: tls("auto", { terminateTls: true }), client: { tls: edge }, backend: {}, noHalfClose: true },
    { name: "tls passthrough, userspace relay", config: tls("userspace", { terminateTls: false }), client: { tls: backendName }, backend: { tls: backendCert }, noHalfClose: true },
    { name: "tls passthrough, hello read and replayed (no native library)", config: tls("userspace", { terminateTls: false }),
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", SWITCHYARD_NATIVE: "off" }, client: { tls: backendName }, backend: { tls: backendCert }, noHalfClose: true },
    { name: "tls passthrough, splice relay", config: tls("splice", { terminateTls: false }), client: { tls: backendName }, backend: { tls: backendCert }, noHalfClose: true },
    { name: "tls passthrough, uring relay (the peeked hello read by the ring)", config: tls("uring", { terminateTls: false }), client: { tls: backendName }, backend: { tls: backendCert }, noHalfClose: true },
    { name: "tls terminated, chained into a tcp listener (no address of its own)", client: { tls: edge }, backend: {}, noHalfClose: true,
      config: (port) => ({ relay: "auto", listeners: [
        { name: "tls", listen: "127.0.0.1:0", protocol: "tls", defaultCert: proxyCert, routes: [{ name: "r", terminateTls: true, upstreams: [{ listener: "plain" }] }] },
        { name: "plain", listen: [], routes: [{ name: "p", upstreams: [`127.0.0.1:${port}`] }] }] }) },
    { name: "tls terminated, then upstream TLS", config: tls("userspace", { terminateTls: true, upstreamTls: { serverName: "backend.test", ca: pki.ca } }),
      client: { tls: edge }, backend: { tls: backendCert }, noHalfClose: true },
    { name: "postgres without TLS, relay auto", client: { postgres: true }, backend: { postgres: true },
      config: (port) => ({ relay: "auto", listeners: [{ name: "pg", listen: "127.0.0.1:0", protocol: "postgres",
        routes: [{ name: "integrity", match: { database: "integrity" }, upstreams: [`127.0.0.1:${port}`] }] }] }) },
    { name: "postgres with TLS terminated", client: { postgres: true, tls: edge }, backend: { postgres: true }, noHalfClose: true,
      config: (port) => ({ listeners: [{ name: "pg", listen: "127.0.0.1:0", protocol: "postgres", defaultCert: proxyCert,
        routes: [{ name: "integrity", match: { database: "integrity" }, upstreams: [`127.0.0.1:${port}`] }] }] }) },
    { name: "postgres with TLS terminated, splice configured (stays in userspace)", client: { postgres: true, tls: edge }, backend: { postgres: true }, noHalfClose: true,
      config: (port) => ({ relay: "splice", listeners: [{ name: "pg", listen: "127.0.0.1:0", protocol: "postgres", defaultCert: proxyCert,
        routes: [{ name: "integrity", match: { database: "integrity" }, upstreams: [`127.0.0.1:${port}`] }] }] }) },
    { name: "mysql after its relayed authentication, userspace relay", client: { mysql: true }, backend: { mysql: true },
      config: (port) => ({ relay: "userspace", listeners: [{ name: "my", listen: "127.0.0.1:0", protocol: "mysql",
        routes: [{ name: "integrity", match: { database: "integrity" }, upstreams: [`127.0.0.1:${port}`] }] }] }) },
    { name: "mysql after its relayed authentication, splice relay", client: { mysql: true }, backend: { mysql: true },
      config: (port) => ({ relay: "splice", listeners: [{ name: "my", listen: "127.0.0.1:0", protocol: "mysql",
        routes: [{ name: "integrity", match: { database: "integrity" }, upstreams: [`127.0.0.1:${port}`] }] }] }) },
    { name: "mysql, relay auto (userspace, then splice mid-stream)", client: { mysql: true }, backend: { mysql: true },
      config: (port) => ({ relay: "auto", listeners: [{ name: "my", listen: "127.0.0.1:0", protocol: "mysql",
        routes: [{ name: "integrity", match: { database: "integrity" }, upstreams: [`127.0.0.1:${port}`] }] }] }) },
    { name: "mysql with TLS terminated (SSLRequest to the proxy), plaintext upstream", client: { mysql: true, tls: edge }, backend: { mysql: true }, noHalfClose: true,
      config: (port) => ({ listeners: [{ name: "my", listen: "127.0.0.1:0", protocol: "mysql", defaultCert: proxyCert,
        routes: [{ name: "integrity", match: { database: "integrity" }, upstreams: [`127.0.0.1:${port}`] }] }] }) },
    { name: "mysql with TLS terminated, then upstreamTls to the server", client: { mysql: true, tls: edge }, backend: { mysql: true, tls: backendCert }, noHalfClose: true,
      config: (port) => ({ listeners: [{ name: "my", listen: "127.0.0.1:0", protocol: "mysql", defaultCert: proxyCert,
        routes: [{ name: "integrity", match: { database: "integrity" }, upstreams: [`127.0.0.1:${port}`], upstreamTls: { serverName: "backend.test", ca: pki.ca } }] }] }) },
    { name: "mysql in plain text to the proxy, upstreamTls to the server", client: { mysql: true }, backend: { mysql: true, tls: backendCert }, noHalfClose: true,
      config: (port) => ({ listeners: [{ name: "my", listen: "127.0.0.1:0", protocol: "mysql",
        routes: [{ name: "integrity", match: { database: "integrity" }, upstreams: [`127.0.0.1:${port}`], upstreamTls: { serverName: "backend.test", ca: pki.ca } }] }] }) },
  ];
}
