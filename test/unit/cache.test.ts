import { describe, expect, test } from "bun:test";
import { RouteCache } from "../../src/route/cache.ts";

/** The hash the runtime uses (src/proxy/runtime.ts). */
const wyhash = (key: string): bigint => BigInt(Bun.hash.wyhash(key));
/** Every key collides: only the full-key comparison keeps entries apart. */
const collide = (): bigint => 1n;

/** A clock the test moves by hand. */
function manualClock(start = 1_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

describe("RouteCache hit and miss", () => {
  test("a stored key is a hit, an unknown key a miss, and both are counted", () => {
    const cache = new RouteCache<string>(60_000, 10, wyhash);
    expect(cache.get("db1")).toBeUndefined();
    cache.set("db1", "10.0.0.1:5432");
    expect(cache.get("db1")).toBe("10.0.0.1:5432");
    expect(cache.get("db2")).toBeUndefined();
    expect(cache.hits).toBe(1);
    expect(cache.misses).toBe(2);
    expect(cache.size).toBe(1);
  });

  test("set replaces the value of an existing key without growing", () => {
    const cache = new RouteCache<string>(60_000, 10, wyhash);
    cache.set("k", "a");
    cache.set("k", "b");
    expect(cache.get("k")).toBe("b");
    expect(cache.size).toBe(1);
  });

  test("values other than strings are returned as stored", () => {
    const cache = new RouteCache<{ endpoint: string }>(60_000, 10, wyhash);
    const route = { endpoint: "10.0.0.2:5432" };
    cache.set("k", route);
    expect(cache.get("k")).toBe(route);
  });

  test("the empty string is a key like any other", () => {
    const cache = new RouteCache<string>(60_000, 10, wyhash);
    cache.set("", "empty");
    expect(cache.get("")).toBe("empty");
    expect(cache.get(" ")).toBeUndefined();
  });
});

describe("RouteCache TTL", () => {
  test("an entry lives for ttlMs and is gone at exactly ttlMs", () => {
    const clock = manualClock();
    const cache = new RouteCache<string>(1_000, 10, wyhash, clock.now);
    cache.set("k", "v");
    clock.advance(999);
    expect(cache.get("k")).toBe("v");
    clock.advance(1);
    expect(cache.get("k")).toBeUndefined();
  });

  test("an expired entry is dropped on read, so it does not hold a slot", () => {
    const clock = manualClock();
    const cache = new RouteCache<string>(1_000, 10, wyhash, clock.now);
    cache.set("k", "v");
    clock.advance(5_000);
    expect(cache.get("k")).toBeUndefined();
    expect(cache.size).toBe(0);
    expect(cache.misses).toBe(1);
  });

  test("setting a key again restarts its TTL", () => {
    const clock = manualClock();
    const cache = new RouteCache<string>(1_000, 10, wyhash, clock.now);
    cache.set("k", "old");
    clock.advance(800);
    cache.set("k", "new");
    clock.advance(800);
    expect(cache.get("k")).toBe("new");
  });

  test("entries expire independently", () => {
    const clock = manualClock();
    const cache = new RouteCache<string>(1_000, 10, wyhash, clock.now);
    cache.set("early", "1");
    clock.advance(600);
    cache.set("late", "2");
    clock.advance(600);
    expect(cache.get("early")).toBeUndefined();
    expect(cache.get("late")).toBe("2");
  });

  test.each([
    ["ttlMs 0", 0, 10],
    ["negative ttlMs", -1, 10],
    ["maxEntries 0", 60_000, 0],
  ])("%s disables the cache", (_, ttlMs, maxEntries) => {
    const cache = new RouteCache<string>(ttlMs, maxEntries, wyhash);
    cache.set("k", "v");
    expect(cache.get("k")).toBeUndefined();
    expect(cache.size).toBe(0);
  });
});

describe("RouteCache bound", () => {
  test("at maxEntries the oldest entry is evicted first", () => {
    const cache = new RouteCache<string>(60_000, 3, wyhash);
    for (const k of ["a", "b", "c", "d"]) cache.set(k, k.toUpperCase());
    expect(cache.size).toBe(3);
    expect(cache.get("a")).toBeUndefined();
    expect([cache.get("b"), cache.get("c"), cache.get("d")]).toEqual(["B", "C", "D"]);
  });

  test("setting an existing key makes it the newest", () => {
    const cache = new RouteCache<string>(60_000, 3, wyhash);
    for (const k of ["a", "b", "c"]) cache.set(k, k);
    cache.set("a", "a2");
    cache.set("d", "d");
    expect(cache.get("b")).toBeUndefined();
    expect(cache.get("a")).toBe("a2");
    expect(cache.get("c")).toBe("c");
    expect(cache.get("d")).toBe("d");
  });

  test("maxEntries 1 keeps only the last key", () => {
    const cache = new RouteCache<string>(60_000, 1, wyhash);
    cache.set("a", "1");
    cache.set("b", "2");
    expect(cache.size).toBe(1);
    expect(cache.get("a")).toBeUndefined();
    expect(cache.get("b")).toBe("2");
  });

  test("many inserts never exceed the bound", () => {
    const cache = new RouteCache<number>(60_000, 100, wyhash);
    for (let i = 0; i < 1_000; i++) cache.set(`key-${i}`, i);
    expect(cache.size).toBe(100);
    expect(cache.get("key-899")).toBeUndefined();
    expect(cache.get("key-900")).toBe(900);
    expect(cache.get("key-999")).toBe(999);
  });
});

describe("RouteCache never returns another key's value", () => {
  test("with a hash where every key collides, a lookup of another key misses", () => {
    const cache = new RouteCache<string>(60_000, 10, collide);
    cache.set("tenant-a", "10.0.0.1:5432");
    expect(cache.get("tenant-b")).toBeUndefined();
    expect(cache.get("tenant-a")).toBe("10.0.0.1:5432");
  });

  test("a colliding set replaces the entry, and the replaced key then misses", () => {
    const cache = new RouteCache<string>(60_000, 10, collide);
    cache.set("tenant-a", "A");
    cache.set("tenant-b", "B");
    expect(cache.get("tenant-a")).toBeUndefined();
    expect(cache.get("tenant-b")).toBe("B");
  });

  test("a colliding miss leaves the other key's entry in place", () => {
    const cache = new RouteCache<string>(60_000, 10, collide);
    cache.set("tenant-a", "A");
    expect(cache.get("tenant-b")).toBeUndefined();
    expect(cache.size).toBe(1);
    expect(cache.get("tenant-a")).toBe("A");
  });

  test("a colliding lookup of an expired entry misses too", () => {
    const clock = manualClock();
    const cache = new RouteCache<string>(1_000, 10, collide, clock.now);
    cache.set("tenant-a", "A");
    clock.advance(2_000);
    expect(cache.get("tenant-b")).toBeUndefined();
    expect(cache.get("tenant-a")).toBeUndefined();
  });

  test("keys differing only in case, whitespace or a NUL stay apart under collision", () => {
    const cache = new RouteCache<string>(60_000, 10, collide);
    const keys = ["db", "DB", "db ", "db\0", "d\u0062"]; // the last is "db" again
    cache.set("db", "right");
    expect(keys.map((k) => cache.get(k))).toEqual(["right", undefined, undefined, undefined, "right"]);
  });

  const prefix = "x".repeat(1_000);
  test.each([
    ["the real hash", wyhash],
    ["a colliding hash", collide],
    ["a hash of the first 1000 characters", (k: string) => BigInt(Bun.hash.wyhash(k.slice(0, 1_000)))],
  ])("long keys sharing a 1000-char prefix are distinct (%s)", (_, hash) => {
    const cache = new RouteCache<string>(60_000, 10, hash);
    cache.set(`${prefix}-database-one`, "one");
    expect(cache.get(`${prefix}-database-two`)).toBeUndefined();
    expect(cache.get(prefix)).toBeUndefined();
    expect(cache.get(`${prefix}-database-one`)).toBe("one");
    cache.set(`${prefix}-database-two`, "two");
    expect(cache.get(`${prefix}-database-two`)).toBe("two");
  });

  test("100 KB keys that differ in their last character are distinct", () => {
    const cache = new RouteCache<string>(60_000, 10, wyhash);
    const base = "k".repeat(100_000);
    cache.set(`${base}1`, "one");
    cache.set(`${base}2`, "two");
    expect(cache.get(`${base}1`)).toBe("one");
    expect(cache.get(`${base}2`)).toBe("two");
    expect(cache.get(`${base}3`)).toBeUndefined();
  });
});
