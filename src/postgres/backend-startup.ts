/**
 * The framer over a PostgreSQL backend's first messages (authentication, ParameterStatus,
 * BackendKeyData, ReadyForQuery), for CancelRequest routing (src/postgres/cancel.ts). Pure: bytes in
 * a ByteQueue in, what they said out. Every backend message is Byte1 type, Int32 length (itself
 * included), body: https://www.postgresql.org/docs/current/protocol-message-formats.html
 * @module
 */
import { ByteQueue } from "../net/byte-queue.ts";

const BACKEND_KEY_DATA = 0x4b; // 'K'
const READY_FOR_QUERY = 0x5a; // 'Z'
const ERROR_RESPONSE = 0x45; // 'E'

/** The backend's startup replies are small (about 400 bytes); SASL adds a few hundred. */
export const MAX_STARTUP_REPLY = 16 * 1024;

/** The key a backend gave its client for cancelling (BackendKeyData). */
export interface BackendKey {
  readonly pid: number;
  /** 4 bytes in protocol 3.0, up to 256 in 3.2. */
  readonly secret: Uint8Array;
}

export type StartupReading =
  /** More messages to come; `key` when one was read this time. */
  | { readonly kind: "need-more"; readonly key: BackendKey | null }
  /** The startup replies are over (ReadyForQuery, or an ErrorResponse ending the session). */
  | { readonly kind: "done"; readonly key: BackendKey | null }
  /** Not a startup exchange (a length below 4), or longer than {@link MAX_STARTUP_REPLY}: stop looking. */
  | { readonly kind: "gave-up"; readonly key: BackendKey | null };

/** A queue for the backend's bytes while they are read; bounded by the whole exchange's size. */
export function newStartupQueue(): ByteQueue {
  return new ByteQueue(MAX_STARTUP_REPLY, "startup_reply_too_long");
}

/**
 * Read the whole messages at the front of `pending` (consuming them); what is left is the start of
 * a message not yet whole. Call after each push of the backend's bytes.
 */
export function readStartupReplies(pending: ByteQueue): StartupReading {
  const bytes = pending.bytes();
  let key: BackendKey | null = null;
  let pos = 0;
  while (pos + 5 <= bytes.length) {
    const type = bytes[pos]!;
    const len = ((bytes[pos + 1]! << 24) >>> 0) + (bytes[pos + 2]! << 16) + (bytes[pos + 3]! << 8) + bytes[pos + 4]!;
    if (len < 4) return { kind: "gave-up", key };
    if (pos + 1 + len > bytes.length) break;
    if (type === BACKEND_KEY_DATA && len >= 12) {
      const body = bytes.subarray(pos + 5, pos + 1 + len);
      key = { pid: ((body[0]! << 24) >>> 0) + (body[1]! << 16) + (body[2]! << 8) + body[3]!, secret: body.slice(4) };
    }
    if (type === READY_FOR_QUERY || type === ERROR_RESPONSE) return { kind: "done", key };
    pos += 1 + len;
  }
  if (pos > 0) pending.consume(pos);
  return { kind: "need-more", key };
}
