/**
 * Cost of one gate check per connection: the shared-memory table (native, through bun:ffi) against the
 * heap table of one process. Run: node_modules/.bin/bun bench/micro/gate-table.ts (after scripts/build.sh).
 * Prints ns per take+release pair for a rate+concurrency check on one of 1000 client keys.
 */
import { LocalLimitTable, type LimitTable } from "../../src/protect/limit-table.ts";
import { SharedLimitTable } from "../../src/protect/shared-table.ts";
import { limitsAttach, limitsCreate } from "../../src/native/limits.ts";

const N = 2_000_000;
const keys = Array.from({ length: 1000 }, (_, i) => ({ h1: Bun.hash.murmur32v3(`ip${i}`, 1), h2: Bun.hash.murmur32v3(`ip${i}`, 2) }));

function run(name: string, t: LimitTable): void {
  for (let i = 0; i < 100_000; i++) { t.take(keys[i % 1000]!, 1_000_000, 1_000_000, 1_000_000, true); t.release(keys[i % 1000]!); }
  const start = Bun.nanoseconds();
  for (let i = 0; i < N; i++) {
    const k = keys[i % 1000]!;
    t.take(k, 1_000_000, 1_000_000, 1_000_000, true);
    t.release(k);
  }
  console.log(`${name.padEnd(8)} ${((Bun.nanoseconds() - start) / N).toFixed(0)} ns per take+release`);
}

const made = limitsCreate();
if (!made.ok || limitsAttach(made.fd, 0) !== null) throw new Error("native library not available");
run("shared", new SharedLimitTable());
run("local", new LocalLimitTable(() => performance.now()));
// The key hashing the gate does per connection (two murmur32 of the listener name and client IP).
const start = Bun.nanoseconds();
for (let i = 0; i < N; i++) { const s = `ip\u0000edge\u0000127.0.0.${i & 255}`; Bun.hash.murmur32v3(s, 1); Bun.hash.murmur32v3(s, 2); }
console.log(`hashing  ${((Bun.nanoseconds() - start) / N).toFixed(0)} ns per key`);
