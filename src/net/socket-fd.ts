/**
 * The fd under a Bun socket or listener. Bun 1.4.5 exposes it at run time; bun-types does not
 * declare it. -1 when absent (closed, or a Bun without it).
 */
export function socketFd(socket: object): number {
  const fd = (socket as { fd?: unknown }).fd;
  return typeof fd === "number" ? fd : -1;
}
