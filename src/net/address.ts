/**
 * Socket addresses as written in flags and config: `host:port`, `[v6]:port`, `unix:/path`.
 * Pure parsing; whether a host is a literal IP or a DNS name is kept so callers can decide
 * what to trust (see src/upstream/ssrf.ts).
 */
import { parseIp } from "./ip.ts";

export type SocketAddress =
  | { readonly kind: "inet"; readonly host: string; readonly port: number; readonly literal: boolean }
  | { readonly kind: "unix"; readonly path: string };

/** Parse `host:port`, `[v6]:port` or `unix:/path`. Returns an error message instead of throwing. */
export function parseSocketAddress(text: string, { allowPortZero = false } = {}): SocketAddress | string {
  if (text.startsWith("unix:")) {
    const path = text.slice(5);
    if (!path.startsWith("/")) return `unix socket path must be absolute: "${text}"`;
    // sun_path is 108 bytes including the terminating NUL on Linux.
    if (new TextEncoder().encode(path).length > 107) return `unix socket path longer than 107 bytes: "${text}"`;
    return { kind: "unix", path };
  }
  let host: string;
  let portText: string;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0 || text[close + 1] !== ":") return `expected [IPv6]:port, got "${text}"`;
    host = text.slice(1, close);
    portText = text.slice(close + 2);
    if (parseIp(host)?.family !== 6) return `not an IPv6 address: "${host}"`;
  } else {
    const colon = text.lastIndexOf(":");
    if (colon <= 0) return `expected host:port, got "${text}"`;
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(":")) return `IPv6 addresses need brackets: "[${host}]:${portText}"`;
    if (!/^[A-Za-z0-9.-]+$/.test(host)) return `not a valid host name: "${host}"`;
  }
  if (!/^\d{1,5}$/.test(portText)) return `not a valid port: "${portText}"`;
  const port = Number(portText);
  if (port > 65535 || (port === 0 && !allowPortZero)) return `port out of range: ${port}`;
  return { kind: "inet", host, port, literal: parseIp(host) !== null };
}

/** The canonical text of an address, the inverse of parseSocketAddress. */
export function formatSocketAddress(a: SocketAddress): string {
  if (a.kind === "unix") return `unix:${a.path}`;
  return a.host.includes(":") ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}
