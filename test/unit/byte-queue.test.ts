import { expect, test } from "bun:test";
import { ByteQueue } from "../../src/net/byte-queue.ts";

const b = (...xs: number[]) => new Uint8Array(xs);

test("chunks come out in order, partly consumed chunks keep their tail first", () => {
  const q = new ByteQueue(100, "test");
  q.push(b(1, 2, 3));
  q.push(b(4, 5));
  expect(q.size).toBe(5);
  q.consume(2);
  expect([...q.peek()!]).toEqual([3]);
  q.consume(1);
  expect([...q.peek()!]).toEqual([4, 5]);
  q.consume(2);
  expect(q.peek()).toBeNull();
  expect(q.size).toBe(0);
});

test("unshift puts a write's unwritten tail before chunks that arrived during the write", () => {
  const q = new ByteQueue(100, "test");
  q.push(b(7, 8)); // arrived re-entrantly
  q.unshift(b(5, 6)); // the tail of the write in progress
  expect([...q.bytes()]).toEqual([5, 6, 7, 8]);
  q.consume(1);
  q.unshift(b(4));
  expect([...q.drain()!]).toEqual([4, 6, 7, 8]);
  expect(q.size).toBe(0);
});

test("the limit refuses a push that would pass it and keeps what was queued", () => {
  const q = new ByteQueue(4, "relay_overflow");
  expect(q.push(b(1, 2, 3))).toBe(true);
  expect(q.push(b(4, 5))).toBe(false);
  expect(q.size).toBe(3);
  expect(q.limitReason).toBe("relay_overflow");
  expect(q.push(b(4))).toBe(true);
  expect([...q.bytes()]).toEqual([1, 2, 3, 4]);
});

test("bytes() joins once and the joined array is the queue's only chunk", () => {
  const q = new ByteQueue(100, "test");
  q.push(b(1));
  q.push(b(2));
  const all = q.bytes();
  expect(q.bytes()).toBe(all);
  expect(q.peek()).toBe(all);
});
