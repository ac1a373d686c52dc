/**
 * Upgrades on proxy routes (RFC 9110 §7.8, RFC 6455 §4): an HTTP/1.1 request with `Upgrade` and
 * `Connection: upgrade` and no body is forwarded with both fields; when the upstream answers `101
 * Switching Protocols` (with its own Upgrade), the 101 is relayed and the connection becomes a plain
 * relay both ways, no longer HTTP: the bytes after the 101's head go to the client, the client's bytes
 * (also any it sent right after its request) to the upstream, each direction pausing its source while
 * the other socket is behind. Any other answer is an ordinary response and the connection goes on as
 * HTTP (the upstream connection is not pooled again). The tunnel ends when either side closes: what
 * the other side has not taken yet is written first. Its access-log record (status 101) is written
 * then, with the tunnel's bytes. A drain does not end a tunnel early (drainTimeoutMs does).
 *
 * Functions over the session (src/http/session.ts calls them from its event handlers while
 * `phase` is TUNNEL), so the request loop itself stays as it is.
 * @module
 */
import type { HttpSession } from "./session.ts";
import type { UpstreamLink } from "./upstream-pool.ts";
import { serializeHead, type HeadEdits } from "./serialize.ts";
import { responseEdits } from "./header-edits.ts";

const UPGRADE_EDITS: HeadEdits = { upgrade: true };

/** The request may be forwarded as an upgrade: HTTP/1.1 (an HTTP/1.0 one's Upgrade is dropped, RFC 9110 §7.8) and no body. */
export function forwardsAsUpgrade(s: HttpSession): boolean {
  return s.head.isUpgrade && s.head.minorVersion === 1 && s.requestKind === "none";
}

/** The request's edits with the upgrade kept (only for an upgrade request: one object per upgrade). */
export function withUpgrade(edits: HeadEdits): HeadEdits {
  return { ...edits, upgrade: true };
}

/**
 * The upstream answered 101 to an upgrade request: relay it and switch the connection to a tunnel.
 * Returns false when the 101 is not one (no Upgrade in it): the caller fails the exchange.
 */
export function startTunnel(s: HttpSession, link: UpstreamLink): boolean {
  const res = s.response!;
  if (!res.isUpgrade) return false;
  const out = serializeHead(res, responseEdits(UPGRADE_EDITS, s.route, s.config, res.minorVersion));
  const copy = out.buffer === res.bytes.buffer ? out.slice() : out;
  s.upbuf.consume(res.consumed);
  s.status = 101;
  s.upstreamMs = performance.now() - s.sentAt;
  s.upstreamReusable = false;
  s.enterTunnel();
  if (!s.writeClient(copy)) pause(link);
  // Bytes the upstream sent right after its 101, and the client right after its request.
  for (let chunk = s.upbuf.peek(); chunk !== null; chunk = s.upbuf.peek()) {
    const all = s.writeClient(chunk.slice());
    s.upbuf.consume(chunk.length);
    if (!all) pause(link);
  }
  for (let chunk = s.inbuf.peek(); chunk !== null; chunk = s.inbuf.peek()) {
    const all = link.write(chunk.slice());
    s.inbuf.consume(chunk.length);
    if (!all) s.pauseClient();
  }
  if (link.out.size === 0) s.resumeClient(); // else upstream's drain resumes it
  return true;
}

export function tunnelClientData(s: HttpSession, chunk: Uint8Array): void {
  const link = s.link;
  if (!link) return;
  if (!link.write(chunk)) s.pauseClient();
}

export function tunnelUpstreamData(s: HttpSession, link: UpstreamLink, chunk: Uint8Array): void {
  if (!s.writeClient(chunk)) pause(link);
}

/** The client socket took what waited: read the upstream again. */
export function tunnelClientDrain(s: HttpSession): void {
  if (!s.flushClient()) return;
  const link = s.link;
  if (link?.paused && link.socket) {
    link.paused = false;
    link.socket.resume();
  }
}

/** The upstream socket took what waited: read the client again, or end the tunnel if the client had ended. */
export function tunnelUpstreamDrain(s: HttpSession, link: UpstreamLink): void {
  if (!link.flush()) return;
  if (s.tunnelClientEnded) return endTunnel(s, "done");
  s.resumeClient();
}

/** The client's FIN: the upstream gets what waits for it, then the tunnel ends. */
export function tunnelClientEnd(s: HttpSession): void {
  s.tunnelClientEnded = true;
  const link = s.link;
  if (!link || link.out.size === 0) endTunnel(s, "done");
}

/** The upstream closed: the client gets what waits for it, then its connection ends. */
export function tunnelUpstreamGone(s: HttpSession): void {
  endTunnel(s, "done");
}

function endTunnel(s: HttpSession, outcome: string): void {
  s.outcome = outcome;
  s.closeAfter = true;
  s.finishExchange(); // the record, and the link closed (never pooled: upstreamReusable is false)
  s.leaveTunnel();
  s.endClient(); // after clientOut is flushed (clientDrain)
}

function pause(link: UpstreamLink): void {
  if (link.paused || !link.socket) return;
  link.paused = true;
  link.socket.pause();
}
