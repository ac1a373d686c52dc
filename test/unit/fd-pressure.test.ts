import { describe, expect, test } from "bun:test";
import { FdPressure, openFileLimit } from "../../src/listen/fd-pressure.ts";

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            %s                   524288               files
`;

describe("fd limit", () => {
  test("the soft RLIMIT_NOFILE is read from /proc/self/limits; unlimited or unreadable is Infinity", () => {
    expect(openFileLimit(LIMITS.replace("%s", "64"))).toBe(64);
    expect(openFileLimit(LIMITS.replace("%s", "unlimited"))).toBe(Infinity);
    expect(openFileLimit("")).toBe(Infinity);
    expect(openFileLimit()).toBeGreaterThan(0);
  });

  test("the reserve is a sixteenth of the limit, from 8 to 256 fds", () => {
    expect(new FdPressure(64).reserve).toBe(8);
    expect(new FdPressure(1024).reserve).toBe(64);
    expect(new FdPressure(1_048_576).reserve).toBe(256);
    expect(new FdPressure(Infinity).reserve).toBe(256);
  });
});
