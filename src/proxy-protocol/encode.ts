/**
 * The PROXY protocol header a proxy writes to its upstream before any other byte (haproxy's
 * doc/proxy-protocol.txt): the client's address and the address it connected to, as the v1 text
 * line or the v2 binary header. Pure: addresses in, bytes out.
 *
 * Only the PROXY command for TCP over IPv4/IPv6 is made (v2's LOCAL, for health checks the proxy
 * makes itself, is not needed: switchyard does not health-check). A client without an IP address
 * (a unix socket) is sent as v1 "UNKNOWN" / v2 AF_UNSPEC, which §2.1/§2.2 tell the receiver to
 * answer by using the connection's own endpoints.
 * @module
 */
import { formatIp, unmapIpv4, type IpAddress } from "../net/ip.ts";
import { V2_COMMAND_PROXY, V2_FIXED_BYTES, V2_INET6_ADDRESS_BYTES, V2_INET_ADDRESS_BYTES, V2_SIGNATURE, V2_TCP4, V2_TCP6, V2_UNSPEC, V2_VERSION } from "./wire.ts";

/** One end of the proxied connection. */
export interface ProxyEndpoint {
  readonly ip: IpAddress;
  readonly port: number;
}

export type ProxyProtocolVersion = "v1" | "v2";

const V1_UNKNOWN = new TextEncoder().encode("PROXY UNKNOWN\r\n");
const V2_UNKNOWN = (() => {
  const out = new Uint8Array(V2_FIXED_BYTES);
  out.set(V2_SIGNATURE);
  out[12] = (V2_VERSION << 4) | V2_COMMAND_PROXY;
  out[13] = V2_UNSPEC;
  return out;
})();

/**
 * The header for a connection from `src` to `dst`, or the "unknown" header when either is null.
 * Both ends are written in one family: IPv4-mapped IPv6 addresses (a dual-stack socket's IPv4
 * peers) as IPv4, and when the two still differ, the IPv4 one as IPv4-mapped IPv6 (§2.1: "the same
 * protocol must be used for both addresses").
 */
export function encodeProxyHeader(version: ProxyProtocolVersion, src: ProxyEndpoint | null, dst: ProxyEndpoint | null): Uint8Array {
  if (src === null || dst === null) return version === "v1" ? V1_UNKNOWN : V2_UNKNOWN;
  let a = unmapIpv4(src.ip);
  let b = unmapIpv4(dst.ip);
  if (a.family !== b.family) {
    a = toIpv6(a);
    b = toIpv6(b);
  }
  return version === "v1" ? encodeV1(a, src.port, b, dst.port) : encodeV2(a, src.port, b, dst.port);
}

/** §2.1: "PROXY TCP4|TCP6 <src> <dst> <sport> <dport>\r\n", addresses in their usual text form. */
function encodeV1(src: IpAddress, sport: number, dst: IpAddress, dport: number): Uint8Array {
  const family = src.family === 4 ? "TCP4" : "TCP6";
  const line = `PROXY ${family} ${formatIp(src)} ${formatIp(dst)} ${sport} ${dport}\r\n`;
  const out = new Uint8Array(line.length);
  for (let i = 0; i < line.length; i++) out[i] = line.charCodeAt(i); // ASCII only
  return out;
}

/** §2.2: signature, 0x21 (v2, PROXY), 0x11 or 0x21 (TCP over IPv4/IPv6), length, addresses, ports. */
function encodeV2(src: IpAddress, sport: number, dst: IpAddress, dport: number): Uint8Array {
  const v4 = src.family === 4;
  const addressBytes = v4 ? V2_INET_ADDRESS_BYTES : V2_INET6_ADDRESS_BYTES;
  const out = new Uint8Array(V2_FIXED_BYTES + addressBytes);
  out.set(V2_SIGNATURE);
  out[12] = (V2_VERSION << 4) | V2_COMMAND_PROXY;
  out[13] = v4 ? V2_TCP4 : V2_TCP6;
  out[14] = addressBytes >> 8;
  out[15] = addressBytes & 0xff;
  const size = src.bytes.length;
  out.set(src.bytes, V2_FIXED_BYTES);
  out.set(dst.bytes, V2_FIXED_BYTES + size);
  const ports = V2_FIXED_BYTES + 2 * size;
  out[ports] = sport >> 8;
  out[ports + 1] = sport & 0xff;
  out[ports + 2] = dport >> 8;
  out[ports + 3] = dport & 0xff;
  return out;
}

/** An IPv4 address as IPv4-mapped IPv6 (RFC 4291 §2.5.5.2); an IPv6 one unchanged. */
function toIpv6(ip: IpAddress): IpAddress {
  if (ip.family === 6) return ip;
  const bytes = new Uint8Array(16);
  bytes[10] = 0xff;
  bytes[11] = 0xff;
  bytes.set(ip.bytes, 12);
  return { family: 6, bytes };
}
