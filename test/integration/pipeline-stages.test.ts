/**
 * The pipeline's stages that no built protocol uses yet (a greeting from the proxy, an upstream
 * handshake before the relay), tried in-process with a small line protocol of the test's own:
 *
 *   proxy → client   "HELLO\r\n"                       (greeting)
 *   client → proxy   "ROUTE <user>\r\n" then anything   (sniff: the line gives the fact `user`; the rest goes upstream)
 *   upstream → proxy "BANNER\r\n"                       (upstream handshake: swallowed, not relayed;
 *                                                        anything else fails the connection)
 * then the relay. Real sockets on loopback, the real pipeline, route table and access-log fields.
 */
import { afterEach, describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import { readConfig } from "../../src/config/schema.ts";
import { Metrics } from "../../src/control/metrics.ts";
import { ProxyState } from "../../src/proxy/runtime.ts";
import { bindAddress } from "../../src/listen/listeners.ts";
import type { BoundListener } from "../../src/listen/bound-listener.ts";
import { NEED_MORE, RELAY, ROUTE, refuse, type HandshakeStep, type ProtocolModule } from "../../src/protocol/module.ts";
import { protocolModule } from "../../src/protocol/registry.ts";
import { AccessLog, type AccessRecord } from "../../src/log/access-log.ts";
import { freePort } from "../helpers/peers.ts";
import { eventually } from "../helpers/proxy.ts";

const text = new TextEncoder();
const CRLF = "\r\n";

const LINE_PROTOCOL: ProtocolModule = {
  name: "tcp",
  speaksFirst: "proxy",
  greeting: () => text.encode(`HELLO${CRLF}`),
  newState: () => ({}),
  sniff(conn, collected, full) {
    const bytes = collected.bytes();
    const end = Buffer.from(bytes).indexOf(CRLF);
    if (end < 0) return full ? refuse("line_too_long") : NEED_MORE;
    const line = Buffer.from(bytes.subarray(0, end)).toString();
    if (!line.startsWith("ROUTE ")) return refuse("bad_command", line);
    conn.facts!.user = line.slice(6);
    const rest = bytes.subarray(end + 2);
    conn.upQueue().push(rest);
    conn.bytesIn += rest.length;
    return ROUTE;
  },
  upstreamHandshake: {
    start: () => NEED_MORE,
    data(conn, chunk): HandshakeStep {
      const s = Buffer.from(chunk).toString();
      if (!s.startsWith(`BANNER${CRLF}`)) return { kind: "fail", reason: "bad_banner", detail: s };
      const rest = chunk.subarray(8);
      if (rest.length > 0) {
        conn.downQueue().push(rest);
        conn.bytesOut += rest.length;
      }
      return RELAY;
    },
  },
};

/** The same protocol, whose handshake also asks the client once (as MySQL's relayed auth switch does). */
const ASKING_PROTOCOL: ProtocolModule = {
  ...LINE_PROTOCOL,
  upstreamHandshake: {
    start: () => NEED_MORE,
    data(conn, chunk): HandshakeStep {
      if (!Buffer.from(chunk).toString().startsWith(`BANNER${CRLF}`)) return { kind: "fail", reason: "bad_banner" };
      const ask = text.encode(`AUTH?${CRLF}`);
      conn.bytesOut += ask.length;
      conn.client.write(ask);
      return NEED_MORE;
    },
    clientData(conn, chunk): HandshakeStep {
      if (Buffer.from(chunk).toString() !== `yes${CRLF}`) return { kind: "fail", reason: "bad_answer" };
      conn.upQueue().push(chunk); // the answer goes to the upstream first, then the relay
      return RELAY;
    },
  },
};

interface Proxy { port: number; records: AccessRecord[]; metrics: Metrics; stop(): void }

async function proxyTo(backendPort: number, module: ProtocolModule = LINE_PROTOCOL): Promise<Proxy> {
  const port = await freePort();
  const { config, issues } = readConfig({
    listeners: [{ name: "line", listen: [`127.0.0.1:${port}`], protocol: "tcp", routes: [{ upstreams: [`127.0.0.1:${backendPort}`] }] }],
  }, "test", {});
  if (!config) throw new Error(JSON.stringify(issues));
  const metrics = new Metrics();
  const records: AccessRecord[] = [];
  const accessLog = Object.assign(new AccessLog(), { write: (r: AccessRecord) => void records.push(r) });
  const state = new ProxyState(config, metrics, null, accessLog, (p) => (p === "tcp" ? module : protocolModule(p)));
  const listener = state.listeners[0]!;
  const bound: BoundListener = bindAddress(listener.config.listen[0]!, listener, "line");
  return { port, records, metrics, stop: () => bound.stop(true) };
}

/** A backend that sends `banner` on connect, then echoes. */
function backend(banner: string, closeAfterBanner = false): { port: number; received: () => string; stop(): void } {
  let got = "";
  const server = Bun.listen({
    hostname: "127.0.0.1", port: 0,
    socket: {
      open(s) {
        s.write(banner);
        if (closeAfterBanner) s.end();
      },
      data(s, d) {
        got += Buffer.from(d).toString();
        s.write(d);
      },
    },
  });
  return { port: server.port, received: () => got, stop: () => server.stop(true) };
}

/** A client that records everything it receives and whether it was closed. */
async function client(port: number): Promise<{ socket: Socket; received: () => string; closed: () => boolean }> {
  let got = "";
  let closed = false;
  const socket = await Bun.connect({
    hostname: "127.0.0.1", port,
    socket: { data: (_s, d) => void (got += Buffer.from(d).toString()), close: () => void (closed = true), end: (s) => void s.end() },
  });
  return { socket, received: () => got, closed: () => closed };
}

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) f();
});

describe("a server-first protocol with an upstream handshake, on the one pipeline", () => {
  test("greeting first; the sniffed line routes; the banner is swallowed; then bytes flow both ways; facts reach the log", async () => {
    const b = backend(`BANNER${CRLF}welcome${CRLF}`);
    const p = await proxyTo(b.port);
    cleanup.push(b.stop, p.stop);
    const c = await client(p.port);
    await eventually(() => c.received() === `HELLO${CRLF}`);
    expect(c.received()).toBe(`HELLO${CRLF}`);
    c.socket.write(`ROUTE alice${CRLF}ping${CRLF}`);
    // What the backend sent after its banner reaches the client before the echo of what the client sent.
    await eventually(() => c.received() === `HELLO${CRLF}welcome${CRLF}ping${CRLF}`);
    expect(c.received()).toBe(`HELLO${CRLF}welcome${CRLF}ping${CRLF}`);
    expect(b.received()).toBe(`ping${CRLF}`);
    c.socket.end();
    await eventually(() => p.records.length === 1);
    expect(p.records.length).toBe(1);
    expect(p.records[0]).toMatchObject({ listener: "line", user: "alice", reason: expect.stringMatching(/^(done|client_closed)$/) });
  });

  test("a banner the module does not accept fails the connection with the module's reason", async () => {
    const b = backend(`NOPE${CRLF}`);
    const p = await proxyTo(b.port);
    cleanup.push(b.stop, p.stop);
    const c = await client(p.port);
    c.socket.write(`ROUTE bob${CRLF}secret`);
    await eventually(() => c.closed() === true);
    expect(c.closed()).toBe(true);
    expect(c.received()).toBe(`HELLO${CRLF}`); // nothing of the backend's reached the client
    expect(b.received()).toBe(""); // nothing of the client's reached the backend
    await eventually(() => p.records[0]?.reason === "bad_banner");
    expect(p.records[0]?.reason).toBe("bad_banner");
  });

  test("an upstream that closes during the handshake: the connection closes, named as such", async () => {
    const b = backend("", true);
    const p = await proxyTo(b.port);
    cleanup.push(b.stop, p.stop);
    const c = await client(p.port);
    c.socket.write(`ROUTE carol${CRLF}`);
    await eventually(() => c.closed() === true);
    expect(c.closed()).toBe(true);
    await eventually(() => p.records[0]?.reason === "upstream_closed_in_handshake");
    expect(p.records[0]?.reason).toBe("upstream_closed_in_handshake");
  });

  test("a sniff refusal is counted under the listener's protocol and closes before any upstream", async () => {
    const b = backend(`BANNER${CRLF}`);
    const p = await proxyTo(b.port);
    cleanup.push(b.stop, p.stop);
    const c = await client(p.port);
    c.socket.write(`HELO x${CRLF}`);
    await eventually(() => c.closed() === true);
    expect(c.closed()).toBe(true);
    await eventually(() => p.records[0]?.reason === "bad_command");
    expect(p.records[0]?.reason).toBe("bad_command");
    expect(p.metrics.toPrometheus()).toContain('switchyard_refused_total{listener="line",protocol="tcp",reason="bad_command"} 1');
  });

  test("a handshake that reads the client: its answer goes upstream first, then the relay", async () => {
    const b = backend(`BANNER${CRLF}`);
    const p = await proxyTo(b.port, ASKING_PROTOCOL);
    cleanup.push(b.stop, p.stop);
    const c = await client(p.port);
    c.socket.write(`ROUTE dave${CRLF}`);
    await eventually(() => c.received() === `HELLO${CRLF}AUTH?${CRLF}`);
    c.socket.write(`yes${CRLF}`);
    await eventually(() => b.received() === `yes${CRLF}`);
    c.socket.write(`ping${CRLF}`);
    await eventually(() => c.received() === `HELLO${CRLF}AUTH?${CRLF}yes${CRLF}ping${CRLF}`);
    expect(b.received()).toBe(`yes${CRLF}ping${CRLF}`);
  });

  test("a wrong answer during the handshake fails the connection; nothing reaches the upstream", async () => {
    const b = backend(`BANNER${CRLF}`);
    const p = await proxyTo(b.port, ASKING_PROTOCOL);
    cleanup.push(b.stop, p.stop);
    const c = await client(p.port);
    c.socket.write(`ROUTE eve${CRLF}`);
    await eventually(() => c.received() === `HELLO${CRLF}AUTH?${CRLF}`);
    c.socket.write(`no${CRLF}`);
    await eventually(() => c.closed());
    expect(b.received()).toBe("");
    await eventually(() => p.records[0]?.reason === "bad_answer");
  });
});
