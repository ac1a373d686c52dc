/**
 * JA3 and JA4 client fingerprints of a parsed ClientHello, with GREASE values removed.
 * JA3: https://github.com/salesforce/ja3 (MD5 of "version,ciphers,extensions,groups,pointFormats",
 * decimal values joined by "-"). JA4: https://github.com/FoxIO-LLC/ja4/blob/main/technical_details/JA4.md
 * ("t13d1516h2_8daaf6152771_e5627efa2ab1": protocol, version, SNI or IP, counts, first ALPN; then
 * truncated SHA-256 of the sorted cipher list and of the sorted extensions plus signature algorithms).
 * Pure: node:crypto only (hashing is not a Bun feature).
 * @module
 */
import { createHash } from "node:crypto";
import { EXT_ALPN, EXT_SERVER_NAME, type ClientHello } from "./tls-hello.ts";

/** RFC 8701: GREASE values are 0x?A?A with both bytes equal (0x0a0a, 0x1a1a, … 0xfafa). */
export function isGrease(v: number): boolean {
  return (v & 0x0f0f) === 0x0a0a && v >> 8 === (v & 0xff);
}

function noGrease(list: readonly number[]): number[] {
  return list.filter((v) => !isGrease(v));
}

export interface Fingerprints {
  /** The JA3 string before hashing. */
  readonly ja3Text: string;
  /** MD5 of ja3Text, 32 hex digits. */
  readonly ja3: string;
  readonly ja4: string;
}

export function fingerprints(hello: ClientHello): Fingerprints {
  const ja3Text = [
    hello.version,
    noGrease(hello.ciphers).join("-"),
    noGrease(hello.extensions).join("-"),
    noGrease(hello.groups).join("-"),
    hello.pointFormats.join("-"),
  ].join(",");
  return { ja3Text, ja3: createHash("md5").update(ja3Text).digest("hex"), ja4: ja4(hello) };
}

// JA4.md "TLS and DTLS Version"
const JA4_VERSIONS: Record<number, string> = { 0x0304: "13", 0x0303: "12", 0x0302: "11", 0x0301: "10", 0x0300: "s3", 0x0200: "s2", 0x0100: "s1" };

export function ja4(hello: ClientHello): string {
  const versions = noGrease(hello.supportedVersions);
  const version = versions.length > 0 ? Math.max(...versions) : hello.version;
  const ciphers = noGrease(hello.ciphers);
  const extensions = noGrease(hello.extensions);
  const a = "t" + (JA4_VERSIONS[version] ?? "00") + (hello.sni !== null ? "d" : "i") +
    count(ciphers.length) + count(extensions.length) + alpnChars(hello.alpn[0]);
  const sortedCiphers = ciphers.map(hex4).sort();
  const sortedExtensions = extensions.filter((e) => e !== EXT_SERVER_NAME && e !== EXT_ALPN).map(hex4).sort();
  return ja4FromLists(a, sortedCiphers, sortedExtensions, noGrease(hello.signatureAlgorithms).map(hex4));
}

/**
 * JA4 from its raw parts ("JA4_r" lists, 4-digit lower-case hex): part b hashes the sorted ciphers,
 * part c the sorted extensions, then "_" and the signature algorithms in wire order (no "_" when
 * there are none). An empty list hashes to twelve zeros.
 */
export function ja4FromLists(a: string, ciphers: readonly string[], extensions: readonly string[], signatureAlgorithms: readonly string[]): string {
  const c = extensions.join(",") + (signatureAlgorithms.length > 0 ? "_" + signatureAlgorithms.join(",") : "");
  return `${a}_${ciphers.length > 0 ? truncatedSha256(ciphers.join(",")) : "000000000000"}_${extensions.length > 0 ? truncatedSha256(c) : "000000000000"}`;
}

/** The first 12 hex digits of SHA-256, as JA4 uses. */
export function truncatedSha256(text: string): string {
  return createHash("sha256").update(text).digest("hex").slice(0, 12);
}

function count(n: number): string {
  return String(Math.min(n, 99)).padStart(2, "0");
}

function hex4(v: number): string {
  return v.toString(16).padStart(4, "0");
}

/** JA4.md "ALPN Extension Value": first and last character, "00" without ALPN, hex when not alphanumeric. */
function alpnChars(alpn: string | undefined): string {
  if (!alpn) return "00";
  const first = alpn[0]!;
  const last = alpn[alpn.length - 1]!;
  if (/^[0-9A-Za-z]$/.test(first) && /^[0-9A-Za-z]$/.test(last)) return first + last;
  const hex = [...alpn].map((ch) => ch.charCodeAt(0).toString(16).padStart(2, "0")).join("");
  return hex[0]! + hex[hex.length - 1]!;
}
