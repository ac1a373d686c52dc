/**
 * Fuzz the MySQL wire layers (src/mysql/): the packet framer over whole streams, and every codec
 * over the payloads it frames.
 *
 *   node_modules/.bin/bun bench/fuzz/mysql.ts [inputs=1000000] [seed=1]
 *
 * Inputs are mutations of the captured MariaDB sessions (test/fixtures/mysql-*: greetings,
 * HandshakeResponse41 from the mariadb client and PyMySQL, SSLRequest, AuthSwitchRequest, OK, ERR,
 * result sets), packet-shaped tokens, and random bytes. Invariants checked for every input:
 * - nothing throws (the builders' documented RangeErrors aside);
 * - the messages framed are the same whether the stream arrives whole, cut at random points, or
 *   (one input in eight) a byte at a time; bounded: a message never passes the bound, a frame
 *   never claims more bytes than are there, and what stays unframed is less than one message;
 * - codecs: a payload that parses builds back to bytes that parse to the same value (after
 *   one normalisation: absent optional fields come back empty), and building that again gives the
 *   same bytes; length-encoded integers round-trip.
 * Prints "N inputs, F failures, T s" and exits 1 on any failure.
 */
import { readFileSync } from "node:fs";
import { join as joinPath } from "node:path";
import { parseAuthReply } from "../../src/mysql/auth-packets.ts";
import { CLIENT_CONNECT_ATTRS, CLIENT_CONNECT_WITH_DB, CLIENT_PLUGIN_AUTH, CLIENT_ZSTD_COMPRESSION_ALGORITHM, has } from "../../src/mysql/capabilities.ts";
import { buildHandshakeResponse41, parseClientHandshake, type HandshakeResponse41 } from "../../src/mysql/handshake-response.ts";
import { buildInitialHandshake, parseInitialHandshake } from "../../src/mysql/initial-handshake.ts";
import { frameMessage, MAX_PACKET_PAYLOAD, messagePayload, PACKET_HEADER_BYTES } from "../../src/mysql/packet-framer.ts";
import { PayloadReader } from "../../src/mysql/payload-reader.ts";
import { PayloadWriter, toPackets } from "../../src/mysql/payload-writer.ts";
import { parseEof, parseErr, parseOk } from "../../src/mysql/response-packets.ts";
import { hex, join, mutate, oneBytePieces, randomSplits, Rng, fuzzMain } from "./byte-mutations.ts";

/** Before routing the proxy accepts small messages only; small here so fuzzed headers hit it. */
const MAX_MESSAGE = 4096;

function fixture(name: string): Uint8Array {
  const text = readFileSync(joinPath(import.meta.dir, "../../test/fixtures", `${name}.hex`), "utf8").replace(/\s+/g, "");
  return new Uint8Array(Buffer.from(text, "hex"));
}

const CASES = ["native", "wrongpw", "nodb", "switchnative", "ed25519", "pymysql", "ssl"];
const SEEDS = CASES.flatMap((c) => [fixture(`mysql-${c}-client`), fixture(`mysql-${c}-server`)]);
/** The seeds cut into messages, so a payload can be mutated and framed again with a right header. */
const SEED_MESSAGES: { sequenceId: number; payload: Uint8Array }[][] = SEEDS.map((stream) => {
  const out: { sequenceId: number; payload: Uint8Array }[] = [];
  for (let at = 0; at < stream.length;) {
    const f = frameMessage(stream, at, 1 << 30);
    if (f.kind !== "message") throw new Error("a seed does not frame");
    out.push({ sequenceId: f.sequenceId, payload: messagePayload(stream, at, f) });
    at += f.size;
  }
  return out;
});
const TOKENS = [
  [0, 0, 0, 0], [1, 0, 0, 1], [0xff, 0xff, 0xff, 0], [0xff, 0xff, 0xff, 7], [0xfb], [0xfc, 0xff], [0xfd, 0, 0, 1], [0xfe], [0xff], [0],
  [0xfe, 0, 0, 2, 0], [0x23], [0x0a], [0x01, 0x03], [0x01, 0x04], [0x02], [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
].map((t) => new Uint8Array(t));

type Trace = string[];

/** Frame a stream the way a session reads it (one queue, pieces appended); throws on a broken invariant. */
export function driveFramer(pieces: readonly Uint8Array[]): { trace: Trace; payloads: Uint8Array[] } {
  let held: Uint8Array = new Uint8Array(0);
  const trace: Trace = [];
  const payloads: Uint8Array[] = [];
  for (const piece of pieces) {
    held = join(held, piece);
    for (;;) {
      const f = frameMessage(held, 0, MAX_MESSAGE);
      if (f.kind === "need-more") break;
      if (f.kind === "error") {
        trace.push(`error ${f.reason}`);
        return { trace, payloads };
      }
      if (f.size > held.length || f.payloadLength > MAX_MESSAGE || f.size !== f.payloadLength + f.packets * PACKET_HEADER_BYTES) throw new Error(`bad frame ${JSON.stringify(f)}`);
      const payload = messagePayload(held, 0, f);
      trace.push(`message ${f.sequenceId} ${f.packets} ${hex(payload)}`);
      payloads.push(payload);
      held = held.subarray(f.size);
    }
    if (held.length >= MAX_MESSAGE + 4 * 2) throw new Error(`holding ${held.length} unframed bytes`);
  }
  trace.push(`left ${held.length}`);
  return { trace, payloads };
}

const canonical = (v: unknown) => JSON.stringify(v, (_, x) => (x instanceof Uint8Array ? hex(x) : x instanceof Map ? [...x] : x));

/** What a parse gives back once absent optional fields have been written as empty. */
function normalise(r: HandshakeResponse41): HandshakeResponse41 {
  const caps = r.capabilities;
  return {
    ...r,
    database: has(caps, CLIENT_CONNECT_WITH_DB) ? r.database ?? "" : null,
    authPluginName: has(caps, CLIENT_PLUGIN_AUTH) ? r.authPluginName ?? "" : null,
    attributes: has(caps, CLIENT_CONNECT_ATTRS) ? r.attributes ?? new Map() : null,
    zstdLevel: has(caps, CLIENT_ZSTD_COMPRESSION_ALGORITHM) ? r.zstdLevel ?? 3 : null,
  };
}

/** Every codec over one payload. */
export function checkCodecs(payload: Uint8Array, caps: number): void {
  const hello = parseClientHandshake(payload);
  if (hello.kind === "response41") {
    const built = buildHandshakeResponse41(hello.response);
    const again = parseClientHandshake(built);
    if (again.kind !== "response41" || canonical(again.response) !== canonical(normalise(hello.response))) {
      throw new Error(`HandshakeResponse41 does not round-trip: ${canonical(hello.response)} -> ${canonical(again)}`);
    }
    if (hex(buildHandshakeResponse41(again.response)) !== hex(built)) throw new Error("HandshakeResponse41 build is not stable");
  }
  const greeting = parseInitialHandshake(payload);
  if (greeting.kind === "handshake") {
    let built: Uint8Array | null = null;
    try {
      built = buildInitialHandshake(greeting.handshake);
    } catch (e) {
      if (!(e instanceof RangeError)) throw e; // a scramble the proxy would never send (not 20 bytes, or with a NUL)
    }
    if (built !== null) {
      const again = parseInitialHandshake(built);
      if (again.kind !== "handshake" || canonical(again.handshake) !== canonical(greeting.handshake)) {
        throw new Error(`HandshakeV10 does not round-trip: ${canonical(greeting.handshake)} -> ${canonical(again)}`);
      }
    }
  }
  parseAuthReply(payload, caps);
  parseOk(payload, caps);
  parseErr(payload);
  parseEof(payload, caps);
}

function checkLenenc(rng: Rng): void {
  const bits = rng.int(54);
  const n = Math.floor((rng.u32() * 0x20_0000 + (rng.u32() >>> 11)) / 2 ** (53 - bits));
  const bytes = new PayloadWriter().lenencInt(n).payload();
  const r = new PayloadReader(bytes);
  if (r.lenencInt("n") !== n || r.left !== 0) throw new Error(`lenenc ${n} does not round-trip`);
}

/** One buffer for the continuation-packet checks: a full 0xFFFFFF packet, then room for a second. */
const LARGE = new Uint8Array(PACKET_HEADER_BYTES + MAX_PACKET_PAYLOAD + PACKET_HEADER_BYTES + 256);

/**
 * A message over 16 MiB: two packets, the second's id and length varied. Every prefix is
 * need-more or the whole's answer; without copying, so it can run often.
 */
function checkLargeMessage(rng: Rng, count: (k: string) => void): void {
  const first = rng.u32() & 0xff;
  LARGE.set([0xff, 0xff, 0xff, first], 0);
  const at = PACKET_HEADER_BYTES + MAX_PACKET_PAYLOAD;
  const second = rng.int(4) === 0 ? rng.u32() & 0xff : (first + 1) & 0xff;
  const length = rng.int(8) === 0 ? MAX_PACKET_PAYLOAD : rng.int(250);
  LARGE.set([length & 0xff, (length >>> 8) & 0xff, length >>> 16, second], at);
  const max = rng.pick([MAX_PACKET_PAYLOAD - 1, MAX_PACKET_PAYLOAD + 100, 1 << 30]);
  const whole = frameMessage(LARGE, 0, max);
  count(`large ${whole.kind === "error" ? whole.reason : whole.kind}`);
  if (whole.kind === "message") {
    if (whole.packets !== 2 || whole.payloadLength !== MAX_PACKET_PAYLOAD + length || whole.lastSequenceId !== second) throw new Error(`large frame ${JSON.stringify(whole)}`);
  }
  for (let k = 0; k < 4; k++) {
    const cut = rng.int(3) === 0 ? at + rng.int(PACKET_HEADER_BYTES + length + 1) : rng.int(LARGE.length + 1);
    const part = frameMessage(LARGE.subarray(0, cut), 0, max);
    const ok = part.kind === "need-more" || canonical(part) === canonical(whole);
    if (!ok || (whole.kind === "message" && cut >= whole.size && canonical(part) !== canonical(whole))) {
      throw new Error(`large prefix ${cut}: ${canonical(part)} vs whole ${canonical(whole)}`);
    }
  }
}

export interface FuzzReport {
  readonly inputs: number;
  readonly failures: number;
  readonly seconds: number;
  readonly examples: string[];
  /** How often each outcome came up (proof the inputs reach the codecs). */
  readonly seen: Record<string, number>;
}

export function fuzzMysql(inputs: number, seed = 1): FuzzReport {
  const rng = new Rng(seed);
  const start = performance.now();
  let failures = 0;
  const examples: string[] = [];
  const seen: Record<string, number> = {};
  const count = (k: string) => void (seen[k] = (seen[k] ?? 0) + 1);
  for (let i = 0; i < inputs; i++) {
    let input: Uint8Array;
    const source = rng.int(10);
    if (source < 4) {
      // Well framed, one payload mutated: reaches the codecs with near-valid packets.
      const messages = rng.pick(SEED_MESSAGES);
      const target = rng.int(messages.length);
      input = join(...messages.map((m, n) => {
        let payload = m.payload;
        if (n === target) for (let k = 1 + rng.int(3); k > 0; k--) payload = mutate(rng, payload, TOKENS);
        return toPackets(payload, m.sequenceId);
      }));
    } else if (source < 7) {
      input = rng.pick(SEEDS);
      for (let m = rng.int(4); m > 0; m--) input = mutate(rng, input, TOKENS);
    } else if (source < 8) {
      const parts: Uint8Array[] = [];
      for (let n = 1 + rng.int(12); n > 0; n--) parts.push(rng.pick(TOKENS));
      input = join(...parts);
    } else input = rng.bytes(rng.int(400));
    try {
      const whole = driveFramer([input]);
      for (const line of whole.trace) count(line.split(" ").slice(0, line.startsWith("error") ? 2 : 1).join(" "));
      const split = driveFramer(randomSplits(rng, input, 1 + rng.int(6)));
      if (split.trace.join("\n") !== whole.trace.join("\n")) throw new Error(`split trace differs\n${whole.trace.join("\n")}\n---\n${split.trace.join("\n")}`);
      if ((i & 7) === 0) {
        const bytewise = driveFramer(oneBytePieces(input));
        if (bytewise.trace.join("\n") !== whole.trace.join("\n")) throw new Error("byte-by-byte trace differs");
      }
      const caps = rng.int(2) === 0 ? 0xffffffff : rng.u32();
      for (const payload of whole.payloads) {
        checkCodecs(payload, caps);
        if (parseClientHandshake(payload).kind === "response41") count("response41");
        if (parseInitialHandshake(payload).kind === "handshake") count("handshake");
        count(`auth ${parseAuthReply(payload, caps).kind}`);
      }
      // A payload not framed by a header: the codecs alone, on mutated captured payloads too.
      const loose = rng.pick(whole.payloads.length > 0 ? whole.payloads : [input]);
      checkCodecs(rng.int(2) === 0 ? loose : mutate(rng, loose, TOKENS), caps);
      if ((i & 3) === 0) checkLenenc(rng);
      if ((i & 63) === 0) checkLargeMessage(rng, count);
    } catch (e) {
      failures++;
      if (examples.length < 5) examples.push(`seed ${seed} input ${i} ${hex(input)}\n${(e as Error).stack ?? e}`);
    }
  }
  return { inputs, failures, seconds: (performance.now() - start) / 1000, examples, seen };
}

if (import.meta.main) fuzzMain(fuzzMysql);
