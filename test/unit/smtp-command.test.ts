import { describe, expect, test } from "bun:test";
import { parseCommand, type CommandParse } from "../../src/smtp/command.ts";
import { CommandFramer } from "../../src/smtp/command-framer.ts";
import { SMTP_ERRORS } from "../../src/smtp/errors.ts";
import { fixture } from "../helpers/fixtures.ts";

const enc = new TextEncoder();
const parse = (line: string): CommandParse => {
  const bytes = enc.encode(line);
  return parseCommand(bytes, 0, bytes.length);
};
const reason = (line: string) => {
  const r = parse(line);
  return r.kind === "error" ? r.reason : `not an error: ${r.kind}`;
};

describe("the captured swaks commands (see smtp-command-framer.test.ts for how they were captured)", () => {
  test("plain session: EHLO, MAIL, two RCPTs (domain lowercased for routing), DATA", () => {
    const bytes = fixture("smtp-swaks-plain-client");
    const framer = new CommandFramer();
    const out: CommandParse[] = [];
    for (let at = 0; out.length < 5;) {
      const f = framer.next(bytes, at);
      if (f.kind !== "line") throw new Error(f.kind);
      out.push(parseCommand(bytes, f.start, f.end));
      at += f.size;
    }
    expect(out).toEqual([
      { kind: "ehlo", domain: "client.example", addressLiteral: false },
      { kind: "mail", reversePath: "alice@a.example", params: { size: null, body: null, smtpUtf8: false } },
      { kind: "rcpt", forwardPath: "bob@B.Example", domain: "b.example" },
      { kind: "rcpt", forwardPath: "carol@b.example", domain: "b.example" },
      { kind: "data" },
    ]);
  });

  test("pipelined session: the null reverse-path", () => {
    const bytes = fixture("smtp-swaks-pipeline-client");
    const mail = bytes.subarray(21, 21 + "MAIL FROM:<>".length);
    expect(parseCommand(mail, 0, mail.length)).toEqual({ kind: "mail", reversePath: "", params: { size: null, body: null, smtpUtf8: false } });
  });

  test("XCLIENT from a client is recognised (the session refuses it)", () => {
    const bytes = fixture("smtp-swaks-xclient-client");
    expect(parseCommand(bytes, 20, 20 + 52)).toEqual({ kind: "xclient" });
  });
});

describe("verbs", () => {
  test("case-insensitive (RFC 5321 §2.4)", () => {
    expect(parse("ehlo A.Example")).toEqual({ kind: "ehlo", domain: "A.Example", addressLiteral: false });
    expect(parse("QuIt")).toEqual({ kind: "quit" });
    expect(parse("StartTLS")).toEqual({ kind: "starttls" });
  });

  test("commands without arguments", () => {
    for (const v of ["DATA", "RSET", "QUIT", "STARTTLS"]) {
      expect(parse(v)).toEqual({ kind: v.toLowerCase() } as CommandParse);
      expect(parse(`${v}  `)).toEqual({ kind: v.toLowerCase() } as CommandParse); // trailing spaces
      expect(reason(`${v} x`)).toBe("unexpected_argument");
    }
  });

  test("NOOP and HELP take an optional string, VRFY and EXPN a required one", () => {
    expect(parse("NOOP")).toEqual({ kind: "noop", argument: "" });
    expect(parse("NOOP  keep alive")).toEqual({ kind: "noop", argument: "keep alive" });
    expect(parse("HELP MAIL")).toEqual({ kind: "help", argument: "MAIL" });
    expect(parse("VRFY postmaster")).toEqual({ kind: "vrfy", argument: "postmaster" });
    expect(parse("EXPN staff")).toEqual({ kind: "expn", argument: "staff" });
    expect(reason("VRFY")).toBe("missing_argument");
    expect(reason("EXPN ")).toBe("missing_argument");
  });

  test("AUTH is recognised without parsing its mechanism", () => {
    expect(parse("AUTH PLAIN AGFsaWNlAHNlY3JldA==")).toEqual({ kind: "auth" });
  });

  test("BDAT (RFC 3030): size and LAST", () => {
    expect(parse("BDAT 1000")).toEqual({ kind: "bdat", chunkSize: 1000, last: false });
    expect(parse("bdat 0 last")).toEqual({ kind: "bdat", chunkSize: 0, last: true });
    for (const bad of ["BDAT", "BDAT x", "BDAT 10 LASTX", "BDAT 10x", "BDAT 10 LAST 1", "BDAT 1234567890123456"]) expect(reason(bad)).toBe("bad_bdat_syntax");
  });

  test("unknown verbs, verbs glued to arguments, empty lines", () => {
    for (const bad of ["ETRN x", "MAILFROM:<a@b.c>", "", " ", "EHL", "EHLOO x"]) expect(reason(bad)).toBe("unknown_command");
  });

  test("control characters anywhere", () => {
    expect(reason("NOOP \u0000")).toBe("control_character");
    expect(reason("EHLO\ta.example")).toBe("control_character");
    expect(reason("RSET\u007f")).toBe("control_character");
  });
});

describe("EHLO / HELO (RFC 5321 §4.1.1.1)", () => {
  test("domains and address literals", () => {
    expect(parse("EHLO [192.0.2.1]")).toEqual({ kind: "ehlo", domain: "[192.0.2.1]", addressLiteral: true });
    expect(parse("EHLO [IPv6:2001:db8::1]")).toEqual({ kind: "ehlo", domain: "[IPv6:2001:db8::1]", addressLiteral: true });
    expect(parse("HELO my_pc.lan")).toEqual({ kind: "helo", domain: "my_pc.lan", addressLiteral: false });
    expect(parse("EHLO localhost")).toEqual({ kind: "ehlo", domain: "localhost", addressLiteral: false });
  });

  test("refused", () => {
    expect(reason("EHLO")).toBe("missing_argument");
    expect(reason("EHLO a.example extra")).toBe("unexpected_argument");
    for (const bad of ["EHLO a..example", "EHLO -a.example", "EHLO a-.example", "EHLO a.example.", "EHLO a/b", "EHLO []", "EHLO [1.2.3.4", "EHLO [a]b", `EHLO ${"a".repeat(64)}.example`, `EHLO ${"a.".repeat(128)}a`]) {
      expect(reason(bad)).toBe("bad_helo_domain");
    }
  });
});

describe("MAIL FROM (RFC 5321 §4.1.1.2, RFC 1870, RFC 6152, RFC 6531)", () => {
  const mail = (reversePath: string, params = {}) => ({ kind: "mail" as const, reversePath, params: { size: null, body: null, smtpUtf8: false, ...params } });

  test("paths", () => {
    expect(parse("MAIL FROM:<>")).toEqual(mail(""));
    expect(parse("mail from: <a@b.example>")).toEqual(mail("a@b.example")); // space after the colon, as Postfix accepts
    expect(parse('MAIL FROM:<"a b\\"c"@b.example>')).toEqual(mail('"a b\\"c"@b.example'));
    expect(parse('MAIL FROM:<"x>y"@b.example>')).toEqual(mail('"x>y"@b.example')); // ">" inside quotes
    expect(parse("MAIL FROM:<@relay.example,@r2.example:a@b.example>")).toEqual(mail("a@b.example")); // source route ignored
    expect(parse("MAIL FROM:<a@[192.0.2.1]>")).toEqual(mail("a@[192.0.2.1]"));
    expect(parse("MAIL FROM:<δοκιμή@παράδειγμα.δοκιμή> SMTPUTF8")).toEqual(mail("δοκιμή@παράδειγμα.δοκιμή", { smtpUtf8: true }));
    expect(parse(`MAIL FROM:<${"v".repeat(100)}@b.example>`)).toEqual(mail(`${"v".repeat(100)}@b.example`)); // long local part
  });

  test("parameters", () => {
    expect(parse("MAIL FROM:<a@b.example> SIZE=12345 BODY=8BITMIME SMTPUTF8")).toEqual(mail("a@b.example", { size: 12345, body: "8BITMIME", smtpUtf8: true }));
    expect(parse("MAIL FROM:<a@b.example>  size=0  body=7bit")).toEqual(mail("a@b.example", { size: 0, body: "7BIT" }));
  });

  test("refused paths", () => {
    expect(reason("MAIL")).toBe("bad_mail_syntax");
    expect(reason("MAIL TO:<a@b.example>")).toBe("bad_mail_syntax");
    expect(reason("MAIL FROM")).toBe("bad_mail_syntax");
    for (const bad of [
      "MAIL FROM:a@b.example", "MAIL FROM:<a@b.example", "MAIL FROM:<a@b.example>x", "MAIL FROM:<a>", "MAIL FROM:<@b.example>",
      "MAIL FROM:<a.@b.example>", "MAIL FROM:<.a@b.example>", "MAIL FROM:<a..b@b.example>", "MAIL FROM:<a@>", "MAIL FROM:<a@b..example>",
      "MAIL FROM:<a b@b.example>", 'MAIL FROM:<"a@b.example>', "MAIL FROM:<a@b.example<>",
      "MAIL FROM:<@relay.example:>", "MAIL FROM:<@relay..example:a@b.example>", "MAIL FROM:<a@[1.2.3.4>",
      `MAIL FROM:<${"a".repeat(250)}@b.example>`, // 256 octets with the brackets is the most (§4.5.3.1.3)
    ]) expect(reason(bad)).toBe("bad_reverse_path");
  });

  test("refused parameters", () => {
    expect(reason("MAIL FROM:<a@b.example> SIZE=")).toBe("bad_parameter");
    expect(reason("MAIL FROM:<a@b.example> SIZE=12a")).toBe("bad_parameter");
    expect(reason("MAIL FROM:<a@b.example> SIZE")).toBe("bad_parameter");
    expect(reason("MAIL FROM:<a@b.example> SIZE=1234567890123456")).toBe("bad_parameter");
    expect(reason("MAIL FROM:<a@b.example> BODY=9BIT")).toBe("bad_parameter");
    expect(reason("MAIL FROM:<a@b.example> SMTPUTF8=yes")).toBe("bad_parameter");
    expect(reason("MAIL FROM:<a@b.example> =x")).toBe("bad_parameter");
    expect(reason("MAIL FROM:<a@b.example> -X=1")).toBe("bad_parameter");
    expect(reason("MAIL FROM:<a@b.example> A=b=c")).toBe("bad_parameter");
    expect(reason("MAIL FROM:<a@b.example> SIZE=1 SIZE=2")).toBe("duplicate_parameter");
    expect(reason("MAIL FROM:<a@b.example> RET=HDRS")).toBe("unknown_parameter"); // DSN is not offered
    expect(reason("MAIL FROM:<a@b.example> BODY=BINARYMIME")).toBe("unknown_parameter"); // needs CHUNKING
    expect(reason("MAIL FROM:<a@b.example> AUTH=<>")).toBe("unknown_parameter");
  });
});

describe("RCPT TO (RFC 5321 §4.1.1.3)", () => {
  test("the recipient's domain, lowercased, for routing", () => {
    expect(parse("RCPT TO:<Bob@Mail.B.Example>")).toEqual({ kind: "rcpt", forwardPath: "Bob@Mail.B.Example", domain: "mail.b.example" });
    expect(parse("rcpt to: <x@[IPv6:2001:DB8::1]>")).toEqual({ kind: "rcpt", forwardPath: "x@[IPv6:2001:DB8::1]", domain: "[ipv6:2001:db8::1]" });
    expect(parse("RCPT TO:<@hop.example:x@c.example>")).toEqual({ kind: "rcpt", forwardPath: "x@c.example", domain: "c.example" });
  });

  test("<Postmaster> without a domain", () => {
    expect(parse("RCPT TO:<Postmaster>")).toEqual({ kind: "rcpt", forwardPath: "Postmaster", domain: "" });
    expect(parse("RCPT TO:<postmaster@B.example>")).toEqual({ kind: "rcpt", forwardPath: "postmaster@B.example", domain: "b.example" });
    expect(reason("MAIL FROM:<Postmaster>")).toBe("bad_reverse_path"); // only RCPT has the special form
  });

  test("refused", () => {
    expect(reason("RCPT")).toBe("bad_rcpt_syntax");
    expect(reason("RCPT FROM:<a@b.example>")).toBe("bad_rcpt_syntax");
    expect(reason("RCPT TO:<>")).toBe("bad_forward_path");
    expect(reason("RCPT TO:<bob>")).toBe("bad_forward_path");
    expect(reason("RCPT TO:bob@b.example")).toBe("bad_forward_path");
    expect(reason("RCPT TO:<a@b.example> NOTIFY=NEVER")).toBe("unknown_parameter");
    expect(reason("RCPT TO:<a@b.example> =")).toBe("bad_parameter");
  });
});

test("every reason the parser gives has a reply", () => {
  const reasons = new Set<string>();
  for (const line of ["X", "NOOP \u0001", "VRFY", "DATA x", "EHLO a..b", "MAIL", "RCPT", "MAIL FROM:<", "RCPT TO:<", "BDAT", "MAIL FROM:<> SIZE", "MAIL FROM:<> SIZE=1 SIZE=1", "MAIL FROM:<> X=1"]) {
    const r = parse(line);
    if (r.kind === "error") reasons.add(r.reason);
  }
  expect(reasons.size).toBe(13);
  for (const r of reasons) expect(SMTP_ERRORS[r as keyof typeof SMTP_ERRORS]).toBeDefined();
});
