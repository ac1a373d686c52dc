/**
 * X-Forwarded-For, -Proto and -Host for a request going upstream, per the listener's
 * `http.forwarded`: "append" adds the client to the list a trusted peer sent, "replace" writes the
 * client alone, "off" adds nothing. Incoming X-Forwarded-* values are kept only from a peer in
 * `trustedProxies`; from anyone else they are replaced, so a client cannot claim an address it does
 * not have. The edits replace every received field of their name (serialize.ts `set`). Pure.
 * @module
 */
import type { FieldEdit } from "./serialize.ts";
import type { RequestHead } from "./head.ts";

export type ForwardedMode = "append" | "replace" | "off";

/**
 * The fields to set on `head`, or null for "off". `client`: the peer's address as the proxy saw it;
 * `trusted`: whether that peer is in trustedProxies; `proto`: "http", or "https" behind TLS.
 */
export function forwardedEdits(head: RequestHead, mode: ForwardedMode, client: string, trusted: boolean, proto: string): FieldEdit[] | null {
  if (mode === "off") return null;
  const incoming = trusted && mode === "append" ? head.get("x-forwarded-for") : null;
  const keptProto = trusted ? head.get("x-forwarded-proto") : null;
  const keptHost = trusted ? head.get("x-forwarded-host") : null;
  return [
    ["X-Forwarded-For", incoming ? `${incoming}, ${client}` : client],
    ["X-Forwarded-Proto", keptProto ?? proto],
    ["X-Forwarded-Host", keptHost ?? head.host()],
  ];
}
