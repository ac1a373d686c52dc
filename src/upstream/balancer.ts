/**
 * Picks one upstream of a route. Pure and per route; `release` must be called once per `pick` so
 * least-conn knows what is open. Policies: round-robin, random, least-conn (ties go round-robin so
 * equal upstreams share load), least-cpu: the upstream whose process thread used the least CPU
 * over the last sample (permille of a core, from `cpuOf`, which src/native/cpu.ts feeds every
 * 250 ms), plus CONN_PERMILLE for each connection it holds. Samples are 250 ms old at worst, so
 * without that term every new connection of a burst would go to the same upstream. Upstreams
 * without a sample (none yet, thread gone) are skipped while any has one; with no samples at all,
 * or no `cpuOf` (native library absent), least-cpu is least-conn.
 * @module
 */
import type { BalancePolicy } from "../config/types.ts";

/** least-cpu: what one open connection weighs against a thread's CPU share, in permille of a core. */
export const CONN_PERMILLE = 20;

/** The CPU share of upstream i's thread in permille of a core, or null when not known. */
export type CpuOf = (i: number) => number | null;

export class Balancer {
  readonly #active: Int32Array;
  #next = 0;

  constructor(readonly policy: BalancePolicy, readonly size: number, readonly random: () => number = Math.random,
    readonly cpuOf: CpuOf | null = null) {
    this.#active = new Int32Array(size);
  }

  /** Index of the upstream to use. */
  pick(): number {
    let i: number;
    if (this.size === 1) i = 0;
    else if (this.policy === "random") i = Math.floor(this.random() * this.size);
    else if (this.policy === "least-conn") i = this.#leastConn();
    else if (this.policy === "least-cpu") i = this.#leastCpu();
    else i = this.#next++ % this.size;
    this.#active[i]!++;
    return i;
  }

  release(i: number): void {
    if (this.#active[i]! > 0) this.#active[i]!--;
  }

  activeOf(i: number): number {
    return this.#active[i]!;
  }

  #leastCpu(): number {
    if (!this.cpuOf) return this.#leastConn();
    const start = this.#next++ % this.size;
    let best = -1;
    let bestScore = Infinity;
    for (let k = 0; k < this.size; k++) {
      const i = (start + k) % this.size;
      const cpu = this.cpuOf(i);
      if (cpu === null) continue;
      const score = cpu + CONN_PERMILLE * this.#active[i]!;
      if (score < bestScore) {
        best = i;
        bestScore = score;
      }
    }
    return best >= 0 ? best : this.#leastConnFrom(start);
  }

  #leastConn(): number {
    return this.#leastConnFrom(this.#next++ % this.size);
  }

  #leastConnFrom(start: number): number {
    let best = start;
    for (let k = 1; k < this.size; k++) {
      const i = (start + k) % this.size;
      if (this.#active[i]! < this.#active[best]!) best = i;
    }
    return best;
  }
}
