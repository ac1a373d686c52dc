/**
 * Which requests the admin API serves when it has no token (it then listens on loopback only). A web
 * page open in a browser on the same machine can reach loopback too, two ways:
 * - DNS rebinding: a name of the attacker's that now resolves to 127.0.0.1. The page is then
 *   same-origin with the admin API and can read GET /config; the Host header carries that name.
 * - A cross-site POST /reload straight to http://127.0.0.1:PORT (the reply cannot be read, the reload
 *   still happens); the browser sends Origin with it.
 * So Host must be a loopback name or address (any port: an `ssh -L` tunnel or a port-forward changes it),
 * and Origin, when sent, the admin API itself (http:// and that Host). curl sends Host 127.0.0.1:PORT and
 * no Origin. With a token none of this applies: a page cannot send the token.
 * @module
 */
import { isLoopbackHost as isLoopback } from "../net/ip.ts";

/** Why a request with these headers is refused, or null when it may be served. */
export function foreignRequest(headers: Headers): string | null {
  const host = headers.get("host");
  const target = host === null ? null : hostAndPort(host);
  if (host !== null && (target === null || !isLoopback(target.name))) {
    return `Host ${host} is not a loopback name or address (set admin.token to reach the admin API by other names)`;
  }
  const origin = headers.get("origin");
  if (origin === null) return null;
  const from = originHostAndPort(origin);
  if (target === null || from === null || from.name !== target.name || from.port !== target.port) {
    return `Origin ${origin} is not the admin API itself: a web page cannot use it (set admin.token for that)`;
  }
  return null;
}

/** "127.0.0.1:9901", "[::1]:9901", "localhost" → name and port (80 when absent); null if malformed. */
function hostAndPort(text: string): { name: string; port: number } | null {
  const m = /^(?:\[([0-9a-f:.]+)\]|([^:\[\]]+))(?::(\d{1,5}))?$/i.exec(text);
  if (!m) return null;
  return { name: (m[1] ?? m[2]!).toLowerCase(), port: m[3] === undefined ? 80 : Number(m[3]) };
}

function originHostAndPort(origin: string): { name: string; port: number } | null {
  if (!origin.startsWith("http://")) return null; // also "null" (sandboxed frames, file: pages)
  return hostAndPort(origin.slice("http://".length));
}
