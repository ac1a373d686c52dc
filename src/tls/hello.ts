/**
 * The ClientHello step, shared by every module that reads one before routing (tls; postgres for
 * direct TLS and after an SSLRequest): parse the collected bytes, fingerprint, fill the connection's
 * facts, and apply the listener's TLS protection (requireSni, JA3/JA4 blocklists).
 * @module
 */
import type { Conn } from "../proxy/conn.ts";
import type { ConnFacts } from "../protocol/facts.ts";
import { NEED_MORE, refuse, type SniffStep } from "../protocol/module.ts";
import { sniffClientHello } from "../sniff/tls-hello.ts";
import { fingerprints } from "../sniff/fingerprint.ts";

/** null when the hello is whole and allowed (its facts are in conn.facts); else need-more or a refusal. */
export function readHello(conn: Conn, bytes: Uint8Array, full: boolean): SniffStep | null {
  const r = sniffClientHello(bytes);
  if (r.kind === "need-more") return full ? refuse("malformed_hello", "hello_too_long") : NEED_MORE;
  if (r.kind === "no-match") return refuse("malformed_hello", r.reason);
  const hello = r.facts;
  const fp = fingerprints(hello);
  const facts: ConnFacts = conn.facts!;
  facts.sni = hello.sni;
  facts.alpn = hello.alpn;
  facts.ja3 = fp.ja3;
  facts.ja4 = fp.ja4;
  const protection = conn.listener.config.tlsProtection;
  if (protection.requireSni && hello.sni === null) return refuse("sni_required");
  if (protection.ja3Blocklist.includes(fp.ja3)) return refuse("ja3_blocked", fp.ja3);
  if (protection.ja4Blocklist.includes(fp.ja4)) return refuse("ja4_blocked", fp.ja4);
  return null;
}
