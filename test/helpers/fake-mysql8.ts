/**
 * A small fake MySQL 8 server for caching_sha2_password, which MariaDB cannot serve (issue 16). It
 * follows the exchanges of MySQL's documentation
 * (https://dev.mysql.com/doc/dev/mysql-server/latest/page_caching_sha2_authentication_exchanges.html):
 *
 *   greeting (plugin caching_sha2_password, 20-byte scramble) ─► HandshakeResponse41 whose auth
 *   response is XOR(SHA256(pw), SHA256(SHA256(SHA256(pw)) ‖ scramble))
 *   fast path (the user is in the server's cache): AuthMoreData 0x03, OK
 *   full path (not cached yet): AuthMoreData 0x04; then the password in clear (accepted only on a
 *   secure transport: with `tls`, after the client's SSLRequest; without, a proxy that does not
 *   offer TLS upstream meets exactly this refusal), or 0x02 ─► the RSA public key (AuthMoreData,
 *   PEM) ─► RSA-OAEP(pw‖NUL XOR scramble) ─► OK
 *
 * With `tls` (a certificate), the greeting offers CLIENT_SSL and an SSLRequest (seq 1) is followed
 * by TLS, as a MySQL 8 server does; `sessions` records, per login, whether it was on TLS.
 *
 * After the OK it answers COM_QUERY with a one-row result "1" (or OK for SET), COM_PING with OK, COM_QUIT by closing.
 */
import { createHash, generateKeyPairSync, privateDecrypt, constants } from "node:crypto";
import type { Socket, SocketHandler } from "bun";
import { readFileSync } from "node:fs";
import { buildInitialHandshake, makeScramble } from "../../src/mysql/initial-handshake.ts";
import { parseClientHandshake } from "../../src/mysql/handshake-response.ts";
import { frameMessage, messagePayload } from "../../src/mysql/packet-framer.ts";
import { PayloadWriter, toPackets } from "../../src/mysql/payload-writer.ts";
import { buildErr, buildOk, ER_ACCESS_DENIED_ERROR } from "../../src/mysql/response-packets.ts";
import {
  CHARSET_UTF8MB4_GENERAL_CI, CLIENT_CONNECT_ATTRS, CLIENT_CONNECT_WITH_DB, CLIENT_LONG_FLAG, CLIENT_LONG_PASSWORD, CLIENT_MULTI_RESULTS,
  CLIENT_PLUGIN_AUTH, CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA, CLIENT_PROTOCOL_41, CLIENT_SECURE_CONNECTION, CLIENT_SSL, CLIENT_TRANSACTIONS, SERVER_STATUS_AUTOCOMMIT,
} from "../../src/mysql/capabilities.ts";

const sha256 = (...parts: Uint8Array[]) => {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};

export interface FakeMysql8 {
  readonly port: number;
  /** Every authentication path taken, in order: "fast", "rsa", "cleartext", "cleartext-refused", "bad-password". */
  readonly paths: string[];
  /** Per HandshakeResponse41 received, whether it came over TLS. */
  readonly overTls: boolean[];
  stop(): void;
}

interface Session {
  seq: number; scramble: Uint8Array; phase: "response" | "full" | "rsa" | "command"; user: string; buf: Uint8Array;
  /** After an SSLRequest: the TLS socket (the raw one's further events are its ciphertext, ignored). */
  tls: Socket<Session> | null;
}

export function fakeMysql8(users: Record<string, string>, tls?: { cert: string; key: string }): FakeMysql8 {
  const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const pem = new TextEncoder().encode(publicKey.export({ type: "spki", format: "pem" }) as string);
  const cached = new Set<string>();
  const paths: string[] = [];
  const overTls: boolean[] = [];
  const tlsOptions = tls ? { cert: readFileSync(tls.cert, "utf8"), key: readFileSync(tls.key, "utf8") } : null;
  const caps = ((tls ? CLIENT_SSL : 0) | CLIENT_LONG_PASSWORD | CLIENT_LONG_FLAG | CLIENT_CONNECT_WITH_DB | CLIENT_PROTOCOL_41 | CLIENT_TRANSACTIONS | CLIENT_SECURE_CONNECTION
    | CLIENT_MULTI_RESULTS | CLIENT_PLUGIN_AUTH | CLIENT_CONNECT_ATTRS | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA) >>> 0;

  const send = (s: Socket<Session>, payload: Uint8Array) => {
    s.write(toPackets(payload, s.data.seq));
    s.data.seq = (s.data.seq + 1) & 0xff;
  };
  const deny = (s: Socket<Session>, why: string) => {
    paths.push(why);
    send(s, buildErr({ ...ER_ACCESS_DENIED_ERROR, message: `Access denied for user '${s.data.user}' (${why})` }));
    s.end();
  };
  const ok = (s: Socket<Session>) => send(s, buildOk(SERVER_STATUS_AUTOCOMMIT, caps));
  const moreData = (s: Socket<Session>, data: Uint8Array) => send(s, new PayloadWriter().u8(0x01).bytes(data).payload());

  function packet(s: Socket<Session>, payload: Uint8Array): void {
    const d = s.data;
    const password = users[d.user];
    switch (d.phase) {
      case "response": {
        const r = parseClientHandshake(payload);
        if (r.kind === "ssl-request" && tlsOptions && !d.tls) return startTls(s);
        if (r.kind !== "response41") return deny(s, "bad-handshake");
        overTls.push(d.tls !== null);
        d.user = r.response.user;
        const pw = users[d.user];
        if (pw === undefined || r.response.authPluginName !== "caching_sha2_password") return deny(s, "bad-password");
        const p1 = sha256(new TextEncoder().encode(pw));
        const p3 = sha256(sha256(p1), d.scramble);
        const expected = p1.map((b, i) => b ^ p3[i]!);
        if (Buffer.compare(Buffer.from(expected), Buffer.from(r.response.authResponse)) !== 0) return deny(s, "bad-password");
        if (cached.has(d.user)) {
          paths.push("fast");
          moreData(s, new Uint8Array([0x03]));
          ok(s);
          d.phase = "command";
          return;
        }
        moreData(s, new Uint8Array([0x04]));
        d.phase = "full";
        return;
      }
      case "full":
      case "rsa": {
        if (payload.length === 1 && payload[0] === 0x02) {
          moreData(s, pem);
          d.phase = "rsa";
          return;
        }
        if (d.phase !== "rsa" && d.tls) {
          // The password in clear, NUL-terminated: allowed on a secure transport only.
          if (new TextDecoder().decode(payload.subarray(0, payload.length - 1)) !== password) return deny(s, "bad-password");
          paths.push("cleartext");
          cached.add(d.user);
          ok(s);
          d.phase = "command";
          return;
        }
        if (d.phase !== "rsa") return deny(s, "cleartext-refused"); // not a secure transport
        let plain: Uint8Array;
        try {
          plain = new Uint8Array(privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING }, payload));
        } catch {
          return deny(s, "bad-password");
        }
        const pw = new TextDecoder().decode(plain.map((b, i) => b ^ d.scramble[i % d.scramble.length]!).subarray(0, plain.length - 1));
        if (pw !== password) return deny(s, "bad-password");
        paths.push("rsa");
        cached.add(d.user);
        ok(s);
        d.phase = "command";
        return;
      }
      case "command": {
        d.seq = 1;
        const command = payload[0];
        if (command === 0x01) return void s.end(); // COM_QUIT
        if (command === 0x03 && !/^\s*set\b/i.test(new TextDecoder().decode(payload.subarray(1)))) return resultOne(s);
        return ok(s);
      }
    }
  }

  /** The SSLRequest was read: TLS over the socket; the HandshakeResponse41 (seq 2) comes inside it. */
  function startTls(s: Socket<Session>): void {
    const d = s.data;
    const rest = d.buf;
    d.buf = new Uint8Array(0);
    const upgrade = (s as unknown as { upgradeTLS(o: object): [Socket<Session>, Socket<Session>] }).upgradeTLS;
    const [, secured] = upgrade.call(s, { isServer: true, tls: tlsOptions, socket: handlers, data: d, ...(rest.length > 0 ? { initialData: rest } : {}) });
    d.tls = secured;
  }

  /** A text result set of one BIGINT column "1" with one row, with EOF packets (CLIENT_DEPRECATE_EOF is not offered). */
  function resultOne(s: Socket<Session>): void {
    send(s, new Uint8Array([0x01]));
    send(s, new PayloadWriter().lenencString("def").lenencString("").lenencString("").lenencString("").lenencString("1").lenencString("")
      .lenencInt(0x0c).u16(63).u32(1).u8(0x08).u16(0x81).u8(0).u16(0).payload());
    const eof = new PayloadWriter().u8(0xfe).u16(0).u16(SERVER_STATUS_AUTOCOMMIT).payload();
    send(s, eof);
    send(s, new PayloadWriter().lenencString("1").payload());
    send(s, eof);
  }

  const handlers: SocketHandler<Session> = {
    binaryType: "uint8array",
    open(s) {
      if (s.data?.tls !== undefined) return; // the TLS socket made by startTls
      const scramble = makeScramble(crypto.getRandomValues(new Uint8Array(20)));
      s.data = { seq: 0, scramble, phase: "response", user: "", buf: new Uint8Array(0), tls: null };
      send(s, buildInitialHandshake({ serverVersion: "8.0.36-fake", connectionId: 7, scramble, capabilities: caps, mariadbCapabilities: 0,
        characterSet: CHARSET_UTF8MB4_GENERAL_CI, statusFlags: SERVER_STATUS_AUTOCOMMIT, authPluginName: "caching_sha2_password" }));
    },
    data(s, chunk) {
      const d = s.data;
      if (d.tls && s !== d.tls) return;
      const joined = new Uint8Array(d.buf.length + chunk.length);
      joined.set(d.buf);
      joined.set(chunk, d.buf.length);
      let at = 0;
      for (;;) {
        const f = frameMessage(joined, at, 1 << 24);
        if (f.kind !== "message") break;
        d.seq = (f.lastSequenceId + 1) & 0xff;
        at += f.size;
        d.buf = joined.slice(at);
        const before = d.tls;
        packet(s, messagePayload(joined, at - f.size, f).slice());
        if (d.tls !== before) return; // the rest went to the TLS socket as its first bytes
      }
      d.buf = joined.slice(at);
    },
  };
  const server = Bun.listen<Session>({ hostname: "127.0.0.1", port: 0, socket: handlers });
  return { port: server.port, paths, overTls, stop: () => server.stop(true) };
}
