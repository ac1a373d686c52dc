/**
 * Who holds a TCP port another process cannot listen on, for the "address already in use" error:
 * the LISTEN sockets on that port in /proc/net/tcp and tcp6 give socket inodes, and the process
 * whose /proc/PID/fd links to one of them holds it. Best effort: other users' fds are unreadable
 * without privileges, and then only the port's being taken is known.
 * @module
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

/** /proc/net/tcp `st` of a listening socket. */
const TCP_LISTEN = "0A";

/** "pid 1234 (switchyard)" for each process holding a listening socket on `port`, at most a few. */
export function portHolders(port: number, proc = "/proc"): string[] {
  const inodes = listeningInodes(port, proc);
  if (inodes.size === 0) return [];
  const holders: string[] = [];
  for (const pid of readdirSafe(proc)) {
    if (!/^\d+$/.test(pid)) continue;
    const fds = readdirSafe(`${proc}/${pid}/fd`);
    if (!fds.some((fd) => inodes.has(readlinkSafe(`${proc}/${pid}/fd/${fd}`)))) continue;
    const comm = readSafe(`${proc}/${pid}/comm`).trim();
    holders.push(Number(pid) === process.pid ? `this process (pid ${pid})` : `pid ${pid}${comm ? ` (${comm})` : ""}`);
    if (holders.length === 3) break;
  }
  return holders;
}

/** `socket:[INODE]` of every listening TCP socket on `port`, IPv4 and IPv6. */
function listeningInodes(port: number, proc: string): Set<string> {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  const inodes = new Set<string>();
  for (const table of ["tcp", "tcp6"]) {
    for (const line of readSafe(`${proc}/net/${table}`).split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      if (f.length > 9 && f[3] === TCP_LISTEN && f[1]!.endsWith(`:${hexPort}`)) inodes.add(`socket:[${f[9]}]`);
    }
  }
  return inodes;
}

function readSafe(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

function readdirSafe(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}

function readlinkSafe(path: string): string {
  try {
    return readlinkSync(path);
  } catch {
    return "";
  }
}
