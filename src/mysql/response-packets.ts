/**
 * The generic response packets: OK, ERR and EOF, and the ERR packet a proxy sends when it refuses
 * a client before routing, so the client prints a reason instead of "Lost connection".
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_response_packets.html
 * Pure: no Bun.
 * @module
 */
import { CLIENT_PROTOCOL_41, CLIENT_SESSION_TRACK, CLIENT_TRANSACTIONS, has, SERVER_SESSION_STATE_CHANGED } from "./capabilities.ts";
import { guarded, Malformed, PayloadReader } from "./payload-reader.ts";
import { PayloadWriter } from "./payload-writer.ts";

export const OK_HEADER = 0x00;
export const EOF_HEADER = 0xfe;
export const ERR_HEADER = 0xff;
/** An EOF packet is shorter than 9 bytes; a longer 0xFE packet is something else (an OK with CLIENT_DEPRECATE_EOF, a row). */
export const MAX_EOF_PAYLOAD = 8;

export interface OkPacket {
  readonly affectedRows: number;
  readonly lastInsertId: number;
  readonly statusFlags: number;
  readonly warnings: number;
  /** Human-readable status text ("" when absent). */
  readonly info: string;
  /** The raw session state change block (CLIENT_SESSION_TRACK and SERVER_SESSION_STATE_CHANGED), or null. */
  readonly sessionStateChanges: Uint8Array | null;
}

export interface ErrPacket {
  readonly code: number;
  /** The five-character SQLSTATE, or null when the packet has none (a server may omit it before the handshake). */
  readonly sqlState: string | null;
  readonly message: string;
}

export interface EofPacket {
  readonly warnings: number;
  readonly statusFlags: number;
}

export type OkParse = { readonly kind: "ok"; readonly ok: OkPacket } | { readonly kind: "error"; readonly reason: string };
export type ErrParse = { readonly kind: "err"; readonly err: ErrPacket } | { readonly kind: "error"; readonly reason: string };
export type EofParse = { readonly kind: "eof"; readonly eof: EofPacket } | { readonly kind: "error"; readonly reason: string };

const utf8 = new TextDecoder();

/** OK_Packet (header 0x00, or 0xFE in place of an EOF with CLIENT_DEPRECATE_EOF); `caps` are the session's. */
export function parseOk(payload: Uint8Array, caps: number): OkParse {
  return guarded((): OkParse => {
    const r = new PayloadReader(payload);
    const header = r.u8("header");
    if (header !== OK_HEADER && !(header === EOF_HEADER && payload.length > MAX_EOF_PAYLOAD)) throw new Malformed("not_ok_packet");
    const affectedRows = r.lenencInt("affected_rows");
    const lastInsertId = r.lenencInt("last_insert_id");
    let statusFlags = 0;
    let warnings = 0;
    if (has(caps, CLIENT_PROTOCOL_41)) {
      statusFlags = r.u16("status_flags");
      warnings = r.u16("warnings");
    } else if (has(caps, CLIENT_TRANSACTIONS)) statusFlags = r.u16("status_flags");
    let info = "";
    let sessionStateChanges: Uint8Array | null = null;
    if (has(caps, CLIENT_SESSION_TRACK)) {
      // Servers leave the info out entirely when it is empty and no state changed.
      if (r.left > 0) info = r.lenencString("info");
      if ((statusFlags & SERVER_SESSION_STATE_CHANGED) !== 0 && r.left > 0) sessionStateChanges = r.lenencBytes("session_state_changes");
    } else info = utf8.decode(r.rest());
    return { kind: "ok", ok: { affectedRows, lastInsertId, statusFlags, warnings, info, sessionStateChanges } };
  });
}

/**
 * ERR_Packet: 0xFF, int<2> code, then with CLIENT_PROTOCOL_41 "#" and a five-character SQLSTATE,
 * then the message. The marker is optional on read: a server that refuses a connection before
 * reading the client's capabilities (too many connections) may leave it out.
 */
export function parseErr(payload: Uint8Array): ErrParse {
  return guarded((): ErrParse => {
    const r = new PayloadReader(payload);
    if (r.u8("header") !== ERR_HEADER) throw new Malformed("not_err_packet");
    const code = r.u16("error_code");
    let sqlState: string | null = null;
    if (r.left > 0 && payload[r.pos] === 0x23) {
      r.pos++;
      sqlState = utf8.decode(r.fixed(5, "sql_state"));
    }
    return { kind: "err", err: { code, sqlState, message: utf8.decode(r.rest()) } };
  });
}

/** EOF_Packet: 0xFE, then with CLIENT_PROTOCOL_41 int<2> warnings and int<2> status flags. */
export function parseEof(payload: Uint8Array, caps: number): EofParse {
  return guarded((): EofParse => {
    const r = new PayloadReader(payload);
    if (r.u8("header") !== EOF_HEADER || payload.length > MAX_EOF_PAYLOAD) throw new Malformed("not_eof_packet");
    if (!has(caps, CLIENT_PROTOCOL_41)) return { kind: "eof", eof: { warnings: 0, statusFlags: 0 } };
    const warnings = r.u16("warnings");
    return { kind: "eof", eof: { warnings, statusFlags: r.u16("status_flags") } };
  });
}

// Error codes and SQLSTATEs for what a proxy refuses on its own, as a server would send them.
// https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html
export const ER_HANDSHAKE_ERROR = { code: 1043, sqlState: "08S01" } as const; // "Bad handshake"
export const ER_ACCESS_DENIED_ERROR = { code: 1045, sqlState: "28000" } as const;
export const ER_BAD_DB_ERROR = { code: 1049, sqlState: "42000" } as const; // "Unknown database"
export const ER_UNKNOWN_ERROR = { code: 1105, sqlState: "HY000" } as const;
export const ER_NET_PACKET_TOO_LARGE = { code: 1153, sqlState: "08S01" } as const;
/** "Client does not support authentication protocol requested by server": for clients without CLIENT_PLUGIN_AUTH. */
export const ER_NOT_SUPPORTED_AUTH_MODE = { code: 1251, sqlState: "08004" } as const;

/** An ERR_Packet payload with a SQLSTATE (every 4.1+ client expects one); frame it with toPackets. */
export function buildErr(err: { readonly code: number; readonly sqlState: string; readonly message: string }): Uint8Array {
  if (!/^[0-9A-Z]{5}$/.test(err.sqlState)) throw new RangeError(`buildErr: SQLSTATE must be five characters, got ${JSON.stringify(err.sqlState)}`);
  return new PayloadWriter().u8(ERR_HEADER).u16(err.code).u8(0x23).bytes(new TextEncoder().encode(err.sqlState)).bytes(new TextEncoder().encode(err.message)).payload();
}

/** An OK_Packet payload (for tests and fake servers): no rows, the given status, no info. */
export function buildOk(statusFlags: number, caps: number): Uint8Array {
  const w = new PayloadWriter().u8(OK_HEADER).lenencInt(0).lenencInt(0);
  if (has(caps, CLIENT_PROTOCOL_41)) w.u16(statusFlags).u16(0);
  return w.payload();
}
