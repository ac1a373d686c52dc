/**
 * Fuzz the mysql module's stages (src/mysql/client-intake.ts, src/mysql/upstream-auth.ts,
 * src/mysql/farewell.ts) over a stand-in connection (test/helpers/mysql-conn.ts): the client's
 * first packets as the sniff sees them, then a server's greeting, the client's answer to the
 * relayed AuthSwitchRequest and the rest of the server's authentication; one session in four on a
 * route with upstreamTls (an SSLRequest to the server, the start-tls step, then tlsStarted).
 *
 *   node_modules/.bin/bun bench/fuzz/mysql-session.ts [inputs=1000000] [seed=1]
 *
 * Inputs are mutations of the captured MariaDB sessions (test/fixtures/mysql-*), an SSLRequest
 * followed by a captured ClientHello, made-up caching_sha2_password exchanges, and random bytes.
 * Invariants checked for every input:
 * - nothing throws: every outcome is a step (need-more, route, terminate-tls, refuse, relay, fail, start-tls);
 * - the same steps, facts, bytes written to each side (the relay's share after the OK included) and farewell whether each stream arrives
 *   whole, cut at random points, or (one input in eight) a byte at a time;
 * - bounded: the module's queues never pass their limit, and a farewell is a whole ERR packet.
 * Prints "N inputs, F failures, T s" and exits 1 on any failure.
 */
import { readFileSync } from "node:fs";
import { join as joinPath } from "node:path";
import { ByteQueue } from "../../src/net/byte-queue.ts";
import type { HandshakeStep, SniffStep } from "../../src/protocol/module.ts";
import { buildAuthMoreData } from "../../src/mysql/auth-packets.ts";
import { sniffClient } from "../../src/mysql/client-intake.ts";
import { mysqlFarewell } from "../../src/mysql/farewell.ts";
import { frameMessage } from "../../src/mysql/packet-framer.ts";
import { toPackets } from "../../src/mysql/payload-writer.ts";
import { MAX_AUTH_MESSAGE } from "../../src/mysql/state.ts";
import { MYSQL_UPSTREAM_AUTH } from "../../src/mysql/upstream-auth.ts";
import { fakeMysqlConn } from "../../test/helpers/mysql-conn.ts";
import { hex, join, mutate, oneBytePieces, randomSplits, Rng, fuzzMain } from "./byte-mutations.ts";

function fixture(name: string): Uint8Array {
  const text = readFileSync(joinPath(import.meta.dir, "../../test/fixtures", `${name}.hex`), "utf8").replace(/^#.*$/gm, "").replace(/\s+/g, "");
  return new Uint8Array(Buffer.from(text, "hex"));
}

/** The whole packets of a stream (a partial last one left out). */
function packets(stream: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 0; at < stream.length;) {
    const f = frameMessage(stream, at, 1 << 30);
    if (f.kind !== "message") break;
    out.push(stream.slice(at, at + f.size));
    at += f.size;
  }
  return out;
}

const CASES = ["native", "wrongpw", "nodb", "switchnative", "ed25519", "pymysql"];
const HELLO = fixture("hello-openssl");
/** Client first messages: each case's HandshakeResponse41, and an SSLRequest with a ClientHello after it. */
const CLIENT_FIRST = [...CASES.map((c) => packets(fixture(`mysql-${c}-client`))[0]!), join(packets(fixture("mysql-ssl-client"))[0]!, HELLO)];
/** Server streams: each case's greeting, and what the server said after the client's response. */
const SERVER_STREAMS = CASES.map((c) => packets(fixture(`mysql-${c}-server`)));
const SHA2_REPLIES = [
  join(toPackets(buildAuthMoreData(new Uint8Array([3])), 2), toPackets(new Uint8Array([0, 0, 0, 2, 0, 0, 0]), 3)),
  join(toPackets(buildAuthMoreData(new Uint8Array([4])), 2), toPackets(buildAuthMoreData(new TextEncoder().encode("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")), 4),
    toPackets(new Uint8Array([0, 0, 0, 2, 0, 0, 0]), 6)),
];
const ANSWERS = [toPackets(new Uint8Array(20).fill(7), 3), toPackets(new Uint8Array(0), 3), toPackets(new Uint8Array(32).fill(1), 4)];
const LATER_CLIENT = [toPackets(new Uint8Array([2]), 5), toPackets(new Uint8Array(256).fill(9), 7), toPackets(new TextEncoder().encode("pw\0"), 5)];
const TOKENS = [
  [0, 0, 0, 0], [1, 0, 0, 1], [0xff, 0xff, 0xff, 0], [0xfe], [0xff], [0], [0x0a], [0x01, 0x03], [0x01, 0x04], [0x02], [0x20, 0, 0, 1],
  [0x00, 0x08], [0xff, 0xff, 0xff, 0xff], [0x16, 0x03, 0x01],
].map((t) => new Uint8Array(t));

type Cut = (input: Uint8Array) => Uint8Array[];

/** Run one session with each stream cut by `cut`; the trace says everything the module did. */
export function driveSession(client: Uint8Array, server: Uint8Array, answer: Uint8Array, cut: Cut, withCert: boolean, tlsRoute = false): string[] {
  const f = fakeMysqlConn(withCert);
  if (tlsRoute) (f.conn as { route: unknown }).route = { config: { upstreamTls: { serverName: null, ca: null, verify: true } } };
  const trace: string[] = [];
  const collected = new ByteQueue(64 * 1024, "collector_full");
  let sniff: SniffStep = { kind: "need-more" };
  const pieces = cut(client);
  let used = 0;
  while (used < pieces.length) {
    if (!collected.push(pieces[used++]!)) {
      sniff = { kind: "refuse", reason: "collector_full" };
      break;
    }
    sniff = sniffClient(f.conn, f.state, collected, false);
    if (sniff.kind !== "need-more") break;
  }
  // Bytes after the response are refused by the sniff when they came in its read, and by the
  // handshake (the client may not speak before its AuthSwitchRequest) when they come later.
  if (sniff.kind === "refuse" && sniff.detail === "bytes after the handshake response") return [...trace, "refused: client bytes after its response"];
  const leftover = join(...pieces.slice(used));
  if (sniff.kind === "route" && leftover.length > 0) {
    MYSQL_UPSTREAM_AUTH.start(f.conn);
    const late = MYSQL_UPSTREAM_AUTH.clientData!(f.conn, leftover);
    if (late.kind !== "fail" && late.kind !== "need-more") throw new Error(`late client bytes gave ${JSON.stringify(late)}`);
    return [...trace, "refused: client bytes after its response"];
  }
  trace.push(`sniff ${JSON.stringify(sniff)} user=${f.conn.facts!.user} db=${f.conn.facts!.database} sni=${f.conn.facts!.sni} seq=${f.state.clientSeq}`);
  if (sniff.kind === "refuse") trace.push(`farewell ${farewellOf(f, sniff.reason)}`);
  if (sniff.kind !== "route") return trace;
  let step: HandshakeStep = MYSQL_UPSTREAM_AUTH.start(f.conn);
  const feed = (bytes: Uint8Array, side: "server" | "client") => {
    for (const piece of cut(bytes)) {
      if (step.kind === "relay" && side === "server") {
        f.down.push(piece.slice()); // what the relay would deliver after the handshake's last read
        continue;
      }
      if (step.kind !== "need-more") return;
      step = side === "server" ? MYSQL_UPSTREAM_AUTH.data(f.conn, piece.slice()) : MYSQL_UPSTREAM_AUTH.clientData!(f.conn, piece.slice());
      if (f.state.fromServer.size > f.state.fromServer.limit || f.state.fromClient.size > f.state.fromClient.limit) throw new Error("a queue passed its limit");
    }
  };
  // The greeting first (up to the first whole message), then the client's answer, then the rest.
  const g = frameMessage(server, 0, 1 << 30);
  const split = g.kind === "message" ? g.size : server.length;
  feed(server.subarray(0, split), "server");
  if (step.kind === "start-tls") {
    // The pipeline upgrades the socket; the module goes on once the TLS handshake succeeded.
    trace.push(`start-tls toServer=${f.toServer.map(hex).join(",")}`);
    step = MYSQL_UPSTREAM_AUTH.tlsStarted!(f.conn);
  }
  trace.push(`after greeting ${JSON.stringify(step)} toClient=${f.toClient.map(hex).join(",")}`);
  feed(answer, "client");
  trace.push(`after answer ${JSON.stringify(step)} toServer=${f.toServer.map(hex).join(",")}`);
  feed(server.subarray(split), "server");
  trace.push(`end ${JSON.stringify(step)} toClient=${f.toClient.map(hex).join(",")} toServer=${f.toServer.map(hex).join(",")}`);
  if (step.kind === "relay") trace.push(`down ${hex(f.down.bytes())}`);
  if (step.kind === "fail") trace.push(`farewell ${farewellOf(f, step.reason)}`);
  return trace;
}

/** The farewell, checked to be one whole ERR packet. */
function farewellOf(f: ReturnType<typeof fakeMysqlConn>, reason: string): string {
  const bye = mysqlFarewell(f.conn, reason);
  if (bye === null) return "none";
  const m = frameMessage(bye, 0, MAX_AUTH_MESSAGE);
  if (m.kind !== "message" || m.size !== bye.length || bye[4] !== 0xff) throw new Error(`farewell is not one ERR packet: ${hex(bye)}`);
  return hex(bye);
}

export interface FuzzReport { inputs: number; failures: number; seconds: number; examples: string[]; seen: Record<string, number> }

export function fuzzMysqlSession(inputs: number, seed = 1): FuzzReport {
  const rng = new Rng(seed);
  const start = performance.now();
  let failures = 0;
  const examples: string[] = [];
  const seen: Record<string, number> = {};
  const count = (k: string) => void (seen[k] = (seen[k] ?? 0) + 1);
  for (let i = 0; i < inputs; i++) {
    let client = rng.pick(CLIENT_FIRST);
    let server = rng.int(4) === 0 ? join(rng.pick(SERVER_STREAMS)[0]!, rng.pick(SHA2_REPLIES)) : join(...rng.pick(SERVER_STREAMS));
    let answer = rng.int(3) === 0 ? join(rng.pick(ANSWERS), rng.pick(LATER_CLIENT)) : rng.pick(ANSWERS);
    const which = rng.int(8);
    if (which < 2) client = mutate(rng, client, TOKENS);
    else if (which < 4) server = mutate(rng, server, TOKENS);
    else if (which < 5) answer = mutate(rng, answer, TOKENS);
    else if (which < 6) client = rng.bytes(rng.int(200));
    else if (which < 7) server = join(server.subarray(0, rng.int(server.length)), rng.bytes(rng.int(60)));
    const withCert = rng.int(8) !== 0;
    const tlsRoute = rng.int(4) === 0;
    try {
      const whole = driveSession(client, server, answer, (b) => [b], withCert, tlsRoute);
      count(whole[0]!.split(" ")[1]!.slice(0, 40));
      const last = whole.find((l) => l.startsWith("end "));
      if (last) count(`end ${last.split(" ")[1]!.slice(0, 30)}`);
      if (whole.some((l) => l.startsWith("start-tls"))) count(last?.includes('"relay"') ? "start-tls then relay" : "start-tls");
      const split = driveSession(client, server, answer, (b) => randomSplits(rng, b, 1 + rng.int(6)), withCert, tlsRoute);
      if (split.join("\n") !== whole.join("\n")) throw new Error(`split trace differs\n${whole.join("\n")}\n---\n${split.join("\n")}`);
      if ((i & 7) === 0) {
        const bytewise = driveSession(client, server, answer, oneBytePieces, withCert, tlsRoute);
        if (bytewise.join("\n") !== whole.join("\n")) throw new Error(`byte-by-byte trace differs\n${whole.join("\n")}\n---\n${bytewise.join("\n")}`);
      }
    } catch (e) {
      failures++;
      if (examples.length < 5) examples.push(`seed ${seed} input ${i} client ${hex(client)} server ${hex(server)} answer ${hex(answer)}\n${(e as Error).stack ?? e}`);
    }
  }
  return { inputs, failures, seconds: (performance.now() - start) / 1000, examples, seen };
}

if (import.meta.main) fuzzMain(fuzzMysqlSession);
