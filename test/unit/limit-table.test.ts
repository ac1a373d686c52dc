/**
 * The gate's limits: the token bucket arithmetic, and one suite run against both tables (the heap
 * one, and the shared-memory one in native/src/limits.zig through bun:ffi).
 */
import { describe, expect, test } from "bun:test";
import { LocalLimitTable, TokenBucket, type LimitTable } from "../../src/protect/limit-table.ts";
import { SharedLimitTable } from "../../src/protect/shared-table.ts";
import { limitsAttach, limitsCreate } from "../../src/native/limits.ts";
import { nativeStatus } from "../../src/native/index.ts";

describe("TokenBucket", () => {
  test("a full bucket gives burst tokens, then refills at rate per second", () => {
    const b = new TokenBucket(3, 0);
    expect([b.take(2, 3, 0), b.take(2, 3, 0), b.take(2, 3, 0), b.take(2, 3, 0)]).toEqual([true, true, true, false]);
    expect(b.take(2, 3, 499)).toBe(false); // 2 per second: one token after 500 ms
    expect(b.take(2, 3, 500)).toBe(true);
    expect(b.take(2, 3, 100_000)).toBe(true); // long idle refills to burst, not beyond
    expect(b.tokens).toBe(2);
  });

  test("fullAt is when the bucket is full again", () => {
    const b = new TokenBucket(4, 1000);
    b.take(2, 4, 1000);
    b.take(2, 4, 1000);
    expect(b.fullAt(2, 4)).toBe(2000);
  });
});

describe("LocalLimitTable", () => {
  test("refill follows the injected clock", () => {
    let now = 0;
    const t = new LocalLimitTable(() => now);
    const k = { h1: 1, h2: 1 };
    expect(t.take(k, 1, 1, 0, false)).toBe("admitted");
    expect(t.take(k, 1, 1, 0, false)).toBe("rateLimited");
    now = 1000;
    expect(t.take(k, 1, 1, 0, false)).toBe("admitted");
  });

  test("a full table admits and says so", () => {
    const t = new LocalLimitTable(() => 0, 2);
    expect(t.take({ h1: 1, h2: 1 }, 0, 0, 5, true)).toBe("admitted");
    expect(t.take({ h1: 2, h2: 2 }, 0, 0, 5, true)).toBe("admitted");
    expect(t.take({ h1: 3, h2: 3 }, 0, 0, 5, true)).toBe("tableFull");
  });
});

const made = limitsCreate();
const shared = made.ok && limitsAttach(made.fd, 0) === null;
const tables: [string, () => LimitTable][] = [["local", () => new LocalLimitTable(() => performance.now())]];
if (shared) tables.push(["shared (native)", () => new SharedLimitTable()]);

let nextKey = 1000;
describe.each(tables)("%s table", (_name, make) => {
  test("burst tokens, then rateLimited (rate 1/s: no refill within the test)", () => {
    const t = make();
    const k = { h1: nextKey++, h2: 7 };
    const verdicts = Array.from({ length: 6 }, () => t.take(k, 1, 4, 0, false));
    expect(verdicts.filter((v) => v === "admitted").length).toBeGreaterThanOrEqual(4);
    expect(verdicts.slice(0, 4)).toEqual(["admitted", "admitted", "admitted", "admitted"]);
    expect(verdicts.at(-1)).toBe("rateLimited");
  });

  test("open connections are capped and released", () => {
    const t = make();
    const k = { h1: nextKey++, h2: 8 };
    expect(t.take(k, 0, 0, 2, true)).toBe("admitted");
    expect(t.take(k, 0, 0, 2, true)).toBe("admitted");
    expect(t.take(k, 0, 0, 2, true)).toBe("concurrencyLimited");
    expect(t.open(k)).toBe(2);
    t.release(k);
    expect(t.open(k)).toBe(1);
    expect(t.take(k, 0, 0, 2, true)).toBe("admitted");
  });

  test("a refused connection costs nothing: concurrency is checked before the bucket", () => {
    const t = make();
    const k = { h1: nextKey++, h2: 9 };
    expect(t.take(k, 1, 2, 1, true)).toBe("admitted");
    expect(t.take(k, 1, 2, 1, true)).toBe("concurrencyLimited");
    t.release(k);
    expect(t.take(k, 1, 2, 1, true)).toBe("admitted"); // the second token is still there
  });

  test("keys are independent", () => {
    const t = make();
    const a = { h1: nextKey, h2: 1 };
    const b = { h1: nextKey++, h2: 2 }; // same h1, different h2
    expect(t.take(a, 0, 0, 1, true)).toBe("admitted");
    expect(t.take(b, 0, 0, 1, true)).toBe("admitted");
    expect(t.take(a, 0, 0, 1, true)).toBe("concurrencyLimited");
  });
});

test("the shared table is available when the native library is", () => {
  expect(shared).toBe(nativeStatus().loaded);
});
