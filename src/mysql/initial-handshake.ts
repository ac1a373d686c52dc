/**
 * Protocol::HandshakeV10, the greeting a MySQL server sends first: built by the proxy for its
 * clients (it must speak first, DESIGN.md), parsed from the real server it routes to (its
 * capabilities, and the scramble and plugin the client is then asked to answer).
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase_packets_protocol_handshake_v10.html
 *
 *   int<1> 10 · string<NUL> server version · int<4> connection id · string[8] scramble part 1 ·
 *   int<1> 0 · int<2> capabilities (low) · int<1> charset · int<2> status · int<2> capabilities
 *   (high) · int<1> scramble length (with CLIENT_PLUGIN_AUTH, else 0) · string[10] reserved ·
 *   string[max(13, length - 8)] scramble part 2 (with CLIENT_SECURE_CONNECTION) ·
 *   string<NUL> auth plugin name (with CLIENT_PLUGIN_AUTH)
 *
 * Part 2 of a 20-byte scramble is 12 bytes and a NUL. MariaDB prefixes its version with "5.5.5-"
 * and, when it clears CLIENT_MYSQL (= CLIENT_LONG_PASSWORD), keeps its extended capabilities in the
 * last 4 reserved bytes. Pure: no Bun.
 * @module
 */
import { CLIENT_LONG_PASSWORD, CLIENT_PLUGIN_AUTH, CLIENT_SECURE_CONNECTION, has } from "./capabilities.ts";
import { guarded, Malformed, PayloadReader } from "./payload-reader.ts";
import { PayloadWriter } from "./payload-writer.ts";
import { ERR_HEADER, parseErr, type ErrPacket } from "./response-packets.ts";

export const PROTOCOL_VERSION_10 = 10;
/** mysql_native_password and caching_sha2_password use a 20-byte scramble. */
export const SCRAMBLE_BYTES = 20;

export interface InitialHandshake {
  readonly serverVersion: string;
  readonly connectionId: number;
  /** The whole scramble (part 1 and part 2, without part 2's NUL). */
  readonly scramble: Uint8Array;
  /** The 32 standard capability bits, unsigned. */
  readonly capabilities: number;
  /** MariaDB's extended capabilities (the upper 32 bits), 0 when the server sends none. */
  readonly mariadbCapabilities: number;
  readonly characterSet: number;
  readonly statusFlags: number;
  /** "" when the server does not send one (no CLIENT_PLUGIN_AUTH): mysql_native_password is meant. */
  readonly authPluginName: string;
}

export type InitialHandshakeParse =
  | { readonly kind: "handshake"; readonly handshake: InitialHandshake }
  /** The server refused the connection before greeting (too many connections, host blocked). */
  | { readonly kind: "server-error"; readonly err: ErrPacket }
  | { readonly kind: "error"; readonly reason: string };

const utf8 = new TextDecoder();

/** Parse a server's greeting (the payload of its first packet). */
export function parseInitialHandshake(payload: Uint8Array): InitialHandshakeParse {
  if (payload.length > 0 && payload[0] === ERR_HEADER) {
    const e = parseErr(payload);
    return e.kind === "err" ? { kind: "server-error", err: e.err } : e;
  }
  return guarded((): InitialHandshakeParse => {
    const r = new PayloadReader(payload);
    if (r.u8("protocol_version") !== PROTOCOL_VERSION_10) throw new Malformed("unsupported_protocol_version");
    const serverVersion = r.nulString("server_version");
    const connectionId = r.u32("connection_id");
    const part1 = r.fixed(8, "scramble");
    r.u8("filler");
    const low = r.u16("capabilities");
    const characterSet = r.u8("character_set");
    const statusFlags = r.u16("status_flags");
    const capabilities = (low | (r.u16("capabilities") << 16)) >>> 0;
    const scrambleLength = r.u8("scramble_length");
    const reserved = r.fixed(10, "reserved");
    const mariadbCapabilities = has(capabilities, CLIENT_LONG_PASSWORD)
      ? 0
      : (reserved[6]! | (reserved[7]! << 8) | (reserved[8]! << 16) | (reserved[9]! << 24)) >>> 0;
    let scramble: Uint8Array = part1.slice();
    if (has(capabilities, CLIENT_SECURE_CONNECTION)) {
      const part2 = r.fixed(Math.max(13, scrambleLength - 8), "scramble");
      const whole = new Uint8Array(8 + part2.length);
      whole.set(part1);
      whole.set(part2, 8);
      scramble = whole[whole.length - 1] === 0 ? whole.subarray(0, whole.length - 1) : whole;
    }
    let authPluginName = "";
    if (has(capabilities, CLIENT_PLUGIN_AUTH) && r.left > 0) {
      // MySQL 5.5.7-5.5.9 sent the name without its NUL (Bug#59453): take it to the end then.
      const nul = payload.indexOf(0, r.pos);
      authPluginName = utf8.decode(payload.subarray(r.pos, nul < 0 ? payload.length : nul));
    }
    return { kind: "handshake", handshake: { serverVersion, connectionId, scramble, capabilities, mariadbCapabilities, characterSet, statusFlags, authPluginName } };
  });
}

/**
 * The proxy's greeting. The scramble must be 20 bytes with no NUL (some clients read part 2 as a
 * NUL-terminated string; `makeScramble` gives such bytes). With CLIENT_PLUGIN_AUTH the plugin name
 * is sent; without CLIENT_LONG_PASSWORD, `mariadbCapabilities` go in the reserved bytes as MariaDB
 * servers send them.
 */
export function buildInitialHandshake(h: InitialHandshake): Uint8Array {
  if (h.scramble.length !== SCRAMBLE_BYTES || h.scramble.includes(0)) throw new RangeError("buildInitialHandshake: the scramble must be 20 bytes without NUL");
  const caps = h.capabilities >>> 0;
  const w = new PayloadWriter()
    .u8(PROTOCOL_VERSION_10)
    .nulString(h.serverVersion)
    .u32(h.connectionId)
    .bytes(h.scramble.subarray(0, 8))
    .u8(0)
    .u16(caps & 0xffff)
    .u8(h.characterSet)
    .u16(h.statusFlags)
    .u16(caps >>> 16)
    .u8(has(caps, CLIENT_PLUGIN_AUTH) ? SCRAMBLE_BYTES + 1 : 0)
    .zeros(6);
  if (has(caps, CLIENT_LONG_PASSWORD)) w.zeros(4);
  else w.u32(h.mariadbCapabilities);
  if (has(caps, CLIENT_SECURE_CONNECTION)) w.bytes(h.scramble.subarray(8)).u8(0);
  if (has(caps, CLIENT_PLUGIN_AUTH)) w.nulString(h.authPluginName);
  return w.payload();
}

/**
 * A 20-byte scramble from 20 random bytes (crypto.getRandomValues is the caller's): each byte is
 * mapped into printable ASCII 0x21-0x7E, as MySQL's own scrambles are, so no byte is a NUL.
 */
export function makeScramble(random: Uint8Array): Uint8Array {
  if (random.length < SCRAMBLE_BYTES) throw new RangeError("makeScramble: needs 20 random bytes");
  return Uint8Array.from(random.subarray(0, SCRAMBLE_BYTES), (b) => 0x21 + (b % 94));
}
