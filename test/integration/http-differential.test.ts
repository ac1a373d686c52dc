/**
 * The differential test of issue 14: every request of test/fixtures/http-differential-corpus.jsonl
 * (valid and malformed, one a line, each with a note of what it probes) is sent on a fresh connection
 * through switchyard and through HAProxy 2.6 (`mode http`, started and stopped here by pid, on
 * loopback), each in front of its own instance of the same echo backend (test/helpers/http-echo.ts),
 * which reports every request it received whole. For each request, switchyard must deliver what
 * HAProxy delivers (method, target, body bytes, the end-to-end fields in order; not the fields each
 * proxy adds or removes as hop-by-hop, nor the framing or version of its own hop) or refuse it
 * (deliver nothing, or only the requests before the one it refused when they are pipelined). A table
 * of every case where the two did not deliver the same is printed; a delivery that differs fails.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { startProxy, tempDir, writeConfig, type RunningProxy } from "../helpers/proxy.ts";
import { freePort } from "../helpers/nginx.ts";
import { startEchoBackend, type EchoBackend, type Received } from "../helpers/http-echo.ts";

const HAPROXY = "/usr/sbin/haproxy";
const CORPUS = join(import.meta.dir, "../fixtures/http-differential-corpus.jsonl");
/**
 * A proxy that said nothing for this long is taken to be done (or waiting for more): long before its
 * first answer (the machine is shared: an answer can take a while), short once one came (the next of
 * pipelined answers follows at once).
 */
const QUIET_BEFORE_ANSWER_MS = 1500;
const QUIET_AFTER_ANSWER_MS = 150;

interface Entry { name: string; note: string; request: string }
const corpus: Entry[] = readFileSync(CORPUS, "utf8").split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));

let echoS: EchoBackend;
let echoH: EchoBackend;
let proxy: RunningProxy;
let haproxy: Subprocess;
let haproxyPort: number;

beforeAll(async () => {
  echoS = startEchoBackend();
  echoH = startEchoBackend();
  proxy = await startProxy(["serve", "-c", writeConfig({
    listeners: [{ name: "web", listen: "127.0.0.1:0", protocol: "http", http: { forwarded: "off" },
      routes: [{ upstreams: [`127.0.0.1:${echoS.port}`] }] }],
  })]);
  haproxyPort = freePort();
  const dir = tempDir("switchyard-haproxy-");
  const cfg = join(dir, "haproxy.cfg");
  writeFileSync(cfg, `
global
  maxconn 500
defaults
  mode http
  timeout connect 2s
  timeout client 5s
  timeout server 5s
  timeout http-request 2s
frontend f
  bind 127.0.0.1:${haproxyPort}
  default_backend b
backend b
  http-reuse safe
  server echo 127.0.0.1:${echoH.port}
`);
  haproxy = Bun.spawn([HAPROXY, "-db", "-f", cfg], { stdout: "ignore", stderr: "pipe" });
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      (await Bun.connect({ hostname: "127.0.0.1", port: haproxyPort, socket: { data() {} } })).end();
      break;
    } catch {
      if (haproxy.exitCode !== null || Date.now() > deadline) throw new Error(`haproxy did not start: ${await new Response(haproxy.stderr as ReadableStream).text()}`);
      await Bun.sleep(20);
    }
  }
});

afterAll(async () => {
  await proxy?.stop();
  if (haproxy && haproxy.exitCode === null) {
    process.kill(haproxy.pid, "SIGTERM");
    await haproxy.exited;
  }
  echoS?.stop();
  echoH?.stop();
});

/** Send `bytes` on a fresh connection; resolves with what came back once the proxy closed or went quiet. */
async function send(port: number, bytes: string): Promise<string> {
  let got = "";
  let last = Date.now();
  let closed = false;
  const s = await Bun.connect({ hostname: "127.0.0.1", port, socket: {
    data(_s, d) { got += Buffer.from(d).toString("latin1"); last = Date.now(); },
    close() { closed = true; },
    error() { closed = true; },
  } });
  s.write(Buffer.from(bytes, "latin1"));
  last = Date.now();
  while (!closed && Date.now() - last < (completeAnswers(got) > 0 ? QUIET_AFTER_ANSWER_MS : QUIET_BEFORE_ANSWER_MS)) await Bun.sleep(10);
  s.end();
  return got;
}

/** How many whole responses (Content-Length bodies: the echo's and both proxies' own answers have one) `text` holds. */
function completeAnswers(text: string): number {
  let n = 0;
  for (;;) {
    const m = /^HTTP\/1\.[01] \d{3}[^\r]*\r\n((?:[^\r]+\r\n)*)\r\n/.exec(text);
    if (!m) return n;
    const len = Number(/content-length: *(\d+)/i.exec(m[1]!)?.[1] ?? 0);
    if (text.length < m[0].length + len) return n;
    text = text.slice(m[0].length + len);
    n++;
  }
}

/** Wait until neither echo backend has received anything for a moment (a late delivery must not count for the next request). */
async function settled(): Promise<void> {
  let before = -1;
  for (;;) {
    const now = echoS.received.length + echoH.received.length;
    if (now === before) return;
    before = now;
    await Bun.sleep(50);
  }
}

/** Fields every proxy adds, removes or rewrites for its own hop (RFC 9110 §7.6.1), and the framing of its hop. */
const HOP_FIELDS = new Set(["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
  "proxy-authorization", "content-length", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "via"]);

interface Delivery { method: string; target: string; fields: [string, string][]; body: string }

/** What the backend got, in comparable terms; `named` are the fields the client's Connection named (hop-by-hop too). */
function delivery(r: Received, named: Set<string>): Delivery {
  const lines = r.head.split("\r\n").slice(0, -2);
  const [method = "", target = ""] = lines[0]!.split(" ");
  const fields: [string, string][] = [];
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    const name = line.slice(0, colon).toLowerCase();
    if (HOP_FIELDS.has(name) || named.has(name)) continue;
    fields.push([name, line.slice(colon + 1).trim()]);
  }
  return { method, target, fields, body: r.body };
}

function connectionNamed(request: string): Set<string> {
  const out = new Set<string>();
  for (const m of request.matchAll(/\r\nconnection:([^\r\n]*)/gi)) for (const t of m[1]!.split(",")) out.add(t.trim().toLowerCase());
  return out;
}

const statusLines = (answer: string) => [...answer.matchAll(/HTTP\/1\.[01] (\d{3})/g)].map((m) => m[1]).join(",") || "-";

test(`the corpus has at least 100 requests, each with a note (${corpus.length})`, () => {
  expect(corpus.length).toBeGreaterThanOrEqual(100);
  for (const e of corpus) expect(e.note.length).toBeGreaterThan(5);
  expect(new Set(corpus.map((e) => e.name)).size).toBe(corpus.length);
});

test("switchyard delivers what HAProxy delivers, or refuses", async () => {
  type Row = { name: string; verdict: "same" | "refused" | "prefix" | "DIFFERS"; s: string; h: string; detail: string };
  const rows: Row[] = [];
  for (const e of corpus) {
    echoS.received.length = 0;
    echoH.received.length = 0;
    const [answerS, answerH] = await Promise.all([send(proxy.port, e.request), send(haproxyPort, e.request)]);
    await settled();
    const named = connectionNamed(e.request);
    const S = echoS.received.map((r) => delivery(r, named));
    const H = echoH.received.map((r) => delivery(r, named));
    const same = (a: Delivery, b: Delivery) => JSON.stringify(a) === JSON.stringify(b);
    let verdict: Row["verdict"];
    if (S.length === H.length && S.every((d, i) => same(d, H[i]!))) verdict = "same";
    else if (S.length === 0) verdict = "refused";
    else if (S.length < H.length && S.every((d, i) => same(d, H[i]!))) verdict = "prefix";
    else verdict = "DIFFERS";
    const firstDiff = S.findIndex((d, i) => !H[i] || !same(d, H[i]!));
    rows.push({
      name: e.name, verdict,
      s: `${S.length} delivered, answered ${statusLines(answerS)}`, h: `${H.length} delivered, answered ${statusLines(answerH)}`,
      detail: verdict === "DIFFERS" ? `switchyard ${JSON.stringify(S[firstDiff])} haproxy ${JSON.stringify(H[firstDiff] ?? null)}` : e.note,
    });
  }
  const disagreements = rows.filter((r) => r.verdict !== "same");
  const table = [
    `${corpus.length} requests: ${rows.filter((r) => r.verdict === "same").length} delivered alike, ${disagreements.length} not:`,
    "verdict  | request                     | switchyard                     | haproxy                        | note / difference",
    ...disagreements.map((r) => `${r.verdict.padEnd(8)} | ${r.name.padEnd(27)} | ${r.s.padEnd(30)} | ${r.h.padEnd(30)} | ${r.detail}`),
  ].join("\n");
  console.log(table);
  expect(rows.filter((r) => r.verdict === "DIFFERS").map((r) => `${r.name}: ${r.detail}`)).toEqual([]);
}, 300_000);
