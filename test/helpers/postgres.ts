/**
 * A throwaway PostgreSQL cluster for tests: initdb in a temp dir as the `postgres` user (runuser when
 * the tests run as root, as CI does), started on a free loopback port with trust authentication,
 * stopped by the test (pg_ctl stop, then the postmaster's pid if it is still there).
 */
import { chownSync, existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "./proxy.ts";

export function pgBinDir(): string | null {
  const base = "/usr/lib/postgresql";
  if (!existsSync(base)) return null;
  const versions = readdirSync(base).sort((a, b) => Number(b) - Number(a));
  return versions.length ? join(base, versions[0]!, "bin") : null;
}

export interface Cluster {
  readonly port: number;
  readonly dir: string;
  psql(sql: string, db?: string): string;
  stop(): void;
}

function asPostgres(cmd: string[]): string[] {
  return process.getuid?.() === 0 ? ["runuser", "-u", "postgres", "--", ...cmd] : cmd;
}

function must(cmd: string[]): string {
  const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")}: ${r.stderr.toString()}${r.stdout.toString()}`);
  return r.stdout.toString();
}

export function startCluster(port: number): Cluster {
  const bin = pgBinDir();
  if (!bin) throw new Error("PostgreSQL server binaries not found (apt-get install postgresql)");
  const dir = tempDir("switchyard-pg-");
  const uid = process.getuid?.() === 0 ? Number(must(["id", "-u", "postgres"]).trim()) : -1;
  if (uid >= 0) chownSync(dir, uid, -1);
  const data = join(dir, "data");
  must(asPostgres([join(bin, "initdb"), "-D", data, "-A", "trust", "-U", "postgres", "--no-sync"]));
  must(asPostgres([join(bin, "pg_ctl"), "start", "-D", data, "-w", "-l", join(dir, "log"),
    "-o", `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`]));
  const pid = Number(readFileSync(join(data, "postmaster.pid"), "utf8").split("\n")[0]);
  return {
    port, dir,
    psql(sql, db = "postgres") {
      return must(["psql", "-X", "-At", "-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-d", db, "-c", sql]).trim();
    },
    stop() {
      Bun.spawnSync(asPostgres([join(bin, "pg_ctl"), "stop", "-D", data, "-m", "immediate", "-w"]), { stdout: "ignore", stderr: "ignore" });
      try { process.kill(pid, "SIGKILL"); } catch { /* already gone */ }
    },
  };
}
