/**
 * A throwaway MariaDB server for tests: mariadb-install-db into a temp dir, mariadbd started on a
 * free loopback port (and a unix socket for setting it up as root), stopped by the test by its pid.
 * Debian's mariadb-server provides both; the server runs as the current user (`--user` is needed
 * when that is root, as in CI). With `tls` (a certificate from test/helpers/certs.ts) the server
 * offers SSL to its clients (`--ssl-cert`, `--ssl-key`, `--ssl-ca`).
 */
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { tempDir } from "./proxy.ts";

export interface MariaDb {
  readonly port: number;
  readonly dir: string;
  /** Run SQL as root over the unix socket; returns the tab-separated output. */
  sql(statements: string): string;
  stop(): Promise<void>;
}

export function mariadbAvailable(): boolean {
  return existsSync("/usr/sbin/mariadbd") && Bun.which("mariadb-install-db") !== null && Bun.which("mariadb") !== null;
}

function must(cmd: string[]): string {
  const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")}: ${r.stderr.toString()}${r.stdout.toString()}`);
  return r.stdout.toString();
}

export async function startMariaDb(port: number, tls?: { cert: string; key: string; ca: string }): Promise<MariaDb> {
  const dir = tempDir("switchyard-mariadb-");
  const data = join(dir, "data");
  const socket = join(dir, "sock");
  const user = must(["id", "-un"]).trim();
  must(["mariadb-install-db", "--no-defaults", `--datadir=${data}`, "--auth-root-authentication-method=normal", "--skip-test-db", `--user=${user}`]);
  const proc: Subprocess = Bun.spawn(["/usr/sbin/mariadbd", "--no-defaults", `--datadir=${data}`, `--port=${port}`, "--bind-address=127.0.0.1",
    `--socket=${socket}`, `--pid-file=${join(dir, "pid")}`, `--user=${user}`, "--skip-log-bin", "--innodb-buffer-pool-size=16M",
    "--skip-name-resolve", "--max-allowed-packet=256M", `--log-error=${join(dir, "error.log")}`,
    ...(tls ? [`--ssl-cert=${tls.cert}`, `--ssl-key=${tls.key}`, `--ssl-ca=${tls.ca}`] : [])], { stdout: "ignore", stderr: "ignore" });
  const sql = (statements: string) => must(["mariadb", "--no-defaults", "-S", socket, "-uroot", "-N", "-B", "-e", statements]).trim();
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (existsSync(socket) && Bun.spawnSync(["mariadb", "--no-defaults", "-S", socket, "-uroot", "-e", "select 1"]).exitCode === 0) break;
    if (proc.exitCode !== null || Date.now() > deadline) {
      proc.kill("SIGKILL");
      throw new Error(`mariadbd did not start on port ${port} (see ${join(dir, "error.log")})`);
    }
    await Bun.sleep(100);
  }
  return {
    port, dir, sql,
    async stop() {
      if (proc.exitCode === null) proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.exitCode === null && proc.kill("SIGKILL"), 10_000);
      await proc.exited;
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
