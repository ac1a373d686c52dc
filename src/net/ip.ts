/**
 * IP addresses and CIDR prefixes: parse, format, match.
 *
 * Pure: imports nothing from Bun or node, so it runs anywhere and is unit-tested in isolation.
 * Addresses are network-order bytes (4 or 16), so matching is a byte-wise mask and needs no bigint.
 *
 * @module
 */

/** An IPv4 or IPv6 address as network-order bytes: 4 bytes for family 4, 16 for family 6. */
export interface IpAddress {
  readonly family: 4 | 6;
  readonly bytes: Uint8Array;
}

/** A prefix: an address whose bits after `prefix` are all zero, and the prefix length. */
export interface Cidr extends IpAddress {
  /** Prefix length in bits: 0-32 for family 4, 0-128 for family 6. */
  readonly prefix: number;
}

// RFC 4291 §2.5.5.2: an IPv4-mapped IPv6 address is 80 zero bits, 16 one bits, then the IPv4 address.
// https://www.rfc-editor.org/rfc/rfc4291#section-2.5.5.2
const IPV4_MAPPED_PREFIX: readonly number[] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

// Longest textual IPv6 address, "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255" (INET6_ADDRSTRLEN - 1);
// anything longer is rejected before any splitting, so hostile input costs nothing.
// https://pubs.opengroup.org/onlinepubs/9799919799/basedefs/netinet_in.h.html
const MAX_IPV6_TEXT = 45;

// Zone ids (RFC 4007 §11) are interface names or numbers; we allow RFC 3986 "unreserved" characters,
// which covers both, and cap the length (Linux IFNAMSIZ is 16) so the parser stays bounded.
// https://www.rfc-editor.org/rfc/rfc4007#section-11
const ZONE_ID = /^[0-9A-Za-z._~-]{1,64}$/;

/** A decimal IPv4 part: "0", or 1-3 digits without a leading zero (a leading zero means octal to inet_aton). */
const IPV4_PART = /^(?:0|[1-9][0-9]{0,2})$/;
/** One IPv6 group: 1-4 hex digits (RFC 4291 §2.2). */
const HEX_GROUP = /^[0-9A-Fa-f]{1,4}$/;
/** A prefix length: decimal, no sign, no leading zero. */
const PREFIX_LENGTH = /^(?:0|[1-9][0-9]{0,2})$/;

/**
 * Parses an IP address in text form; returns null for anything that is not exactly one.
 *
 * IPv4: strict dotted quad, four decimal parts 0-255, no leading zeros ("01.2.3.4" is rejected because
 * inet_aton would read it as octal), no shorthand ("127.1"), no hex.
 * IPv6: every RFC 4291 §2.2 form ("::", embedded IPv4 tail as in "::ffff:1.2.3.4"), optionally in
 * brackets ("[::1]"), optionally with a zone id ("fe80::1%eth0"), which is dropped.
 */
export function parseIp(text: string): IpAddress | null {
  let inner = text;
  const bracketed = inner.startsWith("[");
  if (bracketed) {
    if (!inner.endsWith("]")) return null;
    inner = inner.slice(1, -1);
  }
  const zoneAt = inner.indexOf("%");
  if (zoneAt >= 0) {
    if (!ZONE_ID.test(inner.slice(zoneAt + 1))) return null;
    inner = inner.slice(0, zoneAt);
  }
  // Brackets and zones belong to IPv6 only.
  if (!inner.includes(":")) return bracketed || zoneAt >= 0 ? null : parseIpv4(inner);
  return parseIpv6(inner);
}

function parseIpv4(text: string): IpAddress | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const bytes = new Uint8Array(4);
  for (const [index, part] of parts.entries()) {
    if (!IPV4_PART.test(part)) return null;
    const value = Number(part);
    if (value > 255) return null;
    bytes[index] = value;
  }
  return { family: 4, bytes };
}

function parseIpv6(text: string): IpAddress | null {
  if (text.length > MAX_IPV6_TEXT) return null;
  // An embedded IPv4 tail becomes two hex groups, then the text parses like any other.
  let hex = text;
  const lastColon = text.lastIndexOf(":");
  const tail = text.slice(lastColon + 1);
  if (tail.includes(".")) {
    const v4 = parseIpv4(tail);
    if (v4 === null) return null;
    const view = new DataView(v4.bytes.buffer);
    hex = `${text.slice(0, lastColon + 1)}${view.getUint16(0).toString(16)}:${view.getUint16(2).toString(16)}`;
  }
  // At most one "::"; ":::" shows up as two overlapping matches and is rejected the same way.
  const gap = hex.indexOf("::");
  if (gap !== hex.lastIndexOf("::")) return null;
  const head = gap < 0 ? hex : hex.slice(0, gap);
  const rest = gap < 0 ? "" : hex.slice(gap + 2);
  const headGroups = head === "" ? [] : head.split(":");
  const tailGroups = rest === "" ? [] : rest.split(":");
  const count = headGroups.length + tailGroups.length;
  // Without "::" there must be eight groups; with it, "::" stands for at least one zero group.
  if (gap < 0 ? count !== 8 : count > 7) return null;
  const bytes = new Uint8Array(16);
  const view = new DataView(bytes.buffer);
  const groups = [...headGroups.map((group, i) => [i, group] as const),
    ...tailGroups.map((group, i) => [8 - tailGroups.length + i, group] as const)];
  for (const [index, group] of groups) {
    if (!HEX_GROUP.test(group)) return null;
    view.setUint16(index * 2, Number.parseInt(group, 16));
  }
  return { family: 6, bytes };
}

/**
 * Formats an address: dotted quad for IPv4; for IPv6 the RFC 5952 canonical form (lower case, no leading
 * zeros, the longest run of two or more zero groups, leftmost on a tie, as "::"), with IPv4-mapped
 * addresses in mixed notation ("::ffff:1.2.3.4", RFC 5952 §5).
 */
export function formatIp(ip: IpAddress): string {
  if (ip.family === 4) return ip.bytes.join(".");
  if (isIpv4Mapped(ip)) return `::ffff:${ip.bytes.subarray(12, 16).join(".")}`;
  const view = new DataView(ip.bytes.buffer, ip.bytes.byteOffset, 16);
  const groups = Array.from({ length: 8 }, (_, i) => view.getUint16(i * 2));
  let bestStart = -1;
  let bestLength = 1; // a single zero group is never shortened (RFC 5952 §4.2.2)
  for (let start = 0; start < 8; ) {
    let end = start;
    while (end < 8 && groups[end] === 0) end++;
    if (end - start > bestLength) [bestStart, bestLength] = [start, end - start];
    start = end === start ? start + 1 : end;
  }
  const hex = groups.map((group) => group.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLength).join(":")}`;
}

/** True for an IPv4-mapped IPv6 address (::ffff:0:0/96). */
function isIpv4Mapped(ip: IpAddress): boolean {
  return ip.family === 6 && IPV4_MAPPED_PREFIX.every((byte, i) => ip.bytes[i] === byte);
}

/**
 * Returns the IPv4 address an IPv4-mapped IPv6 address (::ffff:a.b.c.d) carries; any other address is
 * returned unchanged. Dual-stack sockets report IPv4 peers this way.
 */
export function unmapIpv4(ip: IpAddress): IpAddress {
  return isIpv4Mapped(ip) ? { family: 4, bytes: ip.bytes.slice(12, 16) } : ip;
}

/**
 * Parses "address/prefix" (a bare address is a /32 or /128) and zeroes the host bits, so
 * "10.1.2.3/8" becomes 10.0.0.0/8. Returns null for a bad address, a bad or out-of-range prefix,
 * or brackets and zone ids, which have no meaning in a prefix.
 */
export function parseCidr(text: string): Cidr | null {
  const slash = text.indexOf("/");
  const addressText = slash < 0 ? text : text.slice(0, slash);
  if (/[[\]%]/.test(addressText)) return null;
  const ip = parseIp(addressText);
  if (ip === null) return null;
  const maxPrefix = ip.bytes.length * 8;
  let prefix = maxPrefix;
  if (slash >= 0) {
    const prefixText = text.slice(slash + 1);
    if (!PREFIX_LENGTH.test(prefixText)) return null;
    prefix = Number(prefixText);
    if (prefix > maxPrefix) return null;
  }
  return { family: ip.family, bytes: ip.bytes.map((byte, i) => byte & maskByte(prefix, i)), prefix };
}

/** The mask for byte `index` of a `prefix`-bit prefix. */
function maskByte(prefix: number, index: number): number {
  const bits = prefix - index * 8;
  if (bits >= 8) return 0xff;
  return bits <= 0 ? 0 : (0xff << (8 - bits)) & 0xff;
}

/**
 * True when `ip` is inside `cidr`. Families must match: an IPv4-mapped IPv6 address is not inside an
 * IPv4 prefix here (use {@link unmapIpv4} first, or {@link CidrSet}, which does).
 */
export function cidrContains(cidr: Cidr, ip: IpAddress): boolean {
  if (cidr.family !== ip.family || cidr.bytes.length !== ip.bytes.length) return false;
  for (let i = 0; i < cidr.bytes.length; i++) {
    const mask = maskByte(cidr.prefix, i);
    if (mask === 0) return true;
    if ((((ip.bytes[i] ?? 0) ^ (cidr.bytes[i] ?? 0)) & mask) !== 0) return false;
  }
  return true;
}

/** An IPv6 prefix inside ::ffff:0:0/96 becomes the IPv4 prefix it means; others are unchanged. */
function unmapCidr(cidr: Cidr): Cidr {
  if (cidr.prefix < 96 || !isIpv4Mapped(cidr)) return cidr;
  return { family: 4, bytes: cidr.bytes.slice(12, 16), prefix: cidr.prefix - 96 };
}

/**
 * A set of prefixes that answers "is this address in any of them?", for listener allow and block lists.
 *
 * IPv4-mapped addresses are judged as the IPv4 address they carry, because that is how a dual-stack
 * socket reports an IPv4 peer: "10.0.0.0/8" matches both 10.1.2.3 and ::ffff:10.1.2.3, and an entry
 * written as "::ffff:10.0.0.0/104" is stored as 10.0.0.0/8. Conversely an IPv6-only entry such as
 * "::/0" does not match an IPv4 peer, mapped or not.
 *
 * Lookup is a linear scan, fine for the tens to hundreds of entries a listener list holds.
 */
export class CidrSet {
  readonly #entries: Cidr[] = [];

  /** Builds a set holding `cidrs`. */
  constructor(cidrs: Iterable<Cidr> = []) {
    for (const cidr of cidrs) this.add(cidr);
  }

  /** Adds one prefix. */
  add(cidr: Cidr): void {
    this.#entries.push(unmapCidr(cidr));
  }

  /** Number of prefixes held. */
  get size(): number {
    return this.#entries.length;
  }

  /** True when some prefix in the set contains `ip`. */
  contains(ip: IpAddress): boolean {
    const target = unmapIpv4(ip);
    return this.#entries.some((cidr) => cidrContains(cidr, target));
  }

  /** The most specific prefix containing `ip` (as stored, so mapped entries come back as IPv4), or null. */
  match(ip: IpAddress): Cidr | null {
    const target = unmapIpv4(ip);
    let best: Cidr | null = null;
    for (const cidr of this.#entries) {
      if (cidrContains(cidr, target) && (best === null || cidr.prefix > best.prefix)) best = cidr;
    }
    return best;
  }
}

/** Whether `host` (an IP literal or "localhost") is a loopback address: 127.0.0.0/8 or ::1. */
export function isLoopbackHost(host: string): boolean {
  if (host === "localhost") return true;
  const ip = parseIp(host);
  return ip !== null && (ip.family === 4 ? ip.bytes[0] === 127 : ip.bytes.every((b, i) => b === (i === 15 ? 1 : 0)));
}
