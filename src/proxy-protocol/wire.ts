/**
 * The constants both ends of the PROXY protocol share (haproxy's doc/proxy-protocol.txt, "The PROXY
 * protocol, versions 1 & 2"): the v1 line's bounds and the v2 binary header's layout.
 * @module
 */

/** §2.1: "PROXY UNKNOWN ffff:…:ffff ffff:…:ffff 65535 65535\r\n" is 107 bytes, the longest v1 line. */
export const V1_MAX_BYTES = 107;

/** §2.2: the 12-byte v2 signature, "\r\n\r\n\0\r\nQUIT\n" (it has a NUL: never treat it as a C string). */
export const V2_SIGNATURE: Uint8Array = new Uint8Array([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

/** §2.2: signature, version/command, family/transport, 16-bit length: the fixed part of a v2 header. */
export const V2_FIXED_BYTES = 16;

/** §2.2: the high nibble of byte 13 is the version (2), the low nibble the command. */
export const V2_VERSION = 0x2;
export const V2_COMMAND_LOCAL = 0x0;
export const V2_COMMAND_PROXY = 0x1;

/** §2.2: byte 14, address family (high nibble) and transport (low nibble); the only values defined. */
export const V2_UNSPEC = 0x00;
export const V2_TCP4 = 0x11;
export const V2_UDP4 = 0x12;
export const V2_TCP6 = 0x21;
export const V2_UDP6 = 0x22;
export const V2_UNIX_STREAM = 0x31;
export const V2_UNIX_DGRAM = 0x32;

/** §2.2: the address block's size per family: two addresses then two 16-bit ports (unix: two 108-byte paths). */
export const V2_INET_ADDRESS_BYTES = 12;
export const V2_INET6_ADDRESS_BYTES = 36;
export const V2_UNIX_ADDRESS_BYTES = 216;

/** §2.2.x: a TLV is a type byte and a 16-bit length, then the value. */
export const V2_TLV_HEADER_BYTES = 3;
