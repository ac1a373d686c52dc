/**
 * Fuzz the PROXY protocol header parser and encoder (src/proxy-protocol/).
 *
 *   node_modules/.bin/bun bench/fuzz/proxy-protocol.ts [inputs=1000000] [seed=1] [--outcomes]
 *
 * Inputs are mutations of HAProxy's captured headers (test/fixtures/proxy-protocol-haproxy-*),
 * headers made by the encoder from random addresses, PROXY-shaped token soups, and random bytes.
 * Invariants checked for every input:
 * - nothing throws, and an error's reason is one of the documented ones;
 * - prefix-consistent: the input cut at a random point (and, one input in eight, every prefix
 *   byte by byte) answers need-more or what the whole answers, and a header is found at the same
 *   length however the bytes arrive;
 * - bounded: a header is at most 107 bytes (v1) or the v2 limit, need-more never holds more bytes
 *   than the larger of the two, and a header's length never passes the input;
 * - what the parser reads from a header, the encoder writes back to the same addresses.
 * Prints "N inputs, F failures, T s" and exits 1 on any failure.
 */
import { readFileSync } from "node:fs";
import { join as joinPath } from "node:path";
import { encodeProxyHeader } from "../../src/proxy-protocol/encode.ts";
import { parseProxyHeader, type ProxyHeaderLimits, type ProxyHeaderStep, type ReceivedEndpoint } from "../../src/proxy-protocol/parse.ts";
import { V1_MAX_BYTES } from "../../src/proxy-protocol/wire.ts";
import { fuzzMain, hex, join, mutate, Rng, type FuzzReport } from "./byte-mutations.ts";

/** Small, so that mutated lengths pass it often. */
const LIMITS: ProxyHeaderLimits = { maxV2Bytes: 300 };
const REASONS = new Set([
  "not_proxy_header", "v1_too_long", "v1_bad_line_end", "v1_bad_protocol", "v1_bad_fields", "v1_bad_address", "v1_bad_port",
  "v2_bad_version", "v2_bad_command", "v2_bad_family", "v2_not_stream", "v2_short_addresses", "v2_too_long", "v2_bad_tlv",
]);

function fixture(name: string): Uint8Array {
  const text = readFileSync(joinPath(import.meta.dir, "../../test/fixtures", `${name}.hex`), "utf8").replace(/\s+/g, "");
  return new Uint8Array(Buffer.from(text, "hex"));
}

const SEEDS = ["tcp4-v1", "tcp6-v1", "tcp4-v2", "tcp6-v2", "local-v2", "tlv-v2"].map((n) => fixture(`proxy-protocol-haproxy-${n}`));
const TOKENS = [
  "PROXY ", "PROXY UNKNOWN\r\n", "UNKNOWN ", "TCP4 ", "TCP6 ", "UNKNOWN", " ", "\r\n", "\r", "\n", "127.0.0.1", "::1", "::ffff:1.2.3.4", "255.255.255.255", "0", "65535",
  "65536", "01", "[::1]", "fe80::1%lo", "\r\n\r\n\0\r\nQUIT\n", "\x21\x11\x00\x0c", "\x21\x21\x00\x24", "\x20\x00\x00\x00", "\x21\x31\x00\xd8",
  "\x21\x12", "\x01\x00\x02", "\x05\x00\x13", "\xff\xff", "\x00", "hello\r\n",
].map((t) => new Uint8Array(Buffer.from(t, "latin1")));

function key(step: ProxyHeaderStep): string {
  if (step.kind !== "header") return JSON.stringify(step);
  const e = (x: typeof step.src) => (x === null ? "-" : `${x.ip}/${x.port}/${x.address.family}`);
  return `header v${step.version} ${step.length} ${e(step.src)} ${e(step.dst)}`;
}

function outcome(step: ProxyHeaderStep): string {
  if (step.kind === "header") return `header v${step.version}${step.src ? "" : " unknown"}`;
  return step.kind === "error" ? `error ${step.reason}` : "need-more";
}

function check(input: Uint8Array, rng: Rng, bytewise: boolean): ProxyHeaderStep {
  const whole = parseProxyHeader(input, 0, LIMITS);
  const wholeKey = key(whole);
  if (whole.kind === "error" && !REASONS.has(whole.reason)) throw new Error(`undocumented reason ${whole.reason}`);
  if (whole.kind === "need-more" && input.length >= Math.max(V1_MAX_BYTES, LIMITS.maxV2Bytes)) throw new Error(`need-more over ${input.length} bytes`);
  if (whole.kind === "header") {
    if (whole.length > input.length || whole.length < 15) throw new Error(`header length ${whole.length} of ${input.length} bytes`);
    if (whole.version === 1 ? whole.length > V1_MAX_BYTES : whole.length > LIMITS.maxV2Bytes) throw new Error(`header of ${whole.length} bytes passes its bound`);
    if (whole.src && whole.dst) {
      const again = parseProxyHeader(encodeProxyHeader(whole.version === 1 ? "v1" : "v2", { ip: whole.src.address, port: whole.src.port }, { ip: whole.dst.address, port: whole.dst.port }));
      const same = (a: ReceivedEndpoint | null, b: ReceivedEndpoint | null) => a !== null && b !== null && a.ip === b.ip && a.port === b.port;
      if (again.kind !== "header" || !same(again.src, whole.src) || !same(again.dst, whole.dst)) throw new Error(`re-encoded header reads ${key(again)}, was ${wholeKey}`);
    }
  }
  // A prefix answers need-more or the whole's answer; a header once all its bytes are there.
  const prefixAgrees = (cut: number): void => {
    const part = parseProxyHeader(input.subarray(0, cut), 0, LIMITS);
    if (part.kind === "need-more") {
      if (whole.kind === "header" && cut >= whole.length) throw new Error(`prefix ${cut} need-more, header of ${whole.length}`);
      return;
    }
    if (key(part) !== wholeKey) throw new Error(`prefix ${cut} gave ${key(part)}, whole ${wholeKey}`);
  };
  prefixAgrees(rng.int(input.length + 1));
  if (bytewise) for (let cut = 0; cut < input.length; cut++) prefixAgrees(cut);
  return whole;
}

function randomAddress(rng: Rng, family: 4 | 6): Uint8Array {
  const bytes = rng.bytes(family === 4 ? 4 : 16);
  if (family === 6 && rng.int(3) === 0) bytes.fill(0, 0, 10).fill(0xff, 10, 12); // IPv4-mapped
  return bytes;
}

function encoded(rng: Rng): Uint8Array {
  const family = rng.int(2) === 0 ? 4 : 6;
  const ep = () => ({ ip: { family, bytes: randomAddress(rng, family) } as const, port: rng.int(65536) });
  const version = rng.int(2) === 0 ? "v1" : "v2";
  const header = rng.int(8) === 0 ? encodeProxyHeader(version, null, null) : encodeProxyHeader(version, ep(), ep());
  return join(header, rng.bytes(rng.int(8)));
}

function tokenSoup(rng: Rng): Uint8Array {
  const parts: Uint8Array[] = [];
  for (let i = 1 + rng.int(12); i > 0; i--) parts.push(rng.pick(TOKENS));
  return join(...parts);
}

export function fuzzProxyProtocol(inputs: number, seed = 1): FuzzReport & { readonly seen: Record<string, number> } {
  const rng = new Rng(seed);
  const start = performance.now();
  let failures = 0;
  const examples: string[] = [];
  const seen: Record<string, number> = {};
  for (let i = 0; i < inputs; i++) {
    let input: Uint8Array;
    const source = rng.int(10);
    if (source < 5) {
      input = rng.pick(SEEDS);
      for (let m = 1 + rng.int(3); m > 0; m--) input = mutate(rng, input, TOKENS);
    } else if (source < 7) {
      input = encoded(rng);
      if (rng.int(2) === 0) input = mutate(rng, input, TOKENS);
    } else if (source < 9) input = tokenSoup(rng);
    else input = rng.bytes(rng.int(400));
    try {
      const o = outcome(check(input, rng, (i & 7) === 0));
      seen[o] = (seen[o] ?? 0) + 1;
    } catch (e) {
      failures++;
      if (examples.length < 5) examples.push(`seed ${seed} input ${i} ${hex(input)}\n${(e as Error).stack ?? e}`);
    }
  }
  return { inputs, failures, seconds: (performance.now() - start) / 1000, examples, seen };
}

if (import.meta.main) fuzzMain(fuzzProxyProtocol);
