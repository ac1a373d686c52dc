/**
 * Bulk PostgreSQL traffic over a TLS-terminated postgres listener with real pgbench: `pgbench -i`
 * streams COPY data from the client (the direction that lost bytes on terminated TLS, issue 12),
 * then the rows are counted and checksummed on the server, and a short read-only run must finish
 * with every transaction. Each run gets its own database, so a failed one leaves nothing behind.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { makePki } from "../helpers/certs.ts";
import { startProxy, writeConfig, type RunningProxy } from "../helpers/proxy.ts";
import { startCluster, type Cluster } from "../helpers/postgres.ts";
import { freePort } from "../helpers/peers.ts";

let server: Cluster;
let proxy: RunningProxy;

async function run(cmd: string[], env: Record<string, string>, ms = 120_000): Promise<{ code: number; out: string }> {
  const p = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env } });
  const timer = setTimeout(() => p.kill("SIGKILL"), ms);
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  clearTimeout(timer);
  return { code, out: (out + err).trim() };
}

beforeAll(async () => {
  const pki = makePki();
  server = startCluster(freePort());
  for (let i = 0; i < 3; i++) server.psql(`create database bench${i}`);
  proxy = await startProxy(["serve", "-c", writeConfig({
    listeners: [{ name: "pg", listen: "127.0.0.1:0", protocol: "postgres", defaultCert: pki.issue("db", ["db.test"]),
      routes: [{ name: "all", upstreams: [`127.0.0.1:${server.port}`] }] }],
  })]);
}, 120_000);

afterAll(async () => {
  await proxy?.stop();
  server?.stop();
});

const SCALE = 5; // 500 000 pgbench_accounts rows: about 60 MB of COPY data from the client
const env = () => ({ PGHOST: "127.0.0.1", PGPORT: String(proxy.port), PGUSER: "postgres", PGSSLMODE: "require" });

for (let i = 0; i < 3; i++) {
  test(`pgbench -i -s ${SCALE} over TLS (run ${i + 1} of 3): every COPY row arrives intact`, async () => {
    const init = await run(["pgbench", "-i", "-s", String(SCALE), "-q", `bench${i}`], env());
    expect(init.out).not.toContain("unexpected message type");
    expect(init.code, init.out).toBe(0);
    // pgbench's rows are a function of aid: any lost or reordered byte changes the count or the sum.
    const db = `bench${i}`;
    expect(server.psql("select count(*), sum(aid), sum(bid), sum(abalance) from pgbench_accounts", db)).toBe(`${SCALE * 100_000}|${(SCALE * 100_000 * (SCALE * 100_000 + 1)) / 2}|${sumBid(SCALE)}|0`);
    expect(server.psql("select count(*) from pgbench_branches", db)).toBe(String(SCALE));
    expect(server.psql("select count(*) from pgbench_tellers", db)).toBe(String(SCALE * 10));
  }, 180_000);
}

test("pgbench -S -c 4 -t 500 over TLS: every transaction completes", async () => {
  const r = await run(["pgbench", "-S", "-c", "4", "-t", "500", "-n", "bench0"], env());
  expect(r.code, r.out).toBe(0);
  expect(r.out).toContain("number of transactions actually processed: 2000/2000");
  expect(r.out).toContain("number of failed transactions: 0");
}, 120_000);

/** Sum of bid over pgbench_accounts: each branch b (1..scale) has 100 000 accounts. */
function sumBid(scale: number): number {
  let s = 0;
  for (let b = 1; b <= scale; b++) s += b * 100_000;
  return s;
}
