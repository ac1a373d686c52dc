/**
 * The MySQL packet framer. https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_packets.html
 * Every packet is int<3> payload length (little-endian), int<1> sequence id, payload. A payload of
 * 0xFFFFFF bytes or more is sent as packets of exactly 0xFFFFFF followed by a shorter one (empty
 * if need be): one logical message spans them, their sequence ids counting up by one (mod 256).
 *
 * `frameMessage` says how many bytes at the front make one logical message, or need-more. It reads
 * only headers until the message is complete, and refuses a message longer than the caller's bound
 * as soon as a header announces it, before its bytes arrive: before routing the proxy has no
 * reason to hold a large message (a HandshakeResponse41 is a few hundred bytes).
 * `framePacket` is the single-packet view, for relaying packet by packet with sequence ids
 * rewritten (`setSequenceId`). Pure: no Bun, no allocation beyond the result.
 * @module
 */

export const PACKET_HEADER_BYTES = 4;
/** The largest payload one packet carries; a packet this full means another follows. */
export const MAX_PACKET_PAYLOAD = 0xffffff;

export type PacketFrame =
  | { readonly kind: "need-more" }
  /** One packet: `length` payload bytes after the header; consume `size` = 4 + length. */
  | { readonly kind: "packet"; readonly sequenceId: number; readonly length: number; readonly size: number };

export type MessageFrame =
  | { readonly kind: "need-more" }
  /**
   * A logical message of `payloadLength` bytes in `packets` packets whose ids run from
   * `sequenceId` to `lastSequenceId`; consume `size` bytes (headers included).
   */
  | {
    readonly kind: "message"; readonly sequenceId: number; readonly lastSequenceId: number;
    readonly packets: number; readonly payloadLength: number; readonly size: number;
  }
  /**
   * `message_too_large`: the headers seen so far announce more than `maxPayload` bytes.
   * `bad_sequence`: a continuation packet's id is not the previous one plus one.
   */
  | { readonly kind: "error"; readonly reason: "message_too_large" | "bad_sequence" };

const NEED_MORE = { kind: "need-more" } as const;

function lengthAt(bytes: Uint8Array, at: number): number {
  return bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16);
}

/** The packet at `bytes[start…]`. */
export function framePacket(bytes: Uint8Array, start = 0): PacketFrame {
  if (bytes.length - start < PACKET_HEADER_BYTES) return NEED_MORE;
  const length = lengthAt(bytes, start);
  if (bytes.length - start < PACKET_HEADER_BYTES + length) return NEED_MORE;
  return { kind: "packet", sequenceId: bytes[start + 3]!, length, size: PACKET_HEADER_BYTES + length };
}

/** The logical message at `bytes[start…]`, refusing one whose payload passes `maxPayload`. */
export function frameMessage(bytes: Uint8Array, start: number, maxPayload: number): MessageFrame {
  let at = start;
  let payloadLength = 0;
  let packets = 0;
  let sequenceId = -1;
  let previous = -1;
  for (;;) {
    if (bytes.length - at < PACKET_HEADER_BYTES) return NEED_MORE;
    const length = lengthAt(bytes, at);
    const id = bytes[at + 3]!;
    if (packets === 0) sequenceId = id;
    else if (id !== ((previous + 1) & 0xff)) return { kind: "error", reason: "bad_sequence" };
    previous = id;
    payloadLength += length;
    packets++;
    if (payloadLength > maxPayload) return { kind: "error", reason: "message_too_large" };
    if (bytes.length - at < PACKET_HEADER_BYTES + length) return NEED_MORE;
    at += PACKET_HEADER_BYTES + length;
    if (length < MAX_PACKET_PAYLOAD) {
      return { kind: "message", sequenceId, lastSequenceId: id, packets, payloadLength, size: at - start };
    }
  }
}

/**
 * The payload of a framed message: a view when it is one packet, else the packets' payloads joined
 * (one copy; only messages past 16 MiB span packets).
 */
export function messagePayload(bytes: Uint8Array, start: number, frame: { readonly packets: number; readonly payloadLength: number }): Uint8Array {
  if (frame.packets === 1) return bytes.subarray(start + PACKET_HEADER_BYTES, start + PACKET_HEADER_BYTES + frame.payloadLength);
  const out = new Uint8Array(frame.payloadLength);
  let at = start;
  let filled = 0;
  for (let i = 0; i < frame.packets; i++) {
    const length = lengthAt(bytes, at);
    out.set(bytes.subarray(at + PACKET_HEADER_BYTES, at + PACKET_HEADER_BYTES + length), filled);
    filled += length;
    at += PACKET_HEADER_BYTES + length;
  }
  return out;
}

/** Rewrite, in place, the sequence id of the packet whose header starts at `at`. */
export function setSequenceId(bytes: Uint8Array, at: number, sequenceId: number): void {
  bytes[at + 3] = sequenceId & 0xff;
}

/**
 * Rewrite, in place, the ids of every packet of a framed message to count up from `firstId`, as a
 * relay must when it has sent or dropped packets of its own (an AuthSwitchRequest the server never
 * sent). Returns the id the next packet in that direction takes.
 */
export function renumberMessage(bytes: Uint8Array, start: number, frame: { readonly packets: number }, firstId: number): number {
  let at = start;
  let id = firstId;
  for (let i = 0; i < frame.packets; i++) {
    setSequenceId(bytes, at, id);
    id = (id + 1) & 0xff;
    at += PACKET_HEADER_BYTES + lengthAt(bytes, at);
  }
  return id;
}
