/**
 * The edits a forwarded head gets besides the hop-by-hop removals serialize.ts always makes: a route's
 * `headers` (`request`/`response` `set` and `remove`, SPEC.md), the listener's `http.via` and, on a
 * request, X-Forwarded-* (forwarded.ts). Applied by serializeHead while it re-serialises, so no byte
 * goes on that the parser did not validate. A route's `set` wins over X-Forwarded-* of the same name
 * (the operator asked for it).
 *
 * Via (RFC 9110 §7.6.3): `Via: 1.1 NAME` (1.0 when the message came as HTTP/1.0) is added after any
 * received Via fields, which is the same as appending to their list (RFC 9110 §5.3), on requests sent
 * upstream and on responses sent back (a gateway MUST on requests and MAY on responses; both say the
 * message went through here).
 *
 * Without a route's `headers` and without `via` the callers' own edit objects go through unchanged:
 * nothing is made per request.
 * @module
 */
import type { HeaderEdits, HttpListenerConfig } from "../config/types.ts";
import type { FieldEdit, HeadEdits } from "./serialize.ts";
import type { RouteRuntime } from "../proxy/runtime.ts";

/** Via values by pseudonym, made once: [HTTP/1.0, HTTP/1.1]. */
const VIA = new Map<string, readonly [FieldEdit, FieldEdit]>();

function via(name: string, minorVersion: number): FieldEdit {
  let v = VIA.get(name);
  if (!v) VIA.set(name, (v = [["Via", `1.0 ${name}`], ["Via", `1.1 ${name}`]]));
  return v[minorVersion === 0 ? 0 : 1];
}

/** The edits of a request sent upstream; `forwarded` are X-Forwarded-* (null: none). */
export function requestEdits(route: RouteRuntime | null, listener: HttpListenerConfig, minorVersion: number, forwarded: FieldEdit[] | null): HeadEdits {
  const edits = route?.config.http?.headers?.request;
  const name = listener.via;
  if (!edits && !name) return { set: forwarded ?? undefined };
  return {
    set: merge(forwarded, edits),
    remove: edits && edits.remove.length > 0 ? edits.remove : undefined,
    add: name ? [via(name, minorVersion)] : undefined,
  };
}

/** The edits of a response sent back: `base` (the Connection field the client gets) plus the route's and Via. */
export function responseEdits(base: HeadEdits, route: RouteRuntime | null, listener: HttpListenerConfig, minorVersion: number): HeadEdits {
  const edits = route?.config.http?.headers?.response;
  const name = listener.via;
  if (!edits && !name) return base;
  const add = base.add ? [...base.add] : [];
  if (name) add.push(via(name, minorVersion));
  return {
    set: edits && edits.set.length > 0 ? edits.set : undefined,
    remove: edits && edits.remove.length > 0 ? edits.remove : undefined,
    add: add.length > 0 ? add : undefined,
  };
}

/** X-Forwarded-* and a route's `set`, the route's replacing a forwarded field of the same name. */
function merge(forwarded: FieldEdit[] | null, edits: HeaderEdits | undefined): readonly FieldEdit[] | undefined {
  if (!edits || edits.set.length === 0) return forwarded ?? undefined;
  if (!forwarded || forwarded.length === 0) return edits.set;
  const out: FieldEdit[] = [];
  for (const f of forwarded) if (!edits.set.some(([n]) => n.toLowerCase() === f[0].toLowerCase())) out.push(f);
  for (const f of edits.set) out.push(f);
  return out;
}
