/**
 * What a server's EHLO reply offers. RFC 5321 §4.1.1.1: the first line is the server's domain and
 * greeting, each later line one extension: ehlo-keyword *( SP ehlo-param ), keywords
 * case-insensitive. The proxy reads its backends' replies to know whether it may pipeline, how
 * large a message they take, whether they accept 8BITMIME and SMTPUTF8, and which XCLIENT
 * attributes they let it set (Postfix XCLIENT_README: "XCLIENT" followed by attribute names).
 * Bounded by the reply parser's line limit. Pure: no Bun.
 * @module
 */
import type { SmtpReply } from "./reply.ts";

export interface EhloCapabilities {
  /** Every keyword (upper-cased) with its parameters as written. */
  readonly keywords: ReadonlyMap<string, readonly string[]>;
  /** RFC 2920. */
  readonly pipelining: boolean;
  /** RFC 1870 SIZE: the declared maximum (0 = no fixed limit), or null when SIZE is absent. */
  readonly size: number | null;
  /** RFC 6152. */
  readonly eightBitMime: boolean;
  /** RFC 6531. */
  readonly smtpUtf8: boolean;
  /** RFC 3207. */
  readonly startTls: boolean;
  /** RFC 2034. */
  readonly enhancedStatusCodes: boolean;
  /** RFC 3030. */
  readonly chunking: boolean;
  /** Postfix XCLIENT: the attribute names it accepts (upper-cased), or null when not offered. */
  readonly xclient: ReadonlySet<string> | null;
}

/** Read the extensions of a 250 EHLO reply; null for any other code. */
export function ehloCapabilities(reply: SmtpReply): EhloCapabilities | null {
  if (reply.code !== 250) return null;
  const keywords = new Map<string, string[]>();
  for (const line of reply.lines.slice(1)) {
    const words = line.split(" ").filter((w) => w !== "");
    const keyword = words[0]?.toUpperCase();
    // RFC 5321 §4.1.1.1: ehlo-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-"). Skip anything else
    // (some servers also send the legacy "AUTH=LOGIN" form, which is not a keyword).
    if (keyword === undefined || !/^[A-Z0-9][A-Z0-9-]*$/.test(keyword)) continue;
    if (!keywords.has(keyword)) keywords.set(keyword, words.slice(1));
  }
  const sizeParam = keywords.get("SIZE");
  let size: number | null = null;
  if (sizeParam !== undefined) size = sizeParam.length > 0 && /^\d{1,15}$/.test(sizeParam[0]!) ? Number(sizeParam[0]) : 0;
  const xclient = keywords.get("XCLIENT");
  return {
    keywords,
    pipelining: keywords.has("PIPELINING"),
    size,
    eightBitMime: keywords.has("8BITMIME"),
    smtpUtf8: keywords.has("SMTPUTF8"),
    startTls: keywords.has("STARTTLS"),
    enhancedStatusCodes: keywords.has("ENHANCEDSTATUSCODES"),
    chunking: keywords.has("CHUNKING"),
    xclient: xclient === undefined ? null : new Set(xclient.map((a) => a.toUpperCase())),
  };
}
