/**
 * Cost of the HTTP/1.1 head parser on the proxy's hot path: parses per second of a typical browser
 * request (a Firefox 128 navigation, 11 fields, ~400 bytes), alone, with the facts routing reads (host,
 * path), and with the re-serialisation a proxy does (Connection: keep-alive is hop-by-hop, so the head
 * is rewritten; X-Forwarded-For set). Also the nginx response head of the fixtures.
 * Run: node_modules/.bin/bun bench/micro/http-parse.ts
 */
import { RequestHead, ResponseHead } from "../../src/http/head.ts";
import { parseRequestHead, parseResponseHead } from "../../src/http/parse-head.ts";
import { serializeHead } from "../../src/http/serialize.ts";
import { fixture } from "../../test/helpers/fixtures.ts";

const BROWSER_REQUEST = new TextEncoder().encode([
  "GET /products/widgets?color=blue&page=2 HTTP/1.1",
  "Host: shop.example.com",
  "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
  "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
  "Accept-Language: en-GB,en;q=0.5",
  "Accept-Encoding: gzip, deflate, br, zstd",
  "Connection: keep-alive",
  "Cookie: sid=8f2a9c41e0",
  "Upgrade-Insecure-Requests: 1",
  "Sec-Fetch-Dest: document",
  "Sec-Fetch-Mode: navigate",
  "Sec-Fetch-Site: same-origin",
  "", "",
].join("\r\n"));

const LIMITS = { maxHeaderBytes: 65536, maxHeaders: 100 };
const N = 2_000_000;

function run(name: string, bytes: Uint8Array, once: () => unknown): void {
  for (let i = 0; i < 200_000; i++) once(); // warm up (JIT tiers)
  const rounds: number[] = [];
  for (let round = 0; round < 5; round++) {
    const start = Bun.nanoseconds();
    for (let i = 0; i < N / 5; i++) once();
    rounds.push((N / 5) / ((Bun.nanoseconds() - start) / 1e9));
  }
  rounds.sort((a, b) => a - b);
  // Other processes only ever slow a round down: the best round is the cost, the median the spread.
  const best = rounds[4]!, median = rounds[2]!;
  console.log(`${name.padEnd(44)} ${String(bytes.length).padStart(3)} B  best ${(best / 1e6).toFixed(2)} M/s (${(1e9 / best).toFixed(0)} ns), median ${(median / 1e6).toFixed(2)} M/s`);
}

const request = new RequestHead(LIMITS);
const check = parseRequestHead(BROWSER_REQUEST, 0, request);
if (check.kind !== "head" || check.count !== 11) throw new Error("the benchmark request does not parse");

let sink = 0;
run("parse request", BROWSER_REQUEST, () => {
  const r = parseRequestHead(BROWSER_REQUEST, 0, request);
  if (r.kind === "head") sink += r.count;
});
run("parse request + host() + path() + method", BROWSER_REQUEST, () => {
  const r = parseRequestHead(BROWSER_REQUEST, 0, request);
  if (r.kind === "head") sink += r.host().length + r.path().length + r.method.length;
});
const edits = { set: [["X-Forwarded-For", "192.0.2.7"]] as [string, string][] };
run("parse request + serialize (hop-by-hop, XFF)", BROWSER_REQUEST, () => {
  const r = parseRequestHead(BROWSER_REQUEST, 0, request);
  if (r.kind === "head") sink += serializeHead(r, edits).length;
});
const nginx = fixture("http-res-nginx-200");
const response = new ResponseHead(LIMITS);
run("parse response (nginx 200)", nginx, () => {
  const r = parseResponseHead(nginx, 0, response);
  if (r.kind === "head") sink += r.count;
});
if (sink === 0) console.log("");
