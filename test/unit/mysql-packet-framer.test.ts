import { describe, expect, test } from "bun:test";
import { gunzipSync } from "node:zlib";
import { frameMessage, framePacket, MAX_PACKET_PAYLOAD, messagePayload, renumberMessage, setSequenceId, type MessageFrame } from "../../src/mysql/packet-framer.ts";
import { toPackets } from "../../src/mysql/payload-writer.ts";
import { fixture } from "../helpers/fixtures.ts";

// Captured with test/fixtures/smtp-mysql-record-relay.py between the clients and Debian 12's
// mariadbd 10.11.19 on loopback (a throwaway datadir from mariadb-install-db; users app/secret
// with mysql_native_password and edu/secret with ed25519; database alpha):
//   native:       mariadb -h127.0.0.1 -uapp -psecret --ssl=0 alpha -e "select 1"   (client 3.3.20)
//   big-row:      the same with --max-allowed-packet=64M -e "select repeat('x', 16777300) as v": the row
//                 spans a 0xFFFFFF packet and a 94-byte one (server stream stored gzipped: 16 MiB)
// mysql-handshake.test.ts and mysql-auth.test.ts list the others.
const NATIVE_SERVER = fixture("mysql-native-server");
const NATIVE_CLIENT = fixture("mysql-native-client");
const BIG_SERVER = new Uint8Array(gunzipSync(fixture("mysql-big-row-server.gz")));

type Framed = { sequenceId: number; packets: number; length: number; first: string };

/** Every message in `pieces` as a session frames them (one held buffer, pieces appended). */
function frameAll(pieces: readonly Uint8Array[], max = 1 << 30): { messages: Framed[]; left: number; error?: string } {
  let held = new Uint8Array(0);
  const messages: Framed[] = [];
  for (const piece of pieces) {
    const joined = new Uint8Array(held.length + piece.length);
    joined.set(held);
    joined.set(piece, held.length);
    held = joined;
    for (;;) {
      const f: MessageFrame = frameMessage(held, 0, max);
      if (f.kind === "need-more") break;
      if (f.kind === "error") return { messages, left: held.length, error: f.reason };
      const payload = messagePayload(held, 0, f);
      expect(payload.length).toBe(f.payloadLength);
      messages.push({ sequenceId: f.sequenceId, packets: f.packets, length: f.payloadLength, first: Buffer.from(payload.subarray(0, 1)).toString("hex") });
      held = held.subarray(f.size);
    }
  }
  return { messages, left: held.length };
}

function everyWay(bytes: Uint8Array) {
  const whole = frameAll([bytes]);
  expect(frameAll(Array.from(bytes, (_, i) => bytes.subarray(i, i + 1)))).toEqual(whole);
  for (let k = 0; k <= bytes.length; k++) expect(frameAll([bytes.subarray(0, k), bytes.subarray(k)])).toEqual(whole);
  return whole;
}

describe("captured MariaDB streams, whole, one byte at a time, split at every point", () => {
  test("server: greeting, OK, then a one-row result set (column count, definition, EOF, row, EOF)", () => {
    expect(everyWay(NATIVE_SERVER)).toEqual({
      messages: [
        { sequenceId: 0, packets: 1, length: 100, first: "0a" },
        { sequenceId: 2, packets: 1, length: 17, first: "00" },
        { sequenceId: 1, packets: 1, length: 2, first: "01" },
        { sequenceId: 2, packets: 1, length: 24, first: "03" },
        { sequenceId: 3, packets: 1, length: 5, first: "fe" },
        { sequenceId: 4, packets: 1, length: 2, first: "01" },
        { sequenceId: 5, packets: 1, length: 5, first: "fe" },
      ],
      left: 0,
    });
  });

  test("client: HandshakeResponse41, COM_QUERY, COM_QUIT", () => {
    expect(everyWay(NATIVE_CLIENT)).toEqual({
      messages: [{ sequenceId: 1, packets: 1, length: 213, first: "8c" }, { sequenceId: 0, packets: 1, length: 9, first: "03" }, { sequenceId: 0, packets: 1, length: 1, first: "01" }],
      left: 0,
    });
  });

  test("a 16 MiB row spans a 0xFFFFFF packet and a 94-byte one: one logical message", () => {
    const r = frameAll([BIG_SERVER]);
    expect(r.messages.map((m) => [m.sequenceId, m.packets, m.length])).toEqual([[0, 1, 100], [2, 1, 17], [1, 1, 2], [2, 1, 24], [3, 1, 5], [4, 2, MAX_PACKET_PAYLOAD + 94], [6, 1, 5]]);
    // The row: a length-encoded string of 16 777 300 bytes (0xFE + 8 bytes), then the x's.
    let at = 0;
    for (let i = 0; i < 5; i++) at += (frameMessage(BIG_SERVER, at, 1 << 30) as { size: number }).size;
    const row = frameMessage(BIG_SERVER, at, 1 << 30);
    if (row.kind !== "message") throw new Error(row.kind);
    expect(row).toEqual({ kind: "message", sequenceId: 4, lastSequenceId: 5, packets: 2, payloadLength: 16_777_309, size: 16_777_317 });
    const payload = messagePayload(BIG_SERVER, at, row);
    expect([...payload.subarray(0, 9)]).toEqual([0xfe, 0x54, 0x00, 0x00, 0x01, 0, 0, 0, 0]);
    expect(payload.subarray(9).every((b) => b === 0x78)).toBe(true);
    // Split in and around both headers and inside both payloads: need-more until the last byte.
    const cont = at + 4 + MAX_PACKET_PAYLOAD;
    for (const cut of [at + 1, at + 3, at + 4, at + 5000, cont - 1, cont, cont + 2, cont + 4, cont + 50, at + row.size - 1]) {
      expect(frameMessage(BIG_SERVER.subarray(0, cut), at, 1 << 30)).toEqual({ kind: "need-more" });
    }
    expect(frameMessage(BIG_SERVER.subarray(0, at + row.size), at, 1 << 30)).toEqual(row);
  });
});

describe("the bound on a message before routing", () => {
  test("refused from the header alone, before the payload arrives", () => {
    expect(frameMessage(new Uint8Array([0x01, 0x10, 0x00, 0x01]), 0, 4096)).toEqual({ kind: "error", reason: "message_too_large" });
    expect(frameMessage(new Uint8Array([0x00, 0x10, 0x00, 0x01]), 0, 4096)).toEqual({ kind: "need-more" }); // 4096 is allowed
  });

  test("counted over continuation packets", () => {
    const big = new Uint8Array(4 + MAX_PACKET_PAYLOAD + 4);
    big.set([0xff, 0xff, 0xff, 0x00]);
    big.set([0x01, 0x00, 0x00, 0x01], 4 + MAX_PACKET_PAYLOAD);
    expect(frameMessage(big, 0, MAX_PACKET_PAYLOAD)).toEqual({ kind: "error", reason: "message_too_large" });
    expect(frameMessage(big, 0, MAX_PACKET_PAYLOAD + 1)).toEqual({ kind: "need-more" });
  });
});

describe("sequence ids", () => {
  test("a continuation packet must count up by one (mod 256)", () => {
    const big = new Uint8Array(4 + MAX_PACKET_PAYLOAD + 4);
    big.set([0xff, 0xff, 0xff, 0xff]);
    big.set([0x00, 0x00, 0x00, 0x00], 4 + MAX_PACKET_PAYLOAD); // 255 then 0: fine
    expect(frameMessage(big, 0, 1 << 30)).toMatchObject({ kind: "message", sequenceId: 255, lastSequenceId: 0, packets: 2, payloadLength: MAX_PACKET_PAYLOAD });
    big[4 + MAX_PACKET_PAYLOAD + 3] = 2;
    expect(frameMessage(big, 0, 1 << 30)).toEqual({ kind: "error", reason: "bad_sequence" });
  });

  test("rewritten in place, one packet or a whole message", () => {
    const packet = NATIVE_CLIENT.slice(0, 4 + 213);
    setSequenceId(packet, 0, 3);
    expect(framePacket(packet)).toEqual({ kind: "packet", sequenceId: 3, length: 213, size: 217 });
    const two = toPackets(new Uint8Array(MAX_PACKET_PAYLOAD + 10), 0);
    const frame = frameMessage(two, 0, 1 << 30);
    if (frame.kind !== "message") throw new Error(frame.kind);
    expect(renumberMessage(two, 0, frame, 7)).toBe(9);
    expect(frameMessage(two, 0, 1 << 30)).toMatchObject({ sequenceId: 7, lastSequenceId: 8 });
  });
});

describe("framing a payload into packets round-trips", () => {
  for (const n of [0, 1, 251, MAX_PACKET_PAYLOAD - 1, MAX_PACKET_PAYLOAD, MAX_PACKET_PAYLOAD + 1, 2 * MAX_PACKET_PAYLOAD]) {
    test(`${n} bytes`, () => {
      const payload = new Uint8Array(n);
      for (let i = 0; i < n; i += 4099) payload[i] = i & 0xff;
      const wire = toPackets(payload, 250);
      const f = frameMessage(wire, 0, 1 << 30);
      if (f.kind !== "message") throw new Error(f.kind);
      // A payload that fills its last packet exactly is followed by an empty one.
      expect(f.packets).toBe(Math.floor(n / MAX_PACKET_PAYLOAD) + 1);
      expect(f.size).toBe(wire.length);
      expect(f.sequenceId).toBe(250);
      expect(Buffer.from(messagePayload(wire, 0, f)).equals(Buffer.from(payload))).toBe(true);
    });
  }

  test("framePacket: need-more until header and payload are there", () => {
    expect(framePacket(new Uint8Array([1, 0, 0]))).toEqual({ kind: "need-more" });
    expect(framePacket(new Uint8Array([1, 0, 0, 9]))).toEqual({ kind: "need-more" });
    expect(framePacket(new Uint8Array([1, 0, 0, 9, 0x0e, 0xaa]))).toEqual({ kind: "packet", sequenceId: 9, length: 1, size: 5 });
    expect(framePacket(new Uint8Array([0xaa, 1, 0, 0, 9, 0x0e]), 1)).toEqual({ kind: "packet", sequenceId: 9, length: 1, size: 5 });
  });
});
