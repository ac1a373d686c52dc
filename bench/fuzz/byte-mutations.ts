/**
 * A small seeded generator and byte mutations shared by the fuzz scripts (bench/fuzz/*.ts), so a
 * failure is reproduced by its seed. Not cryptographic.
 */
export class Rng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0 || 1;
  }

  /** mulberry32: a uniform 32-bit value. */
  u32(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return n <= 0 ? 0 : this.u32() % n;
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.u32() & 0xff;
    return out;
  }
}

/** `input` with one random edit: a byte changed, a token inserted, a range deleted or repeated. */
export function mutate(rng: Rng, input: Uint8Array, tokens: readonly Uint8Array[]): Uint8Array {
  const at = rng.int(input.length + 1);
  switch (rng.int(5)) {
    case 0: {
      if (input.length === 0) return rng.bytes(1);
      const out = input.slice();
      out[rng.int(out.length)] = rng.u32() & 0xff;
      return out;
    }
    case 1: {
      const token = rng.pick(tokens);
      return join(input.subarray(0, at), token, input.subarray(at));
    }
    case 2: {
      const end = Math.min(input.length, at + 1 + rng.int(16));
      return join(input.subarray(0, at), input.subarray(end));
    }
    case 3: {
      const end = Math.min(input.length, at + 1 + rng.int(64));
      return join(input.subarray(0, end), input.subarray(at, end), input.subarray(end));
    }
    default:
      return join(input.subarray(0, at), rng.bytes(1 + rng.int(8)), input.subarray(at));
  }
}

export function join(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** `input` cut at `count` random points (sorted, possibly empty pieces). */
export function randomSplits(rng: Rng, input: Uint8Array, count: number): Uint8Array[] {
  const cuts = Array.from({ length: count }, () => rng.int(input.length + 1)).sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const c of cuts) {
    out.push(input.subarray(prev, c));
    prev = c;
  }
  out.push(input.subarray(prev));
  return out;
}

export function oneBytePieces(input: Uint8Array): Uint8Array[] {
  return Array.from({ length: input.length }, (_, i) => input.subarray(i, i + 1));
}

export const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

/** What every fuzz run reports. */
export interface FuzzReport {
  readonly inputs: number;
  readonly failures: number;
  readonly seconds: number;
  readonly examples: readonly string[];
  /** Which outcomes were reached, by name (printed with FUZZ_VERBOSE or --outcomes). */
  readonly seen?: unknown;
}

/**
 * The command line of every fuzz script: `bun bench/fuzz/NAME.ts [INPUTS=1000000] [SEED=1] [--outcomes]`;
 * prints `N inputs, F failures, T s` (and up to five failing inputs), exits 1 on any failure.
 */
export function fuzzMain(run: (inputs: number, seed: number) => FuzzReport): void {
  const args = process.argv.slice(2).filter((a) => !a.startsWith("--"));
  const r = run(Number(args[0] ?? 1_000_000), Number(args[1] ?? 1));
  for (const e of r.examples) console.error(e);
  if ((process.env.FUZZ_VERBOSE || process.argv.includes("--outcomes")) && r.seen !== undefined) console.error(r.seen);
  console.log(`${r.inputs} inputs, ${r.failures} failures, ${r.seconds.toFixed(1)} s`);
  process.exit(r.failures === 0 ? 0 : 1);
}
