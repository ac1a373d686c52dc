/**
 * The mysql module's stages without sockets: its greeting, its sniff of the client's first packet
 * (src/mysql/client-intake.ts), the relayed authentication (src/mysql/upstream-auth.ts) and its
 * ERR farewells, over a stand-in connection that records what would be written to each side.
 * Real bytes come from test/fixtures/mysql-*.hex (captured from Debian 12's mariadbd 10.11.19 and
 * its clients on loopback, as test/unit/mysql-handshake.test.ts says); each stream is fed whole,
 * one byte at a time and split at every point, with the same result.
 */
import { describe, expect, test } from "bun:test";
import { ByteQueue } from "../../src/net/byte-queue.ts";
import type { HandshakeStep, SniffStep } from "../../src/protocol/module.ts";
import {
  CLIENT_COMPRESS, CLIENT_CONNECT_WITH_DB, CLIENT_DEPRECATE_EOF, CLIENT_PLUGIN_AUTH, CLIENT_PROTOCOL_41, CLIENT_QUERY_ATTRIBUTES,
  CLIENT_SECURE_CONNECTION, CLIENT_SESSION_TRACK, CLIENT_SSL, has,
} from "../../src/mysql/capabilities.ts";
import { sniffClient } from "../../src/mysql/client-intake.ts";
import { mysqlFarewell } from "../../src/mysql/farewell.ts";
import { PROXY_CAPABILITIES, proxyGreeting } from "../../src/mysql/greeting.ts";
import { buildHandshakeResponse41, parseClientHandshake, type HandshakeResponse41 } from "../../src/mysql/handshake-response.ts";
import { parseInitialHandshake } from "../../src/mysql/initial-handshake.ts";
import { frameMessage } from "../../src/mysql/packet-framer.ts";
import { toPackets } from "../../src/mysql/payload-writer.ts";
import { parseErr } from "../../src/mysql/response-packets.ts";
import { buildAuthMoreData, parseAuthReply } from "../../src/mysql/auth-packets.ts";
import { MYSQL_UPSTREAM_AUTH } from "../../src/mysql/upstream-auth.ts";
import { fixture } from "../helpers/fixtures.ts";
import { fakeMysqlConn, type FakeMysqlConn } from "../helpers/mysql-conn.ts";

/** A MySQL byte stream cut into its whole packets (header included); a partial last one is left out. */
function packets(stream: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 0; at < stream.length;) {
    const f = frameMessage(stream, at, 1 << 24);
    if (f.kind === "need-more") break;
    if (f.kind !== "message") throw new Error(f.kind);
    out.push(stream.slice(at, at + f.size));
    at += f.size;
  }
  return out;
}
const payloadOf = (packet: Uint8Array) => packet.subarray(4);
const seqOf = (packet: Uint8Array) => packet[3];
const concat = (...parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

type Fake = FakeMysqlConn;
const fakeConn = fakeMysqlConn;

/** Every way of cutting `bytes` into chunks this test uses: whole, one byte at a time, and two pieces at every point. */
function cuts(bytes: Uint8Array): Uint8Array[][] {
  const out: Uint8Array[][] = [[bytes], Array.from(bytes, (_, i) => bytes.subarray(i, i + 1))];
  for (let i = 1; i < bytes.length; i++) out.push([bytes.subarray(0, i), bytes.subarray(i)]);
  return out;
}

/** Sniff `chunks` the way the pipeline does: collect, ask, stop at the first answer that is not need-more. */
function sniffChunks(f: Fake, chunks: Uint8Array[]): SniffStep {
  const collected = new ByteQueue(1 << 16, "collector_full");
  let step: SniffStep = { kind: "need-more" };
  for (const c of chunks) {
    collected.push(c);
    step = sniffClient(f.conn, f.state, collected, false);
    if (step.kind !== "need-more") return step;
  }
  return step;
}

const nativeClient = packets(fixture("mysql-native-client")); // [HandshakeResponse41 seq 1, COM_QUERY]
const nativeServer = packets(fixture("mysql-native-server")); // [greeting seq 0, OK seq 2, result set…]
const wrongServer = packets(fixture("mysql-wrongpw-server")); // [greeting, ERR seq 2]
const sslClient = packets(fixture("mysql-ssl-client")); // [SSLRequest seq 1, …]
const hello = fixture("hello-openssl");

describe("the proxy's greeting", () => {
  test("a v10 handshake at sequence 0 with the conservative capabilities, a fresh NUL-free scramble and mysql_native_password", () => {
    const random = new Uint8Array(20).fill(0); // a zero byte must not reach the scramble
    for (const offerTls of [false, true]) {
      const bytes = proxyGreeting(42, random, offerTls);
      expect(seqOf(bytes)).toBe(0);
      const r = parseInitialHandshake(payloadOf(bytes));
      if (r.kind !== "handshake") throw new Error(r.kind);
      expect(r.handshake.capabilities).toBe((offerTls ? PROXY_CAPABILITIES | CLIENT_SSL : PROXY_CAPABILITIES) >>> 0);
      expect(r.handshake.authPluginName).toBe("mysql_native_password");
      expect(r.handshake.connectionId).toBe(42);
      expect(r.handshake.scramble.length).toBe(20);
      expect(r.handshake.scramble.includes(0)).toBe(false);
    }
  });

  test("no capability that changes the wire format and that the chosen server might lack", () => {
    for (const flag of [CLIENT_COMPRESS, CLIENT_DEPRECATE_EOF, CLIENT_SESSION_TRACK, CLIENT_QUERY_ATTRIBUTES]) expect(has(PROXY_CAPABILITIES, flag)).toBe(false);
    for (const flag of [CLIENT_PROTOCOL_41, CLIENT_SECURE_CONNECTION, CLIENT_PLUGIN_AUTH, CLIENT_CONNECT_WITH_DB]) expect(has(PROXY_CAPABILITIES, flag)).toBe(true);
  });
});

describe("sniff: the client's first packet", () => {
  const response = nativeClient[0]!;

  test("HandshakeResponse41 (mariadb CLI, captured): user and database become facts; route; nothing is sent on", () => {
    for (const chunks of cuts(response)) {
      const f = fakeConn();
      expect(sniffChunks(f, chunks)).toEqual({ kind: "route" });
      expect([f.conn.facts!.user, f.conn.facts!.database]).toEqual(["app", "alpha"]);
      expect(f.state.response?.user).toBe("app");
      expect(f.state.clientSeq).toBe(2);
      expect(f.toClient).toEqual([]);
    }
  });

  test("SSLRequest (captured) then the ClientHello in the same read or later: TLS is ended with the listener's certificate", () => {
    const bytes = concat(sslClient[0]!, hello);
    for (const chunks of cuts(bytes)) {
      const f = fakeConn();
      expect(sniffChunks(f, chunks)).toEqual({ kind: "terminate-tls" });
      expect(f.state.clientSeq).toBe(2);
      expect(f.state.phase).toBe("client-hello"); // the response comes next, over TLS
      expect(f.conn.facts!.sni).toBe("api.example.com");
    }
  });

  test("over TLS the response comes at sequence 2", () => {
    const f = fakeConn();
    expect(sniffChunks(f, [sslClient[0]!, hello])).toEqual({ kind: "terminate-tls" });
    f.conn.facts!.tls = "terminate";
    const over = concat(response.subarray(0, 3), new Uint8Array([2]), response.subarray(4));
    // The captured response has no CLIENT_SSL; a client on TLS sets it, which is fine inside TLS.
    expect(sniffChunks(f, [over])).toEqual({ kind: "route" });
    expect(f.state.clientSeq).toBe(3);
  });

  const refusals: [string, Uint8Array, boolean, string][] = [
    ["a sequence id other than 1", concat(response.subarray(0, 3), new Uint8Array([0]), response.subarray(4)), true, "sequence id 0, expected 1"],
    ["bytes after the response", concat(response, new Uint8Array([1, 0, 0, 0, 1])), true, "bytes after the handshake response"],
    ["an SSLRequest when no certificate was offered", sslClient[0]!, false, "SSLRequest, but the proxy offered no TLS"],
    ["CLIENT_SSL in a response outside TLS", withCapabilities(response, (c) => c | CLIENT_SSL), true, "CLIENT_SSL set outside TLS"],
    ["a pre-4.1 client", withCapabilities(response, (c) => c & ~CLIENT_PROTOCOL_41), true, "protocol_320_unsupported"],
  ];
  for (const [what, bytes, cert, detail] of refusals) {
    test(`refused: ${what}`, () => {
      expect(sniffChunks(fakeConn(cert), [bytes])).toEqual({ kind: "refuse", reason: "malformed_handshake", detail });
    });
  }

  test("refused with a reason of its own: a client without CLIENT_PLUGIN_AUTH cannot follow the auth switch", () => {
    const r = parseClientHandshake(payloadOf(response));
    if (r.kind !== "response41") throw new Error(r.kind);
    const old = toPackets(buildHandshakeResponse41({ ...r.response, capabilities: (r.response.capabilities & ~CLIENT_PLUGIN_AUTH) >>> 0 }), 1);
    const f = fakeConn();
    const step = sniffChunks(f, [old]);
    expect(step.kind === "refuse" && step.reason).toBe("auth_switch_unsupported");
    const err = parseErr(payloadOf(mysqlFarewell(f.conn, "auth_switch_unsupported")!));
    expect(err.kind === "err" && [err.err.code, err.err.sqlState]).toEqual([1251, "08004"]);
  });

  test("refused: an SSLRequest inside TLS", () => {
    const f = fakeConn();
    f.conn.facts!.tls = "terminate";
    expect(sniffChunks(f, [sslClient[0]!])).toEqual({ kind: "refuse", reason: "malformed_handshake", detail: "SSLRequest inside TLS" });
  });
});

function withCapabilities(packet: Uint8Array, change: (caps: number) => number): Uint8Array {
  const out = packet.slice();
  const view = new DataView(out.buffer);
  view.setUint32(4, change(view.getUint32(4, true)) >>> 0, true);
  return out;
}

/** A routed connection: the captured response sniffed, so the upstream handshake can run. */
function routed(): Fake {
  const f = fakeConn();
  if (sniffChunks(f, [nativeClient[0]!]).kind !== "route") throw new Error("not routed");
  return f;
}

/** Feed the server's chunks to the handshake until a step other than need-more. */
function fromServer(f: Fake, chunks: Uint8Array[]): HandshakeStep {
  let step: HandshakeStep = { kind: "need-more" };
  for (const c of chunks) {
    step = MYSQL_UPSTREAM_AUTH.data(f.conn, c.slice());
    if (step.kind !== "need-more") return step;
  }
  return step;
}

function fromClient(f: Fake, chunks: Uint8Array[]): HandshakeStep {
  let step: HandshakeStep = { kind: "need-more" };
  for (const c of chunks) {
    step = MYSQL_UPSTREAM_AUTH.clientData!(f.conn, c.slice());
    if (step.kind !== "need-more") return step;
  }
  return step;
}

const ANSWER = toPackets(new Uint8Array(20).fill(7), 3); // the client's answer to the switch, at sequence 3

describe("upstream handshake: the server's scramble relayed, the response rebuilt", () => {
  const greeting = nativeServer[0]!;
  const server = parseInitialHandshake(payloadOf(greeting));
  if (server.kind !== "handshake") throw new Error(server.kind);

  test("the server's greeting (MariaDB, captured) becomes an AuthSwitchRequest to the client at sequence 2, with its plugin and scramble", () => {
    for (const chunks of cuts(greeting)) {
      const f = routed();
      expect(MYSQL_UPSTREAM_AUTH.start(f.conn)).toEqual({ kind: "need-more" });
      expect(fromServer(f, chunks)).toEqual({ kind: "need-more" });
      expect(f.toClient.length).toBe(1);
      const sw = f.toClient[0]!;
      expect(seqOf(sw)).toBe(2);
      const r = parseAuthReply(payloadOf(sw), 0);
      expect(r.kind === "auth-switch" && [r.pluginName, hex(r.data)]).toEqual(["mysql_native_password", hex(concat(server.handshake.scramble, new Uint8Array([0])))]);
      expect(f.toServer).toEqual([]);
    }
  });

  test("the client's answer becomes a HandshakeResponse41 at sequence 1: its user, database and attributes, the answer as auth data, capabilities intersected without CLIENT_SSL", () => {
    const client = parseClientHandshake(payloadOf(nativeClient[0]!));
    if (client.kind !== "response41") throw new Error(client.kind);
    for (const chunks of cuts(ANSWER)) {
      const f = routed();
      MYSQL_UPSTREAM_AUTH.start(f.conn);
      fromServer(f, [greeting]);
      expect(fromClient(f, chunks)).toEqual({ kind: "need-more" });
      expect(f.toServer.length).toBe(1);
      expect(seqOf(f.toServer[0]!)).toBe(1);
      const sent = parseClientHandshake(payloadOf(f.toServer[0]!));
      if (sent.kind !== "response41") throw new Error(sent.kind);
      const r: HandshakeResponse41 = sent.response;
      expect([r.user, r.database, r.authPluginName, hex(r.authResponse)]).toEqual(["app", "alpha", "mysql_native_password", hex(new Uint8Array(20).fill(7))]);
      expect(r.attributes).toEqual(client.response.attributes);
      expect(r.capabilities).toBe(((client.response.capabilities & PROXY_CAPABILITIES & server.handshake.capabilities) | CLIENT_PLUGIN_AUTH) >>> 0);
      expect(has(r.capabilities, CLIENT_SSL)).toBe(false);
    }
  });

  test("user, database and attributes reach the server byte for byte, also when they are not UTF-8 (a latin1 client)", () => {
    const client = parseClientHandshake(payloadOf(nativeClient[0]!));
    if (client.kind !== "response41") throw new Error(client.kind);
    // "José" and "añejo" in latin1 (0xE9, 0xF1): not UTF-8, so the parsed strings hold U+FFFD.
    const latin1 = concat(payloadOf(nativeClient[0]!).subarray(0, 32), new Uint8Array([0x4a, 0x6f, 0x73, 0xe9, 0]),
      payloadOf(nativeClient[0]!).subarray(36));
    const patched = new Uint8Array(latin1);
    const at = Buffer.from(patched).indexOf("alpha");
    patched.set([0x61, 0xf1, 0x65, 0x6a, 0x6f], at);
    const f = fakeConn();
    expect(sniffChunks(f, [toPackets(patched, 1)])).toEqual({ kind: "route" });
    expect(f.conn.facts!.user).toBe("Jos\ufffd");
    MYSQL_UPSTREAM_AUTH.start(f.conn);
    fromServer(f, [greeting]);
    fromClient(f, [ANSWER]);
    const sent = payloadOf(f.toServer[0]!);
    expect(hex(sent.subarray(32, 37))).toBe("4a6f73e900");
    expect(Buffer.from(sent).includes(Buffer.from([0x61, 0xf1, 0x65, 0x6a, 0x6f, 0]))).toBe(true);
    // The attribute block is the client's, as sent.
    const attrs = Buffer.from(payloadOf(nativeClient[0]!)).subarray(Buffer.from(payloadOf(nativeClient[0]!)).indexOf("_os") - 2);
    expect(Buffer.from(sent).subarray(sent.length - attrs.length).equals(attrs)).toBe(true);
  });

  test("the server's OK (seq 2) goes to the client renumbered to 4, with what follows it, and the relay takes over", () => {
    const rest = concat(...nativeServer.slice(1)); // OK, then a result set the relay passes untouched
    for (const chunks of cuts(rest)) {
      const f = routed();
      MYSQL_UPSTREAM_AUTH.start(f.conn);
      fromServer(f, [greeting]);
      fromClient(f, [ANSWER]);
      expect(fromServer(f, chunks)).toEqual({ kind: "relay" });
      const queued = f.down.bytes().slice();
      // Queued: every byte fed up to the read that completed the OK (no later read is the handshake's).
      let fed = 0;
      for (const c of chunks) if ((fed += c.length) >= nativeServer[1]!.length) break;
      expect(queued.length).toBe(fed);
      const got = packets(queued);
      expect(seqOf(got[0]!)).toBe(4);
      expect(hex(payloadOf(got[0]!))).toBe(hex(payloadOf(nativeServer[1]!)));
      // After the OK nothing is rewritten: the relay owns the rest (whatever of it this read carried).
      expect(got.slice(1).map(hex)).toEqual(nativeServer.slice(2, 1 + got.length).map(hex));
    }
  });

  test("the OK and 512 KiB after it in one read (TLS delivers such reads): relayed whole, not refused as an oversized message, and counted", () => {
    const f = routed();
    MYSQL_UPSTREAM_AUTH.start(f.conn);
    fromServer(f, [greeting]);
    fromClient(f, [ANSWER]);
    const before = f.conn.bytesOut;
    const read = concat(nativeServer[1]!, new Uint8Array(512 * 1024).fill(7));
    expect(fromServer(f, [read])).toEqual({ kind: "relay" });
    expect(f.down.size).toBe(read.length);
    expect(f.conn.bytesOut - before).toBe(read.length);
  });

  test("an authentication message over 64 KiB is still refused, as soon as its header is in", () => {
    const f = routed();
    MYSQL_UPSTREAM_AUTH.start(f.conn);
    fromServer(f, [greeting]);
    fromClient(f, [ANSWER]);
    const header = new Uint8Array([0x01, 0x00, 0x02, 2]); // 128 KiB announced, sequence 2
    expect(fromServer(f, [header])).toMatchObject({ kind: "fail", reason: "upstream_bad_handshake" });
  });

  test("the server's ERR (a wrong password, captured) is the client's farewell, renumbered to 4; the reason names it", () => {
    for (const chunks of cuts(wrongServer[1]!)) {
      const f = routed();
      MYSQL_UPSTREAM_AUTH.start(f.conn);
      fromServer(f, [wrongServer[0]!]);
      fromClient(f, [ANSWER]);
      const step = fromServer(f, chunks);
      expect(step).toEqual({ kind: "fail", reason: "upstream_auth_refused", detail: "1045: Access denied for user 'app'@'localhost' (using password: YES)" });
      const bye = mysqlFarewell(f.conn, "upstream_auth_refused")!;
      expect(seqOf(bye)).toBe(4);
      expect(hex(payloadOf(bye))).toBe(hex(payloadOf(wrongServer[1]!)));
    }
  });

  test("caching_sha2_password's exchange is relayed both ways with sequence ids shifted (AuthMoreData, a public-key request, the key)", () => {
    const f = routed();
    MYSQL_UPSTREAM_AUTH.start(f.conn);
    fromServer(f, [greeting]);
    fromClient(f, [ANSWER]);
    expect(fromServer(f, [toPackets(buildAuthMoreData(new Uint8Array([4])), 2)])).toEqual({ kind: "need-more" }); // perform full auth
    expect(seqOf(f.toClient.at(-1)!)).toBe(4);
    expect(fromClient(f, [toPackets(new Uint8Array([2]), 5)])).toEqual({ kind: "need-more" }); // request the public key
    expect(seqOf(f.toServer.at(-1)!)).toBe(3);
    expect(hex(payloadOf(f.toServer.at(-1)!))).toBe("02");
    const pem = new TextEncoder().encode("-----BEGIN PUBLIC KEY-----\n…\n-----END PUBLIC KEY-----\n");
    fromServer(f, [toPackets(buildAuthMoreData(pem), 4)]);
    expect(seqOf(f.toClient.at(-1)!)).toBe(6);
    fromClient(f, [toPackets(new Uint8Array(256).fill(9), 7)]); // the encrypted password
    expect(seqOf(f.toServer.at(-1)!)).toBe(5);
    expect(fromServer(f, [toPackets(new Uint8Array([0, 0, 0, 2, 0, 0, 0]), 6)])).toEqual({ kind: "relay" });
    expect(seqOf(f.down.bytes())).toBe(8);
  });

  test("refused: a client answer at the wrong sequence id, a server speaking out of turn, a server greeting that is not v10", () => {
    const f = routed();
    MYSQL_UPSTREAM_AUTH.start(f.conn);
    fromServer(f, [greeting]);
    expect(fromClient(f, [toPackets(new Uint8Array(20), 4)])).toEqual({ kind: "fail", reason: "malformed_auth_response", detail: "sequence id 4, expected 3" });
    const g = routed();
    MYSQL_UPSTREAM_AUTH.start(g.conn);
    fromServer(g, [greeting]);
    expect(fromServer(g, [toPackets(new Uint8Array([0, 0, 0]), 1)])).toEqual({ kind: "fail", reason: "upstream_bad_handshake", detail: "server packet while client-answer" });
    const h = routed();
    MYSQL_UPSTREAM_AUTH.start(h.conn);
    expect(fromServer(h, [toPackets(new Uint8Array([9, 0]), 0)])).toEqual({ kind: "fail", reason: "upstream_bad_handshake", detail: "unsupported_protocol_version" });
  });

  test("a server that refuses before greeting (ERR instead of v10): its ERR is the farewell", () => {
    const f = routed();
    MYSQL_UPSTREAM_AUTH.start(f.conn);
    const err = toPackets(new Uint8Array([0xff, 0x10, 0x04, ...new TextEncoder().encode("Too many connections")]), 0);
    expect(fromServer(f, [err])).toEqual({ kind: "fail", reason: "upstream_refused_connection", detail: "1040: Too many connections" });
    const bye = mysqlFarewell(f.conn, "upstream_refused_connection")!;
    expect(seqOf(bye)).toBe(2);
  });
});

describe("upstream handshake with upstreamTls: SSLRequest, TLS, then the same exchange inside it", () => {
  const greeting = nativeServer[0]!; // MariaDB's greeting, with CLIENT_SSL
  /** Routed on a route that asks for TLS to its server. */
  function routedTls(): Fake {
    const f = routed();
    (f.conn as { route: unknown }).route = { config: { upstreamTls: { serverName: null, ca: null, verify: true } } };
    return f;
  }
  const withoutSsl = (packet: Uint8Array) => {
    const copy = packet.slice();
    const g = parseInitialHandshakeOrThrow(packet);
    // The low capability bytes follow version, NUL, id (4), scramble part 1 (8) and a filler.
    const at = 4 + 1 + g.serverVersion.length + 1 + 4 + 8 + 1;
    expect(copy[at]! | (copy[at + 1]! << 8)).toBe(g.capabilities & 0xffff);
    copy[at + 1]! &= ~(CLIENT_SSL >> 8);
    return copy;
  };

  test("the greeting gets an SSLRequest at sequence 1 (CLIENT_SSL, the client's character set) and the start-tls step; the client is told nothing yet", () => {
    for (const chunks of cuts(greeting)) {
      const f = routedTls();
      MYSQL_UPSTREAM_AUTH.start(f.conn);
      expect(fromServer(f, chunks)).toEqual({ kind: "start-tls" });
      expect(f.toClient).toEqual([]);
      expect(f.toServer.length).toBe(1);
      const req = f.toServer[0]!;
      expect([seqOf(req), req.length]).toEqual([1, 4 + 32]);
      const parsed = parseClientHandshake(payloadOf(req));
      if (parsed.kind !== "ssl-request") throw new Error(parsed.kind);
      expect(has(parsed.hello.capabilities, CLIENT_SSL)).toBe(true);
      expect(parsed.hello.characterSet).toBe(f.state.response!.characterSet);
    }
  });

  test("once TLS is up the client is asked (AuthSwitchRequest, seq 2); its answer goes out as a HandshakeResponse41 at sequence 2 with CLIENT_SSL; the OK (seq 3) reaches the client as 4", () => {
    const f = routedTls();
    MYSQL_UPSTREAM_AUTH.start(f.conn);
    fromServer(f, [greeting]);
    expect(MYSQL_UPSTREAM_AUTH.tlsStarted!(f.conn)).toEqual({ kind: "need-more" });
    expect(f.toClient.map(seqOf)).toEqual([2]);
    expect(fromClient(f, [ANSWER])).toEqual({ kind: "need-more" });
    const response = f.toServer[1]!;
    expect(seqOf(response)).toBe(2);
    const sent = parseClientHandshake(payloadOf(response));
    if (sent.kind !== "response41") throw new Error(sent.kind);
    expect(has(sent.response.capabilities, CLIENT_SSL)).toBe(true);
    expect(sent.response.user).toBe("app");
    const ok = toPackets(payloadOf(nativeServer[1]!), 3);
    expect(fromServer(f, [ok])).toEqual({ kind: "relay" });
    expect(seqOf(f.down.bytes())).toBe(4);
  });

  test("a greeting without CLIENT_SSL: refused (upstream_tls_unavailable), nothing sent to the server, an ERR for the client", () => {
    const f = routedTls();
    MYSQL_UPSTREAM_AUTH.start(f.conn);
    expect(fromServer(f, [withoutSsl(greeting)])).toEqual({ kind: "fail", reason: "upstream_tls_unavailable", detail: "127.0.0.1:3306: the greeting does not offer CLIENT_SSL" });
    expect(f.toServer).toEqual([]);
    const r = parseErr(payloadOf(mysqlFarewell(f.conn, "upstream_tls_unavailable")!));
    expect(r.kind === "err" && [r.err.code, r.err.sqlState, r.err.message]).toEqual([1105, "08S01",
      'switchyard: server 127.0.0.1:3306 for user "app" and database "alpha" cannot be reached over TLS as its route requires: it does not offer TLS (upstream_tls_unavailable)']);
  });

  test("plaintext bytes after the greeting, before TLS: refused rather than taken for TLS data", () => {
    const f = routedTls();
    MYSQL_UPSTREAM_AUTH.start(f.conn);
    expect(fromServer(f, [concat(greeting, toPackets(new Uint8Array([0, 0, 0, 2, 0, 0, 0]), 1))]))
      .toEqual({ kind: "fail", reason: "upstream_bad_handshake", detail: "bytes after the greeting, before TLS" });
  });

  test("a route without upstreamTls never asks for TLS, even with a server that offers it", () => {
    const f = routed();
    MYSQL_UPSTREAM_AUTH.start(f.conn);
    expect(fromServer(f, [greeting])).toEqual({ kind: "need-more" });
    expect(f.toServer).toEqual([]);
  });
});

function parseInitialHandshakeOrThrow(packet: Uint8Array) {
  const r = parseInitialHandshake(payloadOf(packet));
  if (r.kind !== "handshake") throw new Error(r.kind);
  return r.handshake;
}

describe("farewells", () => {
  const errOf = (b: Uint8Array | null) => {
    const r = parseErr(payloadOf(b!));
    if (r.kind !== "err") throw new Error(r.kind);
    return [seqOf(b!), r.err.code, r.err.sqlState, r.err.message];
  };

  test("before the client's response: nothing (it may be in its TLS handshake)", () => {
    expect(mysqlFarewell(fakeConn().conn, "no_route")).toBeNull();
  });

  test("no route, unreachable, anything else: an ERR at the client's next sequence id naming the reason", () => {
    const f = routed();
    expect(errOf(mysqlFarewell(f.conn, "no_route"))).toEqual([2, 1049, "42000", 'switchyard: no route for user "app" and database "alpha"']);
    expect(errOf(mysqlFarewell(f.conn, "upstream_refused"))).toEqual([2, 1105, "08S01", 'switchyard: server 127.0.0.1:3306 for user "app" and database "alpha" is unreachable (upstream_refused)']);
    expect(errOf(mysqlFarewell(f.conn, "connect_timeout"))[2]).toBe("08S01");
    expect(errOf(mysqlFarewell(f.conn, "resolver_timeout"))).toEqual([2, 1105, "HY000", "switchyard: connection refused by the proxy (resolver_timeout)"]);
    f.state.server = parseInitialHandshakeOrThrow(nativeServer[0]!); // once the server greeted, a timeout is the authentication's
    expect(errOf(mysqlFarewell(f.conn, "connect_timeout"))).toEqual([2, 1043, "08S01", "switchyard: authentication with server 127.0.0.1:3306 timed out (connect_timeout)"]);
    f.conn.facts!.database = null;
    expect(errOf(mysqlFarewell(f.conn, "no_route"))).toEqual([2, 1045, "28000", 'switchyard: no route for user "app" (no database)']);
  });
});
