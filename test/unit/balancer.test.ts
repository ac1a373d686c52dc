import { describe, expect, test } from "bun:test";
import { Balancer, CONN_PERMILLE } from "../../src/upstream/balancer.ts";
import { BALANCE_POLICIES } from "../../src/config/types.ts";

/** Picks `n` times without releasing. */
function picks(b: Balancer, n: number): number[] {
  return Array.from({ length: n }, () => b.pick());
}

/** A random() that returns the given values in turn. */
function sequence(...values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length]!;
}

describe("round-robin", () => {
  test("cycles through the upstreams in order", () => {
    expect(picks(new Balancer("round-robin", 3), 7)).toEqual([0, 1, 2, 0, 1, 2, 0]);
  });

  test("ignores load: releases do not change the order", () => {
    const b = new Balancer("round-robin", 3);
    const order: number[] = [];
    for (let n = 0; n < 6; n++) {
      const i = b.pick();
      order.push(i);
      if (i !== 1) b.release(i); // upstream 1 keeps its connections
    }
    expect(order).toEqual([0, 1, 2, 0, 1, 2]);
    expect(b.activeOf(1)).toBe(2);
  });

  test("least-cpu, not built yet, falls back to round-robin", () => {
    expect(picks(new Balancer("least-cpu", 3), 4)).toEqual([0, 1, 2, 0]);
  });
});

describe("random", () => {
  test.each([
    [0, 0],
    [0.2, 0],
    [0.25, 1],
    [0.5, 2],
    [0.74, 2],
    [0.75, 3],
    [0.999999, 3],
  ])("random() = %p picks upstream %p of 4", (r, expected) => {
    expect(new Balancer("random", 4, () => r).pick()).toBe(expected);
  });

  test("follows the injected random() and counts what it picked", () => {
    const b = new Balancer("random", 3, sequence(0.9, 0.1, 0.5, 0.9));
    expect(picks(b, 4)).toEqual([2, 0, 1, 2]);
    expect([b.activeOf(0), b.activeOf(1), b.activeOf(2)]).toEqual([1, 1, 2]);
  });

  test("with Math.random every pick is in range and every upstream gets some", () => {
    const b = new Balancer("random", 5);
    const seen = new Set(picks(b, 2_000));
    expect([...seen].sort()).toEqual([0, 1, 2, 3, 4]);
  });
});

describe("least-conn", () => {
  test("picks the least loaded upstream", () => {
    const b = new Balancer("least-conn", 3);
    picks(b, 3); // one each
    b.release(1);
    expect(b.pick()).toBe(1);
    b.release(0);
    b.release(2);
    b.release(2);
    expect(b.activeOf(2)).toBe(0);
    expect(b.pick()).toBe(2);
  });

  test("spreads ties instead of always picking the first", () => {
    const b = new Balancer("least-conn", 3);
    expect(picks(b, 3).sort()).toEqual([0, 1, 2]);
    expect(picks(b, 3).sort()).toEqual([0, 1, 2]);
  });

  test("spreads ties across upstreams when every connection is short", () => {
    const b = new Balancer("least-conn", 3);
    const counts = [0, 0, 0];
    for (let n = 0; n < 30; n++) {
      const i = b.pick();
      counts[i]!++;
      b.release(i);
    }
    expect(counts).toEqual([10, 10, 10]);
  });

  test("keeps loads within one of each other under steady picks", () => {
    const b = new Balancer("least-conn", 4);
    picks(b, 101);
    const loads = [0, 1, 2, 3].map((i) => b.activeOf(i));
    expect(Math.max(...loads) - Math.min(...loads)).toBeLessThanOrEqual(1);
    expect(loads.reduce((a, x) => a + x, 0)).toBe(101);
  });

  test("never picks a busier upstream while an idler one exists", () => {
    const b = new Balancer("least-conn", 3);
    picks(b, 9); // 3 each
    for (let n = 0; n < 3; n++) b.release(0);
    expect(picks(b, 3)).toEqual([0, 0, 0]);
  });
});

describe("release bookkeeping", () => {
  test.each(BALANCE_POLICIES.map((p) => [p]))("%s: pick counts up, release counts down", (policy) => {
    const b = new Balancer(policy, 2, sequence(0.1));
    const i = b.pick();
    expect(b.activeOf(i)).toBe(1);
    b.release(i);
    expect(b.activeOf(i)).toBe(0);
  });

  test("release never goes below zero", () => {
    const b = new Balancer("least-conn", 2);
    b.release(0);
    b.release(0);
    expect(b.activeOf(0)).toBe(0);
    // A spurious release must not make upstream 0 look idler than an idle upstream.
    b.pick();
    b.pick();
    expect([b.activeOf(0), b.activeOf(1)]).toEqual([1, 1]);
  });

  test("releases are per upstream", () => {
    const b = new Balancer("round-robin", 3);
    picks(b, 6);
    b.release(2);
    expect([b.activeOf(0), b.activeOf(1), b.activeOf(2)]).toEqual([2, 2, 1]);
  });
});

describe("a single upstream", () => {
  test.each(BALANCE_POLICIES.map((p) => [p]))("%s always picks 0", (policy) => {
    const b = new Balancer(policy, 1, () => 0.99);
    expect(picks(b, 5)).toEqual([0, 0, 0, 0, 0]);
    expect(b.activeOf(0)).toBe(5);
    b.release(0);
    expect(b.activeOf(0)).toBe(4);
  });
});

describe("least-cpu", () => {
  test("picks the upstream whose thread used the least CPU", () => {
    const cpu = [700, 100, 400];
    const b = new Balancer("least-cpu", 3, Math.random, (i) => cpu[i]!);
    expect(b.pick()).toBe(1);
  });

  test("open connections count against an upstream, so a burst between samples spreads out", () => {
    const cpu = [100, 100 + 2 * CONN_PERMILLE + 1];
    const b = new Balancer("least-cpu", 2, Math.random, (i) => cpu[i]!);
    expect(picks(b, 4)).toEqual([0, 0, 0, 1]);
  });

  test("upstreams without a sample are skipped while another has one", () => {
    const b = new Balancer("least-cpu", 3, Math.random, (i) => (i === 2 ? 900 : null));
    expect(picks(b, 3)).toEqual([2, 2, 2]);
  });

  test("no samples at all, or no sampler (library absent): least-conn", () => {
    for (const cpuOf of [() => null, null]) {
      const b = new Balancer("least-cpu", 3, Math.random, cpuOf);
      const first = picks(b, 3).sort();
      expect(first).toEqual([0, 1, 2]);
      b.release(1);
      expect(b.pick()).toBe(1);
    }
  });
});
