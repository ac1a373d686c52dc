/**
 * Real SMTP peers for the smtp tests, all on loopback and stopped by pid: Postfix's smtp-sink
 * (a backend that writes each message it accepts to a file), a Postfix instance in a temp config
 * directory (for XCLIENT: smtpd_authorized_xclient_hosts), swaks as the client, and a raw client
 * for byte-exact dialogues (split terminators, bare LF).
 */
import { mkdirSync, chmodSync, readdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { tempDir } from "./proxy.ts";
import { freePort, connect, type Client } from "./peers.ts";

export interface Sink {
  readonly port: number;
  /** The messages accepted so far, as smtp-sink wrote them (its X- headers, then the message). */
  messages(): string[];
  stop(): Promise<void>;
}

/** smtp-sink on a free port, writing messages into a fresh directory (as `nobody`, since it drops root). */
export async function startSink(): Promise<Sink> {
  const dir = tempDir("switchyard-sink-");
  chmodSync(dir, 0o777);
  const port = freePort();
  const proc = Bun.spawn(["smtp-sink", "-u", "nobody", "-d", `${dir}/%M.`, `127.0.0.1:${port}`, "100"], { stdout: "ignore", stderr: "pipe" });
  await waitForPort(port, proc);
  return {
    port,
    messages: () => readdirSync(dir).sort().map((f) => readFileSync(join(dir, f), "latin1")),
    stop: () => stopProc(proc),
  };
}

export interface PostfixInstance {
  readonly port: number;
  /** A second smtpd that expects a PROXY header first (smtpd_upstream_proxy_protocol = haproxy). */
  readonly proxyPort: number;
  /** Its maillog so far. */
  log(): string;
  stop(): Promise<void>;
}

/** Whether a Postfix instance can be started here (the binaries are there and we are root). */
export function postfixAvailable(): boolean {
  return process.getuid?.() === 0 && existsSync("/usr/sbin/postfix") && existsSync("/usr/lib/postfix/sbin/smtpd");
}

/**
 * Postfix's master and smtpd in a temp config directory, accepting mail for `domain` into the
 * discard transport, with XCLIENT allowed from loopback, and a second smtpd on `proxyPort` that
 * reads a PROXY protocol header (v1 or v2) before its banner. Started with `postfix -c DIR start` and
 * stopped with `postfix -c DIR stop` (which signals that master, by its pid file).
 */
export async function startPostfix(domain: string): Promise<PostfixInstance> {
  const d = tempDir("switchyard-postfix-");
  const port = freePort();
  const proxyPort = freePort();
  chmodSync(d, 0o755); // mkdtemp makes it 0700: the postfix user must reach data/
  for (const sub of ["conf", "queue", "data"]) mkdirSync(join(d, sub));
  Bun.spawnSync(["chown", "postfix", join(d, "data")]);
  writeFileSync(join(d, "conf/main.cf"), [
    "compatibility_level = 3.6", `queue_directory = ${d}/queue`, `data_directory = ${d}/data`, "mail_owner = postfix",
    "setgid_group = postdrop", "inet_interfaces = 127.0.0.1", "inet_protocols = ipv4", "myhostname = backend.test",
    "mydestination =", `relay_domains = ${domain}`, `transport_maps = inline:{ ${domain}=discard: }`,
    "smtpd_authorized_xclient_hosts = 127.0.0.0/8", "mynetworks = 127.0.0.0/8", `maillog_file = ${d}/maillog`,
    "maillog_file_prefixes = /tmp", "smtputf8_enable = no", "",
  ].join("\n"));
  const unix = (name: string, cmd: string, priv = "-", limit = "-") => `${name} unix - ${priv} n - ${limit} ${cmd}`;
  writeFileSync(join(d, "conf/master.cf"), [
    `127.0.0.1:${port} inet n - n - - smtpd`,
    `127.0.0.1:${proxyPort} inet n - n - - smtpd -o smtpd_upstream_proxy_protocol=haproxy`,
    "pickup unix n - n 60 1 pickup", "cleanup unix n - n - 0 cleanup", "qmgr unix n - n 300 1 qmgr",
    unix("rewrite", "trivial-rewrite"), unix("bounce", "bounce", "-", "0"), unix("defer", "bounce", "-", "0"),
    unix("trace", "bounce", "-", "0"), unix("verify", "verify", "-", "1"), "flush unix n - n 1000? 0 flush",
    unix("proxymap", "proxymap"), unix("smtp", "smtp"), unix("relay", "smtp"), "showq unix n - n - - showq",
    unix("error", "error"), unix("retry", "error"), unix("discard", "discard"), unix("anvil", "anvil", "-", "1"),
    unix("scache", "scache", "-", "1"), "postlog unix-dgram n - n - 1 postlogd", "",
  ].join("\n"));
  const r = Bun.spawnSync(["postfix", "-c", join(d, "conf"), "start"], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`postfix start: ${r.stderr.toString()} (see ${d}/maillog)`);
  await waitForPort(port, null);
  await waitForPort(proxyPort, null);
  const log = () => (existsSync(join(d, "maillog")) ? readFileSync(join(d, "maillog"), "utf8") : "");
  return {
    port,
    proxyPort,
    log,
    async stop() {
      Bun.spawnSync(["postfix", "-c", join(d, "conf"), "stop"], { stdout: "ignore", stderr: "ignore" });
    },
  };
}

export interface SwaksResult {
  readonly exitCode: number;
  readonly output: string;
}

/** Run swaks against `port` with `args`; its transcript (both directions) is the output. */
export async function swaks(port: number, args: string[]): Promise<SwaksResult> {
  const proc = Bun.spawn(["swaks", "--server", `127.0.0.1:${port}`, "--timeout", "20", ...args], { stdout: "pipe", stderr: "pipe" });
  const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  return { exitCode: await proc.exited, output: out + err };
}

/** A raw client that reads replies line by line: `expect(code)` waits for the next whole reply. */
export class RawSmtp {
  #seen = 0;
  private constructor(readonly client: Client) {}

  static async open(port: number): Promise<RawSmtp> {
    return new RawSmtp(await connect(port));
  }

  send(text: string | Uint8Array): void {
    this.client.socket.write(typeof text === "string" ? Buffer.from(text, "latin1") : text);
  }

  /** The next whole reply (all its lines), after what was read before; fails after `ms`. */
  async reply(ms = 5000): Promise<string> {
    const deadline = Date.now() + ms;
    for (;;) {
      const text = this.client.receivedText().slice(this.#seen);
      const m = /^(?:\d{3}-[^\r\n]*\r\n)*\d{3}(?: [^\r\n]*)?\r\n/.exec(text);
      if (m) {
        this.#seen += m[0].length;
        return m[0];
      }
      if (Date.now() > deadline) throw new Error(`no whole reply within ${ms} ms; got ${JSON.stringify(text)}`);
      await Bun.sleep(5);
    }
  }

  async closed(): Promise<void> {
    await this.client.closed;
  }

  close(): void {
    this.client.socket.end();
  }
}

async function waitForPort(port: number, proc: Subprocess | null): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const s = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
      s.end();
      return;
    } catch {
      if (proc && proc.exitCode !== null) throw new Error(`peer exited with ${proc.exitCode} before listening on ${port}`);
      if (Date.now() > deadline) throw new Error(`nothing listens on ${port} after 10 s`);
      await Bun.sleep(50);
    }
  }
}

async function stopProc(proc: Subprocess): Promise<void> {
  if (proc.exitCode === null) process.kill(proc.pid, "SIGTERM");
  await proc.exited;
}
