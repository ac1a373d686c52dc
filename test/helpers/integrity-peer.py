#!/usr/bin/env python3
"""One end of a byte-integrity exchange, written with Python's socket and ssl modules so that the
peers of the relay-integrity suite share no code (and no TLS library) with the proxy under test.

Each side sends `--send` pseudo-random bytes (seeded: the other side knows what to expect) and reads
`--expect` bytes, both at once (one thread and non-blocking sockets: an SSL object must not be shared by two threads), at a chosen pace: writes of `--write-size` bytes with
`--write-delay-ms` between them, reads of at most `--read-size` bytes with `--read-delay-ms` between
them. `--half-close`: the side shuts its write side after sending and the other side must see EOF
exactly after the expected bytes; with `--answer-after-eof` a server reads everything and EOF first,
then sends (a response after the client's FIN). Prints one JSON line: received count, whether the
bytes equal the expected stream, whether EOF came where it should, and the first differing offset.

server: listens on 127.0.0.1:0, prints {"port": N}, serves one connection, then prints the result.
client: connects to --port and prints the result.
--tls: TLS (server: --cert/--key; client: --ca, --servername). --pg-client / --pg-server: a
PostgreSQL SSLRequest and startup message come first (client side), or are read and skipped
(server side), as a postgres listener sends them on. --proxy-client sends a PROXY protocol v1 line
first (a load balancer in front of a listener with acceptProxyProtocol); --proxy-server reads the
v1 line or v2 header a route with proxyProtocol sends, and checks its signature and length.
"""
import argparse
import hashlib
import json
import random
import selectors
import socket
import ssl
import struct
import sys
import time


def stream(seed: int, total: int):
    """The deterministic byte stream a side with this seed sends, in blocks."""
    rng = random.Random(seed)
    left = total
    while left > 0:
        n = min(left, 1 << 16)
        yield rng.randbytes(n)
        left -= n


class Receiver:
    """Checks the bytes read against the peer's seeded stream as they come."""

    def __init__(self, seed, expect):
        self.expect = expect
        self.reference = stream(seed, expect)
        self.ref_buf = b""
        self.got = hashlib.sha256()
        self.expected = hashlib.sha256()
        for block in stream(seed, expect):
            self.expected.update(block)
        self.received = 0
        self.first_diff = None
        self.eof = False

    def feed(self, data):
        self.got.update(data)
        if self.first_diff is None:
            while len(self.ref_buf) < len(data):
                self.ref_buf += next(self.reference, b"\0" * len(data))
            if self.ref_buf[:len(data)] != data:
                self.first_diff = self.received + next(i for i in range(len(data)) if self.ref_buf[i] != data[i])
            self.ref_buf = self.ref_buf[len(data):]
        self.received += len(data)

    def result(self):
        return dict(received=self.received, eof=self.eof, firstDiff=self.first_diff,
                    intact=self.received == self.expect and self.got.digest() == self.expected.digest())


def exchange(sock, args):
    """Send and receive at once, each at its pace."""
    sock.setblocking(False)
    out = {}
    rx = Receiver(args.peer_seed, args.expect)
    blocks = stream(args.seed, args.send)
    block = b""  # what is left of the current block of the stream
    pending = b""  # the current write, retried as is until it is taken
    sent = 0
    sending = not args.answer_after_eof
    send_done = args.send == 0
    recv_done = False
    next_write = next_read = 0.0
    write_delay, read_delay = args.write_delay_ms / 1000, args.read_delay_ms / 1000
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ)
    registered = selectors.EVENT_READ
    while not (send_done and recv_done):
        now = time.monotonic()
        want_write = sending and not send_done and now >= next_write
        want_read = not recv_done and now >= next_read
        progressed = False
        if want_read:
            try:
                data = sock.recv(args.read_size)
                if not data:
                    rx.eof = True
                    recv_done = True
                else:
                    rx.feed(data)
                    if rx.received >= args.expect and not args.want_eof:
                        recv_done = True
                    next_read = now + read_delay
                progressed = True
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                pass
            except Exception as e:
                out["recvError"] = f"{type(e).__name__}: {e}"
                recv_done = True
                send_done = True
            if recv_done and args.answer_after_eof:
                sending = True
        if want_write and not send_done:
            if not pending:
                block = block or next(blocks, b"")
                pending, block = block[:args.write_size], block[args.write_size:]
            try:
                n = sock.send(pending)
                sent += n
                pending = pending[n:]
                if not pending:
                    next_write = now + write_delay
                progressed = True
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                pass
            except Exception as e:
                out["sendError"] = f"{type(e).__name__}: {e}"
                send_done = True
            if sent >= args.send and not send_done:
                send_done = True
                out["sent"] = sent
                if args.half_close:
                    sock.shutdown(socket.SHUT_WR)
        if progressed:
            continue
        # Nothing moved: wait for the socket or for the next paced operation.
        events = (selectors.EVENT_READ if not recv_done else 0) | (selectors.EVENT_WRITE if sending and not send_done else 0)
        if events and events != registered:
            sel.modify(sock, events)
            registered = events
        timers = [t for t, on in ((next_write, sending and not send_done), (next_read, not recv_done)) if on and t > now]
        timeout = max(0.0, min(timers) - now) if timers else None
        if events:
            sel.select(min(timeout, 0.05) if timeout is not None else 0.05)
        elif timeout:
            time.sleep(timeout)
    out.update(rx.result())
    try:
        sock.close()
    except OSError:
        pass
    print(json.dumps(out), flush=True)


def read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise RuntimeError("EOF inside the startup message")
        buf += chunk
    return buf


def pg_client_prelude(sock, args):
    """With --tls SSLRequest and TLS, then a startup message naming the database: what psql sends first."""
    if args.tls:
        sock.sendall(struct.pack("!ii", 8, 80877103))
        if read_exact(sock, 1) != b"S":
            raise RuntimeError("SSLRequest refused")
        sock = client_tls(args).wrap_socket(sock, server_hostname=args.servername)
    body = struct.pack("!i", 196608) + b"user\0integrity\0database\0" + args.database.encode() + b"\0\0"
    sock.sendall(struct.pack("!i", len(body) + 4) + body)
    return sock


# MySQL's connection phase, the least a client and a server say before the relay (field layouts:
# https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase.html).
MY_CAPS = 0x1 | 0x8 | 0x200 | 0x8000 | 0x80000  # LONG_PASSWORD, CONNECT_WITH_DB, PROTOCOL_41, SECURE_CONNECTION, PLUGIN_AUTH
MY_SSL = 0x800
NATIVE = b"mysql_native_password"


def my_read(sock):
    header = read_exact(sock, 4)
    length = header[0] | header[1] << 8 | header[2] << 16
    return header[3], read_exact(sock, length)


def my_write(sock, seq, payload):
    sock.sendall(struct.pack("<I", len(payload))[:3] + bytes([seq]) + payload)


def my_client_prelude(sock, args):
    """Read the greeting, (with --tls) send an SSLRequest and start TLS, answer as a client naming
    user and database, answer the auth switch, read OK."""
    seq, greeting = my_read(sock)
    if greeting[0] != 10:
        raise RuntimeError(f"not a protocol 10 greeting: {greeting[:8].hex()}")
    caps = MY_CAPS
    if args.tls:
        caps |= MY_SSL
        seq += 1
        my_write(sock, seq, struct.pack("<IIB", caps, 1 << 24, 33) + bytes(23))
        sock = client_tls(args).wrap_socket(sock, server_hostname=args.servername)
    response = (struct.pack("<IIB", caps, 1 << 24, 33) + bytes(23) + b"integrity\0" + bytes([20]) + bytes(20)
                + args.database.encode() + b"\0" + NATIVE + b"\0")
    my_write(sock, seq + 1, response)
    while True:
        seq, packet = my_read(sock)
        if packet[0] == 0xFE:  # AuthSwitchRequest: any 20 bytes will do for this server
            my_write(sock, seq + 1, bytes(range(20)))
        elif packet[0] == 0x00:
            return sock
        else:
            raise RuntimeError(f"unexpected packet in authentication: {packet[:200]!r}")


def my_server_prelude(conn, args):
    """Greet as MariaDB would (with --tls offering CLIENT_SSL and requiring the SSLRequest), read the
    client's response (whatever its auth), answer OK. Returns the socket the relay continues on."""
    scramble = bytes(range(1, 21))
    caps = MY_CAPS | (MY_SSL if args.tls else 0)
    greeting = (b"\x0a" + b"5.7.99-integrity\0" + struct.pack("<I", 7) + scramble[:8] + b"\0"
                + struct.pack("<HBHH", caps & 0xFFFF, 33, 2, caps >> 16) + bytes([21]) + bytes(10)
                + scramble[8:] + b"\0" + NATIVE + b"\0")
    my_write(conn, 0, greeting)
    seq, response = my_read(conn)
    if args.tls:
        (client_caps,) = struct.unpack("<I", response[:4])
        if len(response) != 32 or not client_caps & MY_SSL:
            raise RuntimeError(f"expected an SSLRequest, got {len(response)} bytes")
        conn = server_tls(args).wrap_socket(conn, server_side=True)
        seq, response = my_read(conn)
    my_write(conn, seq + 1, b"\x00\x00\x00\x02\x00\x00\x00")
    return conn


PROXY_V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_server_prelude(conn):
    """Read the PROXY header (v1 line or v2 binary, HAProxy's proxy-protocol.txt) byte-exactly: nothing after it."""
    first = read_exact(conn, 12)
    if first == PROXY_V2_SIGNATURE:
        _ver_cmd, _family, length = struct.unpack("!BBH", read_exact(conn, 4))
        read_exact(conn, length)
        return
    if not first.startswith(b"PROXY "):
        raise RuntimeError(f"no PROXY header: {first.hex()}")
    line = first
    while not line.endswith(b"\r\n"):
        if len(line) > 107:
            raise RuntimeError("PROXY v1 line longer than 107 bytes")
        line += read_exact(conn, 1)


def server_tls(args):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    return ctx


def client_tls(args):
    ctx = ssl.create_default_context(cafile=args.ca)
    return ctx


def main():
    p = argparse.ArgumentParser()
    p.add_argument("role", choices=["server", "client"])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--peer-seed", type=int, required=True)
    p.add_argument("--send", type=int, required=True)
    p.add_argument("--expect", type=int, required=True)
    p.add_argument("--write-size", type=int, default=65536)
    p.add_argument("--write-delay-ms", type=float, default=0)
    p.add_argument("--read-size", type=int, default=65536)
    p.add_argument("--read-delay-ms", type=float, default=0)
    p.add_argument("--half-close", action="store_true")
    p.add_argument("--want-eof", action="store_true", help="read on until EOF and report where it came")
    p.add_argument("--answer-after-eof", action="store_true")
    p.add_argument("--tls", action="store_true")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--ca")
    p.add_argument("--servername", default="localhost")
    p.add_argument("--pg-client", action="store_true")
    p.add_argument("--pg-server", action="store_true")
    p.add_argument("--my-client", action="store_true")
    p.add_argument("--my-server", action="store_true")
    p.add_argument("--database", default="integrity")
    p.add_argument("--proxy-client", action="store_true")
    p.add_argument("--proxy-server", action="store_true")
    args = p.parse_args()

    if args.role == "server":
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(4)
        print(json.dumps({"port": ls.getsockname()[1]}), flush=True)
        conn, _ = ls.accept()
        ls.close()
        if args.proxy_server:
            proxy_server_prelude(conn)
        if args.pg_server:
            (length,) = struct.unpack("!i", read_exact(conn, 4))
            read_exact(conn, length - 4)
        if args.my_server:
            conn = my_server_prelude(conn, args)
        elif args.tls:
            conn = server_tls(args).wrap_socket(conn, server_side=True)
        exchange(conn, args)
    else:
        sock = socket.create_connection(("127.0.0.1", args.port))
        if args.proxy_client:
            sock.sendall(b"PROXY TCP4 192.0.2.1 127.0.0.1 5555 80\r\n")
        if args.pg_client:
            sock = pg_client_prelude(sock, args)
        elif args.my_client:
            sock = my_client_prelude(sock, args)
        elif args.tls:
            sock = client_tls(args).wrap_socket(sock, server_hostname=args.servername)
        exchange(sock, args)


if __name__ == "__main__":
    sys.exit(main())
