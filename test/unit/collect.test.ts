import { expect, test } from "bun:test";
import { collectorFull, MAX_SNIFF_BYTES, newCollector, replaceWithPeeked } from "../../src/sniff/collect.ts";

test("keeps every byte in order, one byte at a time or in chunks", () => {
  const all = new Uint8Array(5000).map((_, i) => i * 7);
  const one = newCollector();
  for (const b of all) one.push(new Uint8Array([b]));
  expect(one.bytes()).toEqual(all);
  const chunks = newCollector();
  chunks.push(all.subarray(0, 100));
  chunks.push(all.subarray(100, 4000));
  chunks.push(all.subarray(4000));
  expect(chunks.bytes()).toEqual(all);
});

test("the first chunk is kept without a copy", () => {
  const f = newCollector();
  const chunk = new Uint8Array([1, 2, 3]);
  f.push(chunk);
  expect(f.bytes().buffer).toBe(chunk.buffer);
});

test("says full at the bound and still drops nothing of the read that crossed it", () => {
  const f = newCollector();
  f.push(new Uint8Array(MAX_SNIFF_BYTES - 1));
  expect(collectorFull(f)).toBe(false);
  expect(f.push(new Uint8Array(10))).toBe(true);
  expect(collectorFull(f)).toBe(true);
  expect(f.size).toBe(MAX_SNIFF_BYTES + 9);
});

test("a read past the collector's own limit is refused, with the reason to close with", () => {
  const f = newCollector();
  f.push(new Uint8Array(MAX_SNIFF_BYTES - 1));
  expect(f.push(new Uint8Array(f.limit))).toBe(false);
  expect(f.limitReason).toBe("first_bytes_too_long");
  expect(f.size).toBe(MAX_SNIFF_BYTES - 1);
});

test("a peek replaces what the last one saw (each returns the queue from its first byte), full at the bound", () => {
  const f = newCollector();
  replaceWithPeeked(f, new Uint8Array([22, 3]));
  replaceWithPeeked(f, new Uint8Array([22, 3, 1, 0]));
  expect(f.bytes()).toEqual(new Uint8Array([22, 3, 1, 0]));
  replaceWithPeeked(f, new Uint8Array(MAX_SNIFF_BYTES));
  expect(collectorFull(f)).toBe(true);
  expect(f.size).toBe(MAX_SNIFF_BYTES);
});
