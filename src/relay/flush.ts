/**
 * Writing a connection's queued bytes to a socket in order, shared by the userspace relay and the
 * kernel handover (which must write what JS holds before the engine takes the fds).
 * @module
 */
import type { Socket } from "bun";
import { type Conn, WRITING_UP } from "../proxy/conn.ts";
import type { ByteQueue } from "../net/byte-queue.ts";

/**
 * Write queued bytes in order until the socket takes no more; true when the queue is empty.
 * `writing` is set around each write so that a chunk delivered re-entrantly queues behind.
 */
export function flush(conn: Conn, dest: Socket<Conn>, writing: number, queue: ByteQueue | null): boolean {
  if (queue === null) return true;
  for (let first = queue.peek(); first !== null; first = queue.peek()) {
    conn.flags |= writing;
    const n = dest.write(first);
    conn.flags &= ~writing;
    if (n < 0) {
      queue.clear(); // closed: its close handler ends the connection
      return true;
    }
    queue.consume(n);
    if (n < first.length) return false;
  }
  return true;
}

/** Write the bytes waiting for the upstream, in order; true when none are left. */
export const flushUp = (conn: Conn): boolean => flush(conn, conn.upstream!, WRITING_UP, conn.pendingUp);
