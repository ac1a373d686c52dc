import { expect, test } from "bun:test";
import { FirstBytes, MAX_SNIFF_BYTES } from "../../src/sniff/collect.ts";

test("keeps every byte in order, one byte at a time or in chunks", () => {
  const all = new Uint8Array(5000).map((_, i) => i * 7);
  const one = new FirstBytes();
  for (const b of all) one.push(new Uint8Array([b]));
  expect(one.bytes).toEqual(all);
  const chunks = new FirstBytes();
  chunks.push(all.subarray(0, 100));
  chunks.push(all.subarray(100, 4000));
  chunks.push(all.subarray(4000));
  expect(chunks.bytes).toEqual(all);
});

test("the first chunk is kept without a copy", () => {
  const f = new FirstBytes();
  const chunk = new Uint8Array([1, 2, 3]);
  f.push(chunk);
  expect(f.bytes.buffer).toBe(chunk.buffer);
});

test("says full at the bound and still drops nothing", () => {
  const f = new FirstBytes();
  expect(f.push(new Uint8Array(MAX_SNIFF_BYTES - 1))).toBe("ok");
  expect(f.push(new Uint8Array(10))).toBe("full");
  expect(f.length).toBe(MAX_SNIFF_BYTES + 9);
});

test("a peek replaces what the last one saw (each returns the queue from its first byte), full at the bound", () => {
  const f = new FirstBytes();
  expect(f.peeked(new Uint8Array([22, 3]))).toBe("ok");
  expect(f.peeked(new Uint8Array([22, 3, 1, 0]))).toBe("ok");
  expect(f.bytes).toEqual(new Uint8Array([22, 3, 1, 0]));
  expect(f.peeked(new Uint8Array(MAX_SNIFF_BYTES))).toBe("full");
  expect(f.length).toBe(MAX_SNIFF_BYTES);
});
