import { describe, expect, test } from "bun:test";
import { ConnTable } from "../../src/proxy/conn-table.ts";

interface Entry {
  readonly id: number;
  readonly tag: string;
}

const entry = (id: number, tag = `e${id}`): Entry => ({ id, tag });

/** A deterministic generator (xorshift32), so a failure replays. */
function rng(seed: number): () => number {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

describe("ConnTable", () => {
  test("add, get, remove, size", () => {
    const t = new ConnTable<Entry>();
    expect(t.size).toBe(0);
    expect(t.get(1)).toBeUndefined();
    const a = entry(1);
    t.add(a);
    t.add(entry(2));
    expect(t.size).toBe(2);
    expect(t.get(1)).toBe(a);
    expect(t.remove(1)).toBe(true);
    expect(t.remove(1)).toBe(false);
    expect(t.get(1)).toBeUndefined();
    expect(t.get(2)?.tag).toBe("e2");
    expect(t.size).toBe(1);
  });

  test("ids far apart and colliding homes (multiples of the capacity) are all found", () => {
    const t = new ConnTable<Entry>();
    const ids = [0, 16, 32, 2 ** 31, 2 ** 32, 2 ** 32 + 16, 2 ** 52, 9_007_199_254_740_991];
    for (const id of ids) t.add(entry(id));
    for (const id of ids) expect(t.get(id)?.id).toBe(id);
    expect(t.size).toBe(ids.length);
  });

  test("100 000 random adds and removes agree with a Map, through growth and rebuilds", () => {
    const t = new ConnTable<Entry>();
    const ref = new Map<number, Entry>();
    const ids: number[] = [];
    const r = rng(12345);
    let next = 1;
    for (let step = 0; step < 100_000; step++) {
      // Bursts: phases that mostly add, then mostly remove, like an accept burst and its close.
      const adding = Math.floor(step / 10_000) % 2 === 0 ? r() < 0.8 : r() < 0.2;
      if (adding || ref.size === 0) {
        const e = entry(next++);
        t.add(e);
        ref.set(e.id, e);
        ids.push(e.id);
      } else {
        const at = Math.floor(r() * ids.length);
        const id = ids[at]!;
        ids[at] = ids[ids.length - 1]!;
        ids.pop();
        expect(t.remove(id)).toBe(true);
        ref.delete(id);
      }
      if (step % 997 === 0) {
        expect(t.size).toBe(ref.size);
        for (const [id, e] of ref) expect(t.get(id)).toBe(e);
        expect(t.get(next)).toBeUndefined();
        expect(new Set([...t].map((e) => e.id))).toEqual(new Set(ref.keys()));
      }
    }
  });

  test("removing while iterating visits every entry exactly once", () => {
    for (const removeOthers of [false, true]) {
      const t = new ConnTable<Entry>();
      for (let id = 1; id <= 1000; id++) t.add(entry(id));
      const seen = new Map<number, number>();
      const r = rng(99);
      for (const e of t) {
        seen.set(e.id, (seen.get(e.id) ?? 0) + 1);
        t.remove(e.id); // as closeAll's reset and the sweeper's abort do
        if (removeOthers && r() < 0.3) {
          const other = 1 + Math.floor(r() * 1000);
          if (!seen.has(other)) t.remove(other), seen.set(other, 1);
        }
      }
      expect(t.size).toBe(0);
      expect(seen.size).toBe(1000);
      for (const n of seen.values()) expect(n).toBe(1);
    }
  });

  test("after a burst is removed, adding rebuilds it small again", () => {
    const t = new ConnTable<Entry>();
    for (let id = 1; id <= 10_000; id++) t.add(entry(id));
    for (let id = 1; id <= 10_000; id++) t.remove(id);
    // Tombstones count towards the load: adds reuse them or rebuild, and nothing is lost.
    for (let id = 10_001; id <= 10_100; id++) t.add(entry(id));
    expect(t.size).toBe(100);
    for (let id = 10_001; id <= 10_100; id++) expect(t.get(id)?.id).toBe(id);
    expect(t.get(5)).toBeUndefined();
  });
});
