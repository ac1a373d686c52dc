/**
 * Hop-by-hop fields: they describe one connection, not the message, so a proxy removes them before
 * forwarding (RFC 9110 §7.6.1): Connection itself, every field a Connection option names, and the
 * fields that must be named there anyway (Keep-Alive, Proxy-Connection, TE, Transfer-Encoding,
 * Upgrade), plus Trailer and Proxy-Authorization (credentials for this proxy, RFC 9110 §11.7.2). Pure.
 * @module
 */
import { CONN_OTHER } from "./field-values.ts";
import { FieldId } from "./field-name.ts";
import type { HttpHead } from "./head.ts";

/**
 * True when field line i of `head` is hop-by-hop. `forwardingUpgrade`: the request is forwarded as an
 * upgrade (or this is the 101 answering one), so Upgrade goes on.
 *
 * A Connection option naming Host, Content-Length or Transfer-Encoding is ignored: those are for every
 * recipient (RFC 9110 §7.6.1 forbids a sender to name them), and removing one on a client's say-so would
 * change the framing the next hop sees ("hop-by-hop header abuse").
 */
export function isHopByHop(head: HttpHead, i: number, forwardingUpgrade: boolean): boolean {
  switch (head.ids[i]) {
    case FieldId.CONNECTION:
    case FieldId.KEEP_ALIVE:
    case FieldId.PROXY_CONNECTION:
    case FieldId.TE:
    case FieldId.TRAILER:
    case FieldId.TRANSFER_ENCODING:
    case FieldId.PROXY_AUTHORIZATION:
      return true;
    case FieldId.UPGRADE:
      return !forwardingUpgrade;
    case FieldId.OTHER:
      return (head.connection & CONN_OTHER) !== 0 && head.namedByConnection(i);
    default:
      return false;
  }
}

/** True when `head` has any hop-by-hop field (then it cannot be forwarded byte for byte). */
export function hasHopByHop(head: HttpHead, forwardingUpgrade: boolean): boolean {
  for (let i = 0; i < head.count; i++) if (isHopByHop(head, i, forwardingUpgrade)) return true;
  return false;
}
