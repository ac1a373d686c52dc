/**
 * Fuzz the SMTP wire layers (src/smtp/): the client stream (command framer, command parser, DATA
 * scanner, through SmtpClientReader as a session drives it) and the reply parser.
 *
 *   node_modules/.bin/bun bench/fuzz/smtp.ts [inputs=1000000] [seed=1]
 *
 * Inputs are mutations of the captured swaks/smtp-sink sessions (test/fixtures/smtp-*), sequences
 * of SMTP-shaped tokens, and random bytes. Invariants checked for every input:
 * - nothing throws;
 * - the events are the same whether the input arrives whole, cut at random points, or (for one
 *   input in eight) one byte at a time;
 * - bounded: after each read is drained the reader holds less than one command line (none inside
 *   a message); every command line is at most the limit and ends in CRLF; every relayed message
 *   ends in CRLF.CRLF, holds no bare CR or LF and no earlier terminator;
 * - replies: a prefix of a reply is need-more, the reply itself and anything longer parse the same,
 *   and `size` never passes the input.
 * Prints "N inputs, F failures, T s" and exits 1 on any failure.
 */
import { readFileSync } from "node:fs";
import { join as joinPath } from "node:path";
import { SmtpClientReader, type ClientEvent } from "../../src/smtp/client-reader.ts";
import { parseReply, replyExtent } from "../../src/smtp/reply.ts";
import { xtextDecode, xtextEncode } from "../../src/smtp/xclient.ts";
import { hex, join, mutate, oneBytePieces, randomSplits, Rng, fuzzMain } from "./byte-mutations.ts";

const LINE_LIMIT = 512;
const MAX_MESSAGE = 120; // small, so that some fuzzed messages pass it

function fixture(name: string): Uint8Array {
  const text = readFileSync(joinPath(import.meta.dir, "../../test/fixtures", `${name}.hex`), "utf8").replace(/\s+/g, "");
  return new Uint8Array(Buffer.from(text, "hex"));
}

const enc = new TextEncoder();
const CLIENT_SEEDS = ["smtp-swaks-plain-client", "smtp-swaks-pipeline-client", "smtp-swaks-xclient-client"].map(fixture);
const SERVER_SEEDS = ["smtp-sink-plain-server", "smtp-sink-pipeline-server", "smtp-sink-xclient-server"].map(fixture);
const TOKENS = [
  "\r\n", "\r", "\n", ".", "\r\n.\r\n", "\n.\n", "\r.\r", "\n.\r\n", "\r\n.\n", "..", " ", ":", "<", ">", "<>", "@", "\"",
  "EHLO x.example\r\n", "HELO [10.0.0.1]\r\n", "MAIL FROM:<a@b.example> SIZE=100 BODY=8BITMIME SMTPUTF8\r\n",
  "RCPT TO:<c@D.example>\r\n", "RCPT TO:<Postmaster>\r\n", "DATA\r\n", "BDAT 10 LAST\r\n", "RSET\r\n", "NOOP hi\r\n",
  "QUIT\r\n", "STARTTLS\r\n", "AUTH PLAIN\r\n", "XCLIENT ADDR=1.2.3.4\r\n", "VRFY x\r\n", "250-PIPELINING\r\n", "250 2.0.0 ok\r\n",
  "354 go\r\n", "A".repeat(600), "B".repeat(511), "\u00e9", "\u0000", "\x7f",
].map((t) => enc.encode(t));

/** The events of one drive, made comparable: message bytes are gathered per message. */
type Trace = string[];

/**
 * Feed `pieces` to a reader as a session would (DATA is answered 354 at once, a closing error
 * ends the session) and return the trace; throws on a broken invariant.
 */
export function driveClient(pieces: readonly Uint8Array[], total: number): Trace {
  const reader = new SmtpClientReader({ lineLimit: LINE_LIMIT, maxMessageBytes: MAX_MESSAGE, maxReadBytes: Math.max(total, 1) });
  const trace: Trace = [];
  let message: Uint8Array[] = [];
  for (const piece of pieces) {
    if (!reader.push(piece)) throw new Error("push refused within the read bound");
    for (;;) {
      const event: ClientEvent = reader.next();
      if (event.kind === "need-more") break;
      if (event.kind === "command") {
        const l = event.line;
        if (l.length > LINE_LIMIT || l[l.length - 2] !== 0x0d || l[l.length - 1] !== 0x0a) throw new Error(`bad command line ${hex(l)}`);
        trace.push(`cmd ${event.command.kind} ${JSON.stringify(event.command)} ${hex(l)}`);
        if (event.command.kind === "data") reader.startData();
      } else if (event.kind === "error") {
        trace.push(`err ${event.reason}`);
        if (event.closes) return trace;
      } else if (event.kind === "data") {
        message.push(event.bytes);
      } else {
        message.push(event.bytes);
        const all = join(...message);
        message = [];
        checkMessage(all);
        trace.push(`msg ${all.length} ${event.messageBytes} ${event.tooLarge} ${hex(all)}`);
      }
    }
    const bound = reader.inData ? 0 : LINE_LIMIT - 1;
    if (reader.pending > bound) throw new Error(`reader holds ${reader.pending} bytes after draining (bound ${bound})`);
  }
  trace.push(`end inData=${reader.inData} pending=${reader.pending} partial=${message.reduce((n, m) => n + m.length, 0)}`);
  return trace;
}

/** A relayed message ends in CRLF.CRLF, has no bare CR or LF, and no terminator before its end. */
function checkMessage(m: Uint8Array): void {
  const n = m.length;
  // The shortest message is ".\r\n" (empty body right after DATA's CRLF).
  if (n < 3 || m[n - 3] !== 0x2e || m[n - 2] !== 0x0d || m[n - 1] !== 0x0a) throw new Error(`message does not end in .CRLF: ${hex(m)}`);
  if (n > 3 && (m[n - 5] !== 0x0d || m[n - 4] !== 0x0a)) throw new Error(`message does not end in CRLF.CRLF: ${hex(m)}`);
  for (let i = 0; i < n; i++) {
    if (m[i] === 0x0d && m[i + 1] !== 0x0a) throw new Error(`bare CR relayed at ${i}: ${hex(m)}`);
    if (m[i] === 0x0a && m[i - 1] !== 0x0d) throw new Error(`bare LF relayed at ${i}: ${hex(m)}`);
    const atLineStart = i === 0 || m[i - 1] === 0x0a;
    if (atLineStart && m[i] === 0x2e && m[i + 1] === 0x0d && i + 3 !== n) throw new Error(`terminator inside the message at ${i}: ${hex(m)}`);
  }
}

/** Reply parser: prefixes are need-more, the whole and anything longer agree. */
export function checkReply(input: Uint8Array, rng: Rng): void {
  const whole = parseReply(input);
  const key = JSON.stringify(whole);
  if (whole.kind === "reply" && (whole.size > input.length || whole.size <= 0)) throw new Error("reply size out of bounds");
  // The relay's undecoded reading of the same bytes says the same.
  const extent = replyExtent(input);
  const expected = whole.kind === "reply" ? { kind: "reply", code: whole.reply.code, size: whole.size } : whole;
  if (JSON.stringify(extent) !== JSON.stringify(expected)) throw new Error(`replyExtent ${JSON.stringify(extent)}, parseReply ${key}`);
  const cut = rng.int(input.length + 1);
  const part = parseReply(input.subarray(0, cut));
  if (whole.kind === "reply") {
    const expected = cut >= whole.size ? key : JSON.stringify({ kind: "need-more" });
    if (JSON.stringify(part) !== expected) throw new Error(`reply prefix ${cut} gave ${JSON.stringify(part)}, whole ${key}`);
  } else if (whole.kind === "need-more") {
    if (part.kind !== "need-more") throw new Error(`prefix of a need-more input gave ${JSON.stringify(part)}`);
  } else if (part.kind !== "need-more" && JSON.stringify(part) !== key) {
    throw new Error(`prefix of an error input gave ${JSON.stringify(part)}, whole ${key}`);
  }
}

function randomText(rng: Rng): string {
  let s = "";
  for (let i = rng.int(12); i > 0; i--) {
    const kind = rng.int(4);
    const cp = kind === 0 ? rng.int(0x80) : kind === 1 ? 0x80 + rng.int(0x700) : kind === 2 ? 0xe000 + rng.int(0x1000) : 0x10000 + rng.int(0x1000);
    s += String.fromCodePoint(cp);
  }
  return s;
}

function tokenSoup(rng: Rng): Uint8Array {
  const parts: Uint8Array[] = [];
  for (let i = 1 + rng.int(24); i > 0; i--) parts.push(rng.pick(TOKENS));
  return join(...parts);
}

export interface FuzzReport {
  readonly inputs: number;
  readonly failures: number;
  readonly seconds: number;
  readonly examples: string[];
  /** How often each kind of event came out of the whole-input drives (proof the inputs reach deep). */
  readonly seen: Record<string, number>;
}

export function fuzzSmtp(inputs: number, seed = 1): FuzzReport {
  const rng = new Rng(seed);
  const start = performance.now();
  let failures = 0;
  const examples: string[] = [];
  const seen: Record<string, number> = {};
  for (let i = 0; i < inputs; i++) {
    let input: Uint8Array;
    const source = rng.int(10);
    if (source < 6) {
      input = rng.pick(CLIENT_SEEDS);
      for (let m = 1 + rng.int(4); m > 0; m--) input = mutate(rng, input, TOKENS);
    } else if (source < 8) input = tokenSoup(rng);
    else input = rng.bytes(rng.int(700));
    try {
      const trace = driveClient([input], input.length);
      for (const line of trace) {
        const key = line.startsWith("msg ") ? `msg${line.split(" ")[3] === "true" ? " too-large" : ""}` : line.split(" ").slice(0, 2).join(" ");
        if (!key.startsWith("end")) seen[key] = (seen[key] ?? 0) + 1;
      }
      const whole = trace.join("\n");
      const split = driveClient(randomSplits(rng, input, 1 + rng.int(6)), input.length).join("\n");
      if (split !== whole) throw new Error(`split trace differs\n--- whole\n${whole}\n--- split\n${split}`);
      if ((i & 7) === 0) {
        const bytewise = driveClient(oneBytePieces(input), input.length).join("\n");
        if (bytewise !== whole) throw new Error(`byte-by-byte trace differs\n--- whole\n${whole}\n--- bytes\n${bytewise}`);
      }
      let reply = rng.pick(SERVER_SEEDS);
      if (rng.int(4) !== 0) reply = mutate(rng, reply, TOKENS);
      checkReply(reply, rng);
      if ((i & 15) === 0) {
        const text = randomText(rng);
        if (xtextDecode(xtextEncode(text)) !== text) throw new Error(`xtext round trip failed for ${JSON.stringify(text)}`);
      }
    } catch (e) {
      failures++;
      if (examples.length < 5) examples.push(`seed ${seed} input ${i} ${hex(input)}\n${(e as Error).stack ?? e}`);
    }
  }
  return { inputs, failures, seconds: (performance.now() - start) / 1000, examples, seen };
}

if (import.meta.main) fuzzMain(fuzzSmtp);
