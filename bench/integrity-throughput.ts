/**
 * Upload throughput through the relay-integrity suite's paths (test/helpers/integrity.ts): the
 * client sends SIZE bytes to a fast backend, checked end to end; prints MB/s per path. With
 * SWITCHYARD_BINARY another build is measured (before/after a change to the relay's hot path).
 * Usage: bun bench/integrity-throughput.ts [MB] [runs]
 */
import { makePki } from "../test/helpers/certs.ts";
import { relayPaths, runExchange } from "../test/helpers/integrity.ts";

const size = Number(process.argv[2] ?? 200) * 1_000_000;
const runs = Number(process.argv[3] ?? 3);
const wanted = ["tcp, userspace relay", "tls terminated, userspace relay", "postgres with TLS terminated"];
for (const path of relayPaths(makePki()).filter((p) => wanted.includes(p.name))) {
  const rates: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    const r = await runExchange(path, { name: "upload", client: { send: size, writeSize: 65536 }, backend: { send: 0, writeSize: 65536 } }, 300_000);
    if (!r.backend.intact) throw new Error(`${path.name}: bytes not intact`);
    rates.push(size / 1e6 / ((performance.now() - started) / 1000));
  }
  rates.sort((a, b) => a - b);
  console.log(`${path.name.padEnd(34)} median ${rates[runs >> 1]!.toFixed(0)} MB/s  (runs: ${rates.map((x) => x.toFixed(0)).join(", ")})`);
}
