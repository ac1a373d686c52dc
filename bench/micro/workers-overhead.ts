/**
 * What the process model costs, one process against a supervisor and 2 workers: idle RSS (summed over
 * the process tree), RSS added per held idle connection, and the time of one GET /metrics (with
 * workers: an IPC scrape of each worker, summed). Run after scripts/build.sh:
 *   node_modules/.bin/bun bench/micro/workers-overhead.ts [connections=3000]
 * Every process it starts is stopped by pid at the end.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Socket } from "bun";

const BINARY = resolve(import.meta.dir, "../../dist/switchyard");
const HELD = Number(process.argv[2] ?? 3000);
const SCRAPES = 500;

const children = (pid: number): number[] => {
  try { return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number); } catch { return []; }
};
const rssOf = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) * 1024;
const treeRss = (pid: number) => [pid, ...children(pid)].reduce((n, p) => n + rssOf(p), 0);

// The backend holds every connection and says nothing.
const held: Socket<undefined>[] = [];
const backend = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { open(s) { held.push(s); }, data() {} } });

async function measure(workers: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "switchyard-overhead-"));
  const cfg = join(dir, "c.json");
  writeFileSync(cfg, JSON.stringify({
    workers, admin: { listen: "127.0.0.1:0" }, log: { access: "off" }, relay: "userspace",
    listeners: [{ name: "e", listen: ["127.0.0.1:0"], routes: [{ upstreams: [`127.0.0.1:${backend.port}`] }] }],
  }));
  const proc = Bun.spawn([BINARY, "serve", "-c", cfg], { stdout: "ignore", stderr: "pipe" });
  let err = "";
  void (async () => { for await (const c of proc.stderr as ReadableStream<Uint8Array>) err += new TextDecoder().decode(c); })();
  try {
    while (!err.includes("switchyard ready")) await Bun.sleep(20);
    const port = Number(/listening address=127\.0\.0\.1:(\d+)/.exec(err)![1]);
    const admin = Number(/admin API listening address=http:\/\/127\.0\.0\.1:(\d+)/.exec(err)![1]);
    await Bun.sleep(1000);
    const idle = treeRss(proc.pid);

    const url = `http://127.0.0.1:${admin}/metrics`;
    for (let i = 0; i < 50; i++) await (await fetch(url)).text();
    let t = Bun.nanoseconds();
    for (let i = 0; i < SCRAPES; i++) await (await fetch(url)).text();
    const scrapeMs = (Bun.nanoseconds() - t) / SCRAPES / 1e6;

    const clients: Socket<undefined>[] = [];
    for (let i = 0; i < HELD; i++) clients.push(await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } }));
    for (const c of clients) c.write("x");
    t = Date.now();
    while (held.length < HELD && Date.now() - t < 20_000) await Bun.sleep(50);
    await Bun.sleep(1000);
    const loaded = treeRss(proc.pid);
    console.log(`workers ${workers}: processes ${1 + children(proc.pid).length}, idle RSS ${(idle / 1e6).toFixed(1)} MB, ` +
      `${HELD} idle connections add ${((loaded - idle) / HELD).toFixed(0)} B each, GET /metrics ${scrapeMs.toFixed(2)} ms`);
    for (const c of clients) c.end();
    for (const s of held.splice(0)) s.end();
  } finally {
    proc.kill("SIGTERM");
    await proc.exited;
  }
}

await measure(1);
await Bun.sleep(500);
await measure(2);
backend.stop(true);
