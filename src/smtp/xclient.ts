/**
 * The XCLIENT command a proxy sends to a Postfix backend so that it sees the real client
 * (Postfix XCLIENT_README, "XCLIENT Command syntax"):
 *
 *   xclient-command = XCLIENT 1*( SP attribute-name"="attribute-value )
 *   attribute-value = xtext   (RFC 1891, now RFC 3461 §4)
 *
 * ADDR is an IPv4 address, or an IPv6 address prefixed "IPV6:" (no brackets); NAME a hostname or
 * [UNAVAILABLE] / [TEMPUNAVAIL]; HELO the client's HELO argument; PORT its port; PROTO SMTP or
 * ESMTP. A command must fit the 512-octet command line (the README's Note 1), so long values are
 * sent in several XCLIENT commands. The server answers each with a new 220 greeting and forgets
 * the EHLO, so the proxy sends EHLO again afterwards. Only attributes the server's EHLO listed
 * after XCLIENT are sent (it refuses others). Pure: no Bun.
 * @module
 */
import { MAX_COMMAND_LINE_BYTES } from "./command-framer.ts";

export interface XclientAttributes {
  /** The client's IP address, as the socket reports it (IPv4-mapped IPv6 is sent as IPv4). */
  readonly addr?: string;
  readonly port?: number;
  /** The client's verified hostname, or "[UNAVAILABLE]" / "[TEMPUNAVAIL]". */
  readonly name?: string;
  /** The client's EHLO/HELO argument. */
  readonly helo?: string;
  /** "SMTP" after HELO, "ESMTP" after EHLO. */
  readonly proto?: "SMTP" | "ESMTP";
  readonly login?: string;
  readonly destAddr?: string;
  readonly destPort?: number;
}

/** The order the attributes go in; Postfix applies each command as it comes. */
const ATTRIBUTE_ORDER: readonly (readonly [keyof XclientAttributes, string])[] = [
  ["addr", "ADDR"], ["port", "PORT"], ["name", "NAME"], ["helo", "HELO"],
  ["proto", "PROTO"], ["login", "LOGIN"], ["destAddr", "DESTADDR"], ["destPort", "DESTPORT"],
];

const ascii = new TextEncoder();
const utf8Encoder = new TextEncoder();
const PLUS = 0x2b;
const EQUALS = 0x3d;
const HEX = "0123456789ABCDEF";
/** XCLIENT_README: the value for information that is not available. */
export const UNAVAILABLE = "[UNAVAILABLE]";

/**
 * The XCLIENT command lines (CRLF included) that carry `attributes`, each within the 512-octet
 * limit. `offered` is the attribute list from the server's EHLO (EhloCapabilities.xclient); an
 * attribute not in it is left out. Empty when nothing is left to send.
 */
export function buildXclient(attributes: XclientAttributes, offered: ReadonlySet<string> | null = null): Uint8Array[] {
  const words: string[] = [];
  for (const [key, name] of ATTRIBUTE_ORDER) {
    const value = attributes[key];
    if (value === undefined || (offered !== null && !offered.has(name))) continue;
    const text = key === "addr" || key === "destAddr" ? xclientAddress(String(value)) : String(value);
    let word = `${name}=${xtextEncode(text)}`;
    // A value too long for any line (a 255-octet UTF-8 HELO is 765 octets as xtext) is sent as
    // unavailable, which the README allows for every attribute, rather than cut.
    if ("XCLIENT ".length + word.length + 2 > MAX_COMMAND_LINE_BYTES) word = `${name}=${UNAVAILABLE}`;
    words.push(word);
  }
  const lines: string[] = [];
  let line = "XCLIENT";
  for (const word of words) {
    if (line !== "XCLIENT" && line.length + 1 + word.length + 2 > MAX_COMMAND_LINE_BYTES) {
      lines.push(line);
      line = "XCLIENT";
    }
    line += ` ${word}`;
  }
  if (line !== "XCLIENT") lines.push(line);
  return lines.map((l) => ascii.encode(`${l}\r\n`));
}

/** ADDR syntax: IPv4 as is, IPv6 as "IPV6:" + address, IPv4-mapped IPv6 as the IPv4 address. */
export function xclientAddress(ip: string): string {
  if (/^\[[0-9A-Fa-f:.]+\]$/.test(ip)) ip = ip.slice(1, -1); // "[2001:db8::1]"; not [UNAVAILABLE]
  if (ip.startsWith("[")) return ip; // [UNAVAILABLE], [TEMPUNAVAIL]
  const mapped = /^::ffff:(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/i.exec(ip);
  if (mapped !== null) return mapped[1]!;
  return ip.includes(":") ? `IPV6:${ip}` : ip;
}

/**
 * RFC 3461 §4: xtext = *( xchar / hexchar ); xchar is "!" to "~" except "+" and "=";
 * hexchar = "+" two upper-case hex digits. Applied to the UTF-8 bytes of `value`.
 */
export function xtextEncode(value: string): string {
  let out = "";
  for (const b of utf8Encoder.encode(value)) {
    out += b >= 33 && b <= 126 && b !== PLUS && b !== EQUALS ? String.fromCharCode(b) : `+${HEX[b >> 4]}${HEX[b & 15]}`;
  }
  return out;
}

/** The inverse of xtextEncode; null when `text` is not xtext. */
export function xtextDecode(text: string): string | null {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === PLUS) {
      const hex = text.slice(i + 1, i + 3);
      if (!/^[0-9A-F]{2}$/.test(hex)) return null;
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else if (c >= 33 && c <= 126 && c !== EQUALS) bytes.push(c);
    else return null;
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}
