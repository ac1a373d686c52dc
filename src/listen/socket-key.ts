/**
 * Which listening socket an address means across reloads, workers and upgrades.
 * @module
 */
import { formatSocketAddress, type SocketAddress } from "../net/address.ts";

/**
 * The address's text, except that port 0 ("any port") is per listener, since two listeners may both
 * ask for it and each gets its own socket.
 */
export function socketKey(address: SocketAddress, listener: string): string {
  const text = formatSocketAddress(address);
  return address.kind === "inet" && address.port === 0 ? `${listener}/${text}` : text;
}
