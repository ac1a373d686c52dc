import { describe, expect, test } from "bun:test";
import { MAX_STARTUP_REPLY, newStartupQueue, readStartupReplies, type BackendKey } from "../../src/postgres/backend-startup.ts";
import { fixture } from "../helpers/fixtures.ts";

const captured = fixture("pg-backend-startup");

/** The BackendKeyData of the capture, found by walking its messages here. */
function expectedKey(bytes: Uint8Array): BackendKey {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let pos = 0; pos < bytes.length; pos += 1 + view.getUint32(pos + 1)) {
    if (bytes[pos] === 0x4b) return { pid: view.getUint32(pos + 5), secret: bytes.slice(pos + 9, pos + 13) };
  }
  throw new Error("no BackendKeyData in the capture");
}

/** Feed `chunks` one by one; the key seen and the step that ended it (or the last). */
function feed(chunks: Uint8Array[]): { key: BackendKey | null; kind: string; at: number } {
  const q = newStartupQueue();
  let key: BackendKey | null = null;
  for (let i = 0; i < chunks.length; i++) {
    if (!q.push(chunks[i]!)) return { key, kind: "overflow", at: i };
    const r = readStartupReplies(q);
    key ??= r.key;
    if (r.kind !== "need-more") return { key, kind: r.kind, at: i };
  }
  return { key, kind: "need-more", at: chunks.length };
}

describe("the backend's startup replies (captured from PostgreSQL)", () => {
  const want = expectedKey(captured);

  test("whole: the key, then done at ReadyForQuery", () => {
    expect(feed([captured])).toEqual({ key: want, kind: "done", at: 0 });
  });

  test("one byte at a time: the same key, done at the last byte", () => {
    const bytes = [...captured].map((b) => new Uint8Array([b]));
    expect(feed(bytes)).toEqual({ key: want, kind: "done", at: captured.length - 1 });
  });

  test("split at every point: the same result", () => {
    for (let cut = 1; cut < captured.length; cut++) {
      expect(feed([captured.subarray(0, cut), captured.subarray(cut)])).toEqual({ key: want, kind: "done", at: 1 });
    }
  });

  test("without its ReadyForQuery: the key, and still waiting", () => {
    expect(feed([captured.subarray(0, captured.length - 6)])).toEqual({ key: want, kind: "need-more", at: 1 });
  });

  test("whole messages are consumed; what is left is the start of the next", () => {
    const q = newStartupQueue();
    q.push(captured.subarray(0, 12)); // AuthenticationOk (9 bytes) and 3 bytes of a ParameterStatus
    expect(readStartupReplies(q).kind).toBe("need-more");
    expect(q.size).toBe(3);
  });
});

describe("what is not a startup exchange", () => {
  test("an ErrorResponse ends it (the session is over)", () => {
    const error = new Uint8Array([0x45, 0, 0, 0, 5, 0]);
    expect(feed([error])).toMatchObject({ key: null, kind: "done" });
  });

  test("a length below 4 is given up on", () => {
    expect(feed([new Uint8Array([0x52, 0, 0, 0, 3])])).toMatchObject({ kind: "gave-up" });
  });

  test("more than MAX_STARTUP_REPLY bytes without a ReadyForQuery: the queue refuses them", () => {
    const big = new Uint8Array(MAX_STARTUP_REPLY + 10);
    big.set([0x53, 0, 0, 0x7f, 0xff]); // a ParameterStatus longer than the bound
    expect(feed([big.subarray(0, 1000), big.subarray(1000)])).toMatchObject({ kind: "overflow", at: 1 });
  });
});
