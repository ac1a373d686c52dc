/**
 * The PROXY protocol at the pipeline's edges (haproxy's doc/proxy-protocol.txt; the bytes are
 * src/proxy-protocol/'s): the header a route with `proxyProtocol` writes to its upstream before any
 * other byte, so the backend learns the client's address.
 *
 * Called by src/proxy/pipeline.ts only for connections whose route carries the key, so no other
 * connection pays anything.
 * @module
 */
import type { Socket } from "bun";
import type { Conn } from "./conn.ts";
import { parseIp, type IpAddress } from "../net/ip.ts";
import { encodeProxyHeader, type ProxyEndpoint, type ProxyProtocolVersion } from "../proxy-protocol/encode.ts";

/**
 * connected, first of all: write the header for the client and the address it connected to. A
 * short write (a fresh socket takes ~50 bytes at once, but the kernel owes us nothing) queues the
 * rest in front of whatever waits for the upstream, which is flushed before anything else.
 */
export function writeProxyHeader(conn: Conn, upstream: Socket<Conn>, version: ProxyProtocolVersion): void {
  const accepted = conn.intake?.raw ?? conn.client; // under a terminated TLS socket, the accepted one knows the addresses
  const header = encodeProxyHeader(version, endpoint(conn.clientIp, conn.clientPort), endpoint(accepted.localAddress, accepted.localPort));
  const n = upstream.write(header);
  if (n >= 0 && n < header.length) conn.upQueue().unshift(header.subarray(n));
}

/** An address and port as the encoder takes them; null for a unix socket (no IP). */
function endpoint(ip: string | undefined, port: number | undefined): ProxyEndpoint | null {
  const parsed: IpAddress | null = ip ? parseIp(ip) : null;
  return parsed === null ? null : { ip: parsed, port: port ?? 0 };
}
