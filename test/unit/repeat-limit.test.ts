import { expect, test } from "bun:test";
import { Logger } from "../../src/log/logger.ts";
import { REPEAT_LIMIT, REPEAT_WINDOW_MS, type Clock } from "../../src/log/repeat-limit.ts";

/** A clock the test moves by hand; `later` callbacks run when their time is passed. */
function fakeClock() {
  let now = 0;
  const due: { at: number; fn: () => void }[] = [];
  const clock: Clock = { now: () => now, later: (fn, ms) => void due.push({ at: now + ms, fn }) };
  return {
    clock,
    advance(ms: number) {
      now += ms;
      for (const d of due.filter((d) => d.at <= now)) { due.splice(due.indexOf(d), 1); d.fn(); }
    },
  };
}

function logger() {
  const c = fakeClock();
  const lines: string[] = [];
  const log = new Logger(c.clock, (line) => void lines.push(line));
  log.configure("info", "json");
  const msgs = () => lines.map((l) => JSON.parse(l).msg as string);
  return { log, lines, msgs, advance: c.advance };
}

test("the same warning: the first ten per window, then one summary when the window ends", () => {
  const { log, msgs, advance } = logger();
  for (let i = 0; i < 250; i++) log.warn("connection closed: malformed_hello", { detail: `reason ${i}` });
  expect(msgs()).toEqual(Array(REPEAT_LIMIT).fill("connection closed: malformed_hello"));
  advance(REPEAT_WINDOW_MS - 1);
  expect(msgs().length).toBe(REPEAT_LIMIT); // no summary before the window ends
  advance(1);
  expect(msgs().slice(REPEAT_LIMIT)).toEqual([`suppressed ${250 - REPEAT_LIMIT} similar warnings: connection closed: malformed_hello`]);
  // A new window writes again.
  log.warn("connection closed: malformed_hello");
  expect(msgs().length).toBe(REPEAT_LIMIT + 2);
});

test("each message has its own window; other levels are not limited; no summary when nothing was dropped", () => {
  const { log, msgs, advance } = logger();
  for (let i = 0; i < 15; i++) {
    log.warn("a");
    log.warn("b");
    log.info("c");
    log.error("d");
  }
  log.warn("e");
  const count = (m: string) => msgs().filter((x) => x === m).length;
  expect([count("a"), count("b"), count("c"), count("d"), count("e")]).toEqual([10, 10, 15, 15, 1]);
  advance(REPEAT_WINDOW_MS);
  expect(msgs().filter((m) => m.startsWith("suppressed")).sort()).toEqual(["suppressed 5 similar warnings: a", "suppressed 5 similar warnings: b"]);
});

test("warnings below the configured level are neither written nor counted", () => {
  const { log, msgs, advance } = logger();
  log.configure("error", "json");
  for (let i = 0; i < 20; i++) log.warn("quiet");
  advance(REPEAT_WINDOW_MS);
  expect(msgs()).toEqual([]);
});
