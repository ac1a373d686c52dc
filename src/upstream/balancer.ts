/**
 * Picks one upstream of a route. Pure and per route; `release` must be called once per `pick` so
 * least-conn knows what is open. Policies: round-robin, random, least-conn (ties go round-robin so
 * equal upstreams share load). least-cpu is a later step (it needs the native CPU sampler).
 * @module
 */
import type { BalancePolicy } from "../config/types.ts";

export class Balancer {
  readonly #active: Int32Array;
  #next = 0;

  constructor(readonly policy: BalancePolicy, readonly size: number, readonly random: () => number = Math.random) {
    this.#active = new Int32Array(size);
  }

  /** Index of the upstream to use. */
  pick(): number {
    let i: number;
    if (this.size === 1) i = 0;
    else if (this.policy === "random") i = Math.floor(this.random() * this.size);
    else if (this.policy === "least-conn") i = this.#leastConn();
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

  #leastConn(): number {
    const start = this.#next++ % this.size;
    let best = start;
    for (let k = 1; k < this.size; k++) {
      const i = (start + k) % this.size;
      if (this.#active[i]! < this.#active[best]!) best = i;
    }
    return best;
  }
}
