/**
 * SSRF check of the address a proxy is about to dial.
 *
 * Run it on the IP actually dialled, after DNS, never on a host name: a name can resolve to anything, and
 * resolve differently the second time. Pure: imports nothing from Bun or node.
 *
 * The table holds every entry of the IANA IPv4 and IPv6 Special-Purpose Address Registries (as updated
 * 2025), plus the few special ranges that live in other registries (multicast, deprecated site-local,
 * deprecated IPv4-compatible). Some registry entries are marked "globally reachable" (AS112, AMT, the
 * PCP/TURN anycast addresses, ORCHIDv2, NAT64's 64:ff9b::/96); we block them all anyway: no upstream of a
 * proxy has a reason to live there, and one rule ("special-purpose means refused") is easier to audit
 * than a list of exceptions. Translation prefixes (NAT64, 6to4, Teredo) are refused outright rather than
 * decoded, since the IPv4 address they carry could be anything on the translator's side.
 *
 * @module
 */

import { cidrContains, parseCidr, parseIp, unmapIpv4 } from "../net/ip.ts";
import type { Cidr, IpAddress } from "../net/ip.ts";

/** One special-purpose range and how a dial to it is judged. */
export interface SpecialPurposeRange {
  /** The prefix, written as the registry writes it. */
  readonly cidr: string;
  /** The registry's name for it. */
  readonly name: string;
  /** The defining document(s). */
  readonly rfc: string;
  /** Where the entry comes from: one of the two IANA special-purpose registries, or elsewhere (see `rfc`). */
  readonly registry: "iana-ipv4-special" | "iana-ipv6-special" | "other";
  /**
   * "block": refused. "ipv4": judged by the IPv4 address it carries, so ::ffff:8.8.8.8 is allowed and
   * ::ffff:127.0.0.1 is not (only the IPv4-mapped range, which is just another spelling of IPv4).
   */
  readonly verdict: "block" | "ipv4";
}

/** The outcome of {@link checkDialAddress}: allowed, or refused with the range and its registry name. */
export type DialCheck =
  | { readonly allowed: true }
  | { readonly allowed: false; readonly range: string; readonly name: string };

const V4 = "iana-ipv4-special";
const V6 = "iana-ipv6-special";

// IANA IPv4 Special-Purpose Address Registry (RFC 6890, RFC 8190):
// https://www.iana.org/assignments/iana-ipv4-special-registry/
// IANA IPv6 Special-Purpose Address Registry:
// https://www.iana.org/assignments/iana-ipv6-special-registry/
// Nested entries (192.0.0.0/29 inside 192.0.0.0/24, TEREDO inside 2001::/23, ...) are kept so the name
// reported is the most specific one; the check picks the longest matching prefix.
/** Every range {@link checkDialAddress} refuses (or, for IPv4-mapped, re-judges as IPv4). */
export const SPECIAL_PURPOSE_RANGES: readonly SpecialPurposeRange[] = Object.freeze([
  // IPv4, IANA registry
  { cidr: "0.0.0.0/8", name: '"This network"', rfc: "RFC 791 §3.2", registry: V4, verdict: "block" },
  { cidr: "0.0.0.0/32", name: '"This host on this network"', rfc: "RFC 1122 §3.2.1.3", registry: V4, verdict: "block" },
  { cidr: "10.0.0.0/8", name: "Private-Use", rfc: "RFC 1918", registry: V4, verdict: "block" },
  { cidr: "100.64.0.0/10", name: "Shared Address Space", rfc: "RFC 6598", registry: V4, verdict: "block" },
  { cidr: "127.0.0.0/8", name: "Loopback", rfc: "RFC 1122 §3.2.1.3", registry: V4, verdict: "block" },
  { cidr: "169.254.0.0/16", name: "Link Local", rfc: "RFC 3927", registry: V4, verdict: "block" },
  { cidr: "172.16.0.0/12", name: "Private-Use", rfc: "RFC 1918", registry: V4, verdict: "block" },
  { cidr: "192.0.0.0/24", name: "IETF Protocol Assignments", rfc: "RFC 6890 §2.1", registry: V4, verdict: "block" },
  { cidr: "192.0.0.0/29", name: "IPv4 Service Continuity Prefix", rfc: "RFC 7335", registry: V4, verdict: "block" },
  { cidr: "192.0.0.8/32", name: "IPv4 dummy address", rfc: "RFC 7600", registry: V4, verdict: "block" },
  { cidr: "192.0.0.9/32", name: "Port Control Protocol Anycast", rfc: "RFC 7723", registry: V4, verdict: "block" },
  { cidr: "192.0.0.10/32", name: "Traversal Using Relays around NAT Anycast", rfc: "RFC 8155", registry: V4, verdict: "block" },
  { cidr: "192.0.0.170/32", name: "NAT64/DNS64 Discovery", rfc: "RFC 8880, RFC 7050 §2.2", registry: V4, verdict: "block" },
  { cidr: "192.0.0.171/32", name: "NAT64/DNS64 Discovery", rfc: "RFC 8880, RFC 7050 §2.2", registry: V4, verdict: "block" },
  { cidr: "192.0.2.0/24", name: "Documentation (TEST-NET-1)", rfc: "RFC 5737", registry: V4, verdict: "block" },
  { cidr: "192.31.196.0/24", name: "AS112-v4", rfc: "RFC 7535", registry: V4, verdict: "block" },
  { cidr: "192.52.193.0/24", name: "AMT", rfc: "RFC 7450", registry: V4, verdict: "block" },
  { cidr: "192.88.99.0/24", name: "Deprecated (6to4 Relay Anycast)", rfc: "RFC 7526", registry: V4, verdict: "block" },
  { cidr: "192.88.99.2/32", name: "6a44-relay anycast address", rfc: "RFC 6751", registry: V4, verdict: "block" },
  { cidr: "192.168.0.0/16", name: "Private-Use", rfc: "RFC 1918", registry: V4, verdict: "block" },
  { cidr: "192.175.48.0/24", name: "Direct Delegation AS112 Service", rfc: "RFC 7534", registry: V4, verdict: "block" },
  { cidr: "198.18.0.0/15", name: "Benchmarking", rfc: "RFC 2544", registry: V4, verdict: "block" },
  { cidr: "198.51.100.0/24", name: "Documentation (TEST-NET-2)", rfc: "RFC 5737", registry: V4, verdict: "block" },
  { cidr: "203.0.113.0/24", name: "Documentation (TEST-NET-3)", rfc: "RFC 5737", registry: V4, verdict: "block" },
  { cidr: "240.0.0.0/4", name: "Reserved", rfc: "RFC 1112 §4", registry: V4, verdict: "block" },
  { cidr: "255.255.255.255/32", name: "Limited Broadcast", rfc: "RFC 8190, RFC 919 §7", registry: V4, verdict: "block" },
  // IPv4, other registries
  // https://www.iana.org/assignments/multicast-addresses/
  { cidr: "224.0.0.0/4", name: "Multicast", rfc: "RFC 5771", registry: "other", verdict: "block" },

  // IPv6, IANA registry
  { cidr: "::1/128", name: "Loopback Address", rfc: "RFC 4291", registry: V6, verdict: "block" },
  { cidr: "::/128", name: "Unspecified Address", rfc: "RFC 4291", registry: V6, verdict: "block" },
  { cidr: "::ffff:0:0/96", name: "IPv4-mapped Address", rfc: "RFC 4291", registry: V6, verdict: "ipv4" },
  { cidr: "64:ff9b::/96", name: "IPv4-IPv6 Translat.", rfc: "RFC 6052", registry: V6, verdict: "block" },
  { cidr: "64:ff9b:1::/48", name: "IPv4-IPv6 Translat.", rfc: "RFC 8215", registry: V6, verdict: "block" },
  { cidr: "100::/64", name: "Discard-Only Address Block", rfc: "RFC 6666", registry: V6, verdict: "block" },
  { cidr: "100:0:0:1::/64", name: "Dummy IPv6 Prefix", rfc: "RFC 9780", registry: V6, verdict: "block" },
  { cidr: "2001::/23", name: "IETF Protocol Assignments", rfc: "RFC 2928", registry: V6, verdict: "block" },
  { cidr: "2001::/32", name: "TEREDO", rfc: "RFC 4380, RFC 8190", registry: V6, verdict: "block" },
  { cidr: "2001:1::1/128", name: "Port Control Protocol Anycast", rfc: "RFC 7723", registry: V6, verdict: "block" },
  { cidr: "2001:1::2/128", name: "Traversal Using Relays around NAT Anycast", rfc: "RFC 8155", registry: V6, verdict: "block" },
  { cidr: "2001:1::3/128", name: "DNS-SD Service Registration Protocol Anycast", rfc: "RFC 9665", registry: V6, verdict: "block" },
  { cidr: "2001:2::/48", name: "Benchmarking", rfc: "RFC 5180, RFC Errata 1752", registry: V6, verdict: "block" },
  { cidr: "2001:3::/32", name: "AMT", rfc: "RFC 7450", registry: V6, verdict: "block" },
  { cidr: "2001:4:112::/48", name: "AS112-v6", rfc: "RFC 7535", registry: V6, verdict: "block" },
  { cidr: "2001:10::/28", name: "Deprecated (previously ORCHID)", rfc: "RFC 4843", registry: V6, verdict: "block" },
  { cidr: "2001:20::/28", name: "ORCHIDv2", rfc: "RFC 7343", registry: V6, verdict: "block" },
  { cidr: "2001:30::/28", name: "Drone Remote ID Protocol Entity Tags (DETs) Prefix", rfc: "RFC 9374", registry: V6, verdict: "block" },
  { cidr: "2001:db8::/32", name: "Documentation", rfc: "RFC 3849", registry: V6, verdict: "block" },
  { cidr: "2002::/16", name: "6to4", rfc: "RFC 3056", registry: V6, verdict: "block" },
  { cidr: "2620:4f:8000::/48", name: "Direct Delegation AS112 Service", rfc: "RFC 7534", registry: V6, verdict: "block" },
  { cidr: "3fff::/20", name: "Documentation", rfc: "RFC 9637", registry: V6, verdict: "block" },
  { cidr: "5f00::/16", name: "Segment Routing (SRv6) SIDs", rfc: "RFC 9602", registry: V6, verdict: "block" },
  { cidr: "fc00::/7", name: "Unique-Local", rfc: "RFC 4193, RFC 8190", registry: V6, verdict: "block" },
  { cidr: "fe80::/10", name: "Link-Local Unicast", rfc: "RFC 4291", registry: V6, verdict: "block" },
  // IPv6, other registries
  // https://www.iana.org/assignments/ipv6-address-space/ and RFC 4291 §2.5.5.1, §2.7; RFC 3879
  // ::/96 also holds ::/128 and ::1/128, which keep their own (longer) entries above.
  { cidr: "::/96", name: "IPv4-compatible Address (deprecated)", rfc: "RFC 4291 §2.5.5.1", registry: "other", verdict: "block" },
  { cidr: "fec0::/10", name: "Site-Local (deprecated)", rfc: "RFC 3879", registry: "other", verdict: "block" },
  { cidr: "ff00::/8", name: "Multicast", rfc: "RFC 4291 §2.7", registry: "other", verdict: "block" },
] as const satisfies readonly SpecialPurposeRange[]);

interface ParsedRange {
  readonly range: SpecialPurposeRange;
  readonly cidr: Cidr;
}

/** The table parsed once, longest prefix first, so the first hit is the most specific entry. */
const PARSED_RANGES: readonly ParsedRange[] = SPECIAL_PURPOSE_RANGES.map((range) => {
  const cidr = parseCidr(range.cidr);
  if (cidr === null) throw new Error(`SPECIAL_PURPOSE_RANGES: bad prefix ${range.cidr}`);
  return { range, cidr };
}).sort((a, b) => b.cidr.prefix - a.cidr.prefix);

const ALLOWED: DialCheck = Object.freeze({ allowed: true });
const NOT_AN_IP: DialCheck = Object.freeze({ allowed: false, range: "", name: "not an IP address" });

/**
 * Decides whether a proxy may dial `ip`. Refused when it lies in any {@link SPECIAL_PURPOSE_RANGES}
 * entry (the most specific one is reported), or is not an IP address at all (text that
 * {@link parseIp} rejects, or an {@link IpAddress} whose byte length does not fit its family).
 * An IPv4-mapped address is judged as the IPv4 address it carries.
 */
export function checkDialAddress(ip: string | IpAddress): DialCheck {
  const parsed = typeof ip === "string" ? parseIp(ip) : ip;
  if (parsed === null || parsed.bytes.length !== (parsed.family === 4 ? 4 : 16)) return NOT_AN_IP;
  let hit = mostSpecificRange(parsed);
  if (hit?.verdict === "ipv4") hit = mostSpecificRange(unmapIpv4(parsed));
  return hit === undefined ? ALLOWED : { allowed: false, range: hit.cidr, name: hit.name };
}

function mostSpecificRange(ip: IpAddress): SpecialPurposeRange | undefined {
  return PARSED_RANGES.find((entry) => cidrContains(entry.cidr, ip))?.range;
}
