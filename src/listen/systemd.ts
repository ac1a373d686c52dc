/**
 * Sockets passed by systemd socket activation (sd_listen_fds(3)): LISTEN_PID must be this process,
 * LISTEN_FDS counts fds from 3 (SD_LISTEN_FDS_START), LISTEN_FDNAMES names them (FileDescriptorName=
 * in the .socket unit, "unknown" when unset). A socket named like a listener goes to that listener, in
 * its listen order; unnamed ones go to addresses in config order. Pure: the environment in, fds out.
 * @module
 */

/** https://www.freedesktop.org/software/systemd/man/latest/sd_listen_fds.html */
export const SD_LISTEN_FDS_START = 3;

/** Inherited fds by name ("unknown" for unnamed), in the order systemd passed them; null when none. */
export function systemdSockets(env: Record<string, string | undefined>, pid: number): Map<string, number[]> | null {
  if (env.LISTEN_PID === undefined || Number(env.LISTEN_PID) !== pid) return null;
  const count = Number(env.LISTEN_FDS);
  if (!Number.isInteger(count) || count <= 0) return null;
  const names = (env.LISTEN_FDNAMES ?? "").split(":");
  const byName = new Map<string, number[]>();
  for (let i = 0; i < count; i++) {
    const name = names[i] || "unknown";
    const list = byName.get(name) ?? [];
    list.push(SD_LISTEN_FDS_START + i);
    byName.set(name, list);
  }
  return byName;
}

/** The variables a child must not see (they name this process's fds; sd_listen_fds would reject them anyway). */
export const SYSTEMD_SOCKET_VARIABLES = ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] as const;
