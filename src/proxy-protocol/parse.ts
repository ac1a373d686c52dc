/**
 * Reading a PROXY protocol header (haproxy's doc/proxy-protocol.txt) at the front of a connection
 * from a trusted proxy: the v1 text line or the v2 binary header, told apart by the first byte.
 *
 * Incremental by re-reading: the caller holds the bytes so far (at most {@link ProxyHeaderLimits}
 * worth, so re-reading costs nothing) and calls again when more arrive. Every answer depends only on
 * the bytes given, and a rejection is given as soon as the bytes seen already rule a header out, so
 * a prefix of any input answers `need-more` or what the whole input answers.
 *
 * Pure: no Bun, no sockets. Strings are decoded only for the addresses (which the gate, routing and
 * logs need).
 * @module
 */
import { formatIp, parseIp, unmapIpv4, type IpAddress } from "../net/ip.ts";
import {
  V1_MAX_BYTES, V2_COMMAND_LOCAL, V2_COMMAND_PROXY, V2_FIXED_BYTES, V2_INET6_ADDRESS_BYTES, V2_INET_ADDRESS_BYTES, V2_SIGNATURE,
  V2_TCP4, V2_TCP6, V2_TLV_HEADER_BYTES, V2_UDP4, V2_UDP6, V2_UNIX_ADDRESS_BYTES, V2_UNIX_DGRAM, V2_UNIX_STREAM, V2_UNSPEC, V2_VERSION,
} from "./wire.ts";

/** An address in a received header: text as the rest of the proxy names clients (IPv4-mapped as IPv4). */
export interface ReceivedEndpoint {
  readonly ip: string;
  readonly address: IpAddress;
  readonly port: number;
}

export type ProxyHeaderReason =
  /** The first bytes are neither "PROXY " nor the v2 signature. */
  | "not_proxy_header"
  /** v1: no CRLF within 107 bytes (§2.1). */
  | "v1_too_long"
  /** v1: a LF without CR, or a CR not before the LF, in the line. */
  | "v1_bad_line_end"
  /** v1: not "TCP4", "TCP6" or "UNKNOWN" after "PROXY ". */
  | "v1_bad_protocol"
  /** v1: not exactly four fields after the protocol, each separated by one space. */
  | "v1_bad_fields"
  /** v1: an address that is not one of the protocol's family in its plain text form. */
  | "v1_bad_address"
  /** v1: a port that is not 0-65535 in decimal without leading zeros. */
  | "v1_bad_port"
  /** v2: the version nibble is not 2. */
  | "v2_bad_version"
  /** v2: a command other than LOCAL (0) or PROXY (1). */
  | "v2_bad_command"
  /** v2: a family/transport byte §2.2 does not define. */
  | "v2_bad_family"
  /** v2: a datagram transport (UDP, unix dgram) announced on a stream connection. */
  | "v2_not_stream"
  /** v2: the length is shorter than its family's address block. */
  | "v2_short_addresses"
  /** v2: the header is longer than the limit the caller set. */
  | "v2_too_long"
  /** v2: a TLV after the addresses runs past the header's end. */
  | "v2_bad_tlv";

export type ProxyHeaderStep =
  /** A prefix of a header: call again with more bytes. */
  | { readonly kind: "need-more" }
  /**
   * A header of `length` bytes (the caller consumes them; what follows is the client's stream).
   * `src`/`dst` are null when the header says to use the connection's own endpoints: v1 UNKNOWN,
   * v2 LOCAL (the proxy's health check), v2 AF_UNSPEC, or unix-socket addresses.
   */
  | { readonly kind: "header"; readonly version: 1 | 2; readonly length: number; readonly src: ReceivedEndpoint | null; readonly dst: ReceivedEndpoint | null }
  | { readonly kind: "error"; readonly reason: ProxyHeaderReason };

export interface ProxyHeaderLimits {
  /** Most bytes a v2 header (fixed part, addresses and TLVs) may have; §2.2 allows up to 16 + 65535. */
  readonly maxV2Bytes: number;
}

/** Enough for the addresses plus the TLVs proxies send (unique id, authority, TLS facts, cloud ids). */
export const DEFAULT_PROXY_HEADER_LIMITS: ProxyHeaderLimits = { maxV2Bytes: 4096 };

const NEED_MORE = { kind: "need-more" } as const;
const V1_PREFIX = [0x50, 0x52, 0x4f, 0x58, 0x59, 0x20]; // "PROXY "
const CR = 0x0d;
const LF = 0x0a;
const PORT = /^(?:0|[1-9][0-9]{0,4})$/;

const fail = (reason: ProxyHeaderReason): ProxyHeaderStep => ({ kind: "error", reason });

/** The header at `bytes[start…]`, need-more, or why it is not one. */
export function parseProxyHeader(bytes: Uint8Array, start = 0, limits: ProxyHeaderLimits = DEFAULT_PROXY_HEADER_LIMITS): ProxyHeaderStep {
  if (start >= bytes.length) return NEED_MORE;
  const first = bytes[start];
  if (first === V1_PREFIX[0]) return parseV1(bytes, start);
  if (first === V2_SIGNATURE[0]) return parseV2(bytes, start, limits);
  return fail("not_proxy_header");
}

// ─── v1 (§2.1) ───────────────────────────────────────────────────────────────────────────────────

function parseV1(bytes: Uint8Array, start: number): ProxyHeaderStep {
  const available = bytes.length - start;
  const prefix = Math.min(available, V1_PREFIX.length);
  for (let i = 0; i < prefix; i++) if (bytes[start + i] !== V1_PREFIX[i]) return fail("not_proxy_header");
  // The line ends at the first LF within 107 bytes; it must be the CRLF, and no CR may come earlier.
  const scanEnd = start + Math.min(available, V1_MAX_BYTES);
  for (let i = start + V1_PREFIX.length; i < scanEnd; i++) {
    const b = bytes[i];
    if (b === LF) return bytes[i - 1] === CR ? v1Line(bytes, start, i - 1) : fail("v1_bad_line_end");
    if (b === CR && i + 1 < scanEnd && bytes[i + 1] !== LF) return fail("v1_bad_line_end");
  }
  return available >= V1_MAX_BYTES ? fail("v1_too_long") : NEED_MORE;
}

/** The line `bytes[start, crAt)`: "PROXY" SP protocol [SP src SP dst SP sport SP dport]. */
function v1Line(bytes: Uint8Array, start: number, crAt: number): ProxyHeaderStep {
  const length = crAt + 2 - start;
  let text = "";
  for (let i = start + V1_PREFIX.length; i < crAt; i++) text += String.fromCharCode(bytes[i]!);
  const fields = text.split(" ");
  const protocol = fields[0];
  // §2.1: with UNKNOWN the rest of the line is to be ignored, whatever it holds.
  if (protocol === "UNKNOWN") return { kind: "header", version: 1, length, src: null, dst: null };
  if (protocol !== "TCP4" && protocol !== "TCP6") return fail("v1_bad_protocol");
  if (fields.length !== 5) return fail("v1_bad_fields");
  const family = protocol === "TCP4" ? 4 : 6;
  const src = v1Address(fields[1]!, family);
  const dst = v1Address(fields[2]!, family);
  if (!src || !dst) return fail("v1_bad_address");
  const sport = v1Port(fields[3]!);
  const dport = v1Port(fields[4]!);
  if (sport < 0 || dport < 0) return fail("v1_bad_port");
  return { kind: "header", version: 1, length, src: endpoint(src, sport), dst: endpoint(dst, dport) };
}

/** An address of `family` as inet_pton reads it: no brackets, no zone id. */
function v1Address(text: string, family: 4 | 6): IpAddress | null {
  if (text.includes("[") || text.includes("%")) return null;
  const ip = parseIp(text);
  return ip !== null && ip.family === family ? ip : null;
}

function v1Port(text: string): number {
  if (!PORT.test(text)) return -1;
  const n = Number(text);
  return n <= 0xffff ? n : -1;
}

// ─── v2 (§2.2) ───────────────────────────────────────────────────────────────────────────────────

function parseV2(bytes: Uint8Array, start: number, limits: ProxyHeaderLimits): ProxyHeaderStep {
  const available = bytes.length - start;
  const signed = Math.min(available, V2_SIGNATURE.length);
  for (let i = 0; i < signed; i++) if (bytes[start + i] !== V2_SIGNATURE[i]) return fail("not_proxy_header");
  if (available <= 12) return NEED_MORE;
  const versionCommand = bytes[start + 12]!;
  if (versionCommand >> 4 !== V2_VERSION) return fail("v2_bad_version");
  const command = versionCommand & 0x0f;
  if (command !== V2_COMMAND_LOCAL && command !== V2_COMMAND_PROXY) return fail("v2_bad_command");
  if (available <= 13) return NEED_MORE;
  const family = bytes[start + 13]!;
  // §2.2: with LOCAL the receiver discards the protocol block, family included, so only PROXY's is checked.
  const addressBytes = command === V2_COMMAND_PROXY ? addressBlockSize(family) : 0;
  if (typeof addressBytes === "string") return fail(addressBytes);
  if (available < V2_FIXED_BYTES) return NEED_MORE;
  const rest = (bytes[start + 14]! << 8) | bytes[start + 15]!;
  const length = V2_FIXED_BYTES + rest;
  if (length > limits.maxV2Bytes) return fail("v2_too_long");
  if (rest < addressBytes) return fail("v2_short_addresses");
  if (available < length) return NEED_MORE;
  // §2.2: LOCAL and AF_UNSPEC carry no address information to use; what follows their fixed part is skipped whole.
  if (command === V2_COMMAND_LOCAL || family === V2_UNSPEC) return { kind: "header", version: 2, length, src: null, dst: null };
  if (!tlvsFit(bytes, start + V2_FIXED_BYTES + addressBytes, start + length)) return fail("v2_bad_tlv");
  if (family === V2_UNIX_STREAM) return { kind: "header", version: 2, length, src: null, dst: null };
  const at = start + V2_FIXED_BYTES;
  const size = family === V2_TCP4 ? 4 : 16;
  const src = v2Address(bytes, at, size);
  const dst = v2Address(bytes, at + size, size);
  const ports = at + 2 * size;
  const sport = (bytes[ports]! << 8) | bytes[ports + 1]!;
  const dport = (bytes[ports + 2]! << 8) | bytes[ports + 3]!;
  return { kind: "header", version: 2, length, src: endpoint(src, sport), dst: endpoint(dst, dport) };
}

/** The address block's size for a PROXY header's family/transport byte, or why it is refused. */
function addressBlockSize(family: number): number | "v2_bad_family" | "v2_not_stream" {
  switch (family) {
    case V2_UNSPEC:
      return 0;
    case V2_TCP4:
      return V2_INET_ADDRESS_BYTES;
    case V2_TCP6:
      return V2_INET6_ADDRESS_BYTES;
    case V2_UNIX_STREAM:
      return V2_UNIX_ADDRESS_BYTES;
    case V2_UDP4:
    case V2_UDP6:
    case V2_UNIX_DGRAM:
      return "v2_not_stream";
    default:
      return "v2_bad_family"; // §2.2: other values "must be rejected as invalid by receivers"
  }
}

/** §2.2.x: the TLVs from `at` to `end` are skipped, but each must end within the header. */
function tlvsFit(bytes: Uint8Array, at: number, end: number): boolean {
  while (at < end) {
    if (end - at < V2_TLV_HEADER_BYTES) return false;
    at += V2_TLV_HEADER_BYTES + ((bytes[at + 1]! << 8) | bytes[at + 2]!);
  }
  return at === end;
}

function v2Address(bytes: Uint8Array, at: number, size: 4 | 16): IpAddress {
  return { family: size === 4 ? 4 : 6, bytes: bytes.slice(at, at + size) };
}

function endpoint(address: IpAddress, port: number): ReceivedEndpoint {
  const ip = unmapIpv4(address);
  return { ip: formatIp(ip), address: ip, port };
}
