#!/usr/bin/python3
"""A raw-socket HTTP/1.1 client for bulk bodies (test/integration/http-bulk.test.ts), so that neither
side of the test is the proxy's own code:
  upload PORT HOST FILE        POST /hash with FILE as a chunked body (uneven chunk sizes, with an
                               extension and a trailer); prints the response body.
  download PORT HOST DELAY_MS  GET /stream, decodes the chunked response while reading slowly (DELAY_MS
                               after every 256 KiB read, a receive buffer of 64 KiB); prints
                               "<bytes> <sha256>".
  tunnel PORT SIZE DELAY_MS    GET /tunnel with Upgrade: bulk; after the 101, sends SIZE random bytes up (a
                               thread) while reading SIZE bytes down slowly (DELAY_MS after every 256 KiB,
                               64 KiB receive buffer); prints "<sent sha256> <received bytes> <received sha256>".
  hash-server DELAY_MS         a backend: prints its port, then answers each POST /hash (one a connection)
                               with "<bytes> <sha256> te=<Transfer-Encoding>" of the decoded chunked body,
                               reading slowly (DELAY_MS after every 256 KiB, 64 KiB receive buffer). Bun.serve
                               cannot be that backend: a chunked upload it reads slowly gets 400 from Bun
                               itself (Bun 1.4.5), without any proxy in between."""
import hashlib, os, socket, sys, time

def connect(port):
    s = socket.create_connection(("127.0.0.1", int(port)))
    return s

def read_head(f):
    status = f.readline()
    fields = {}
    while True:
        line = f.readline()
        if line in (b"\r\n", b""):
            return status, fields
        name, _, value = line.decode("latin1").partition(":")
        fields[name.strip().lower()] = value.strip()

def upload(port, host, path):
    s = connect(port)
    s.sendall(f"POST /hash HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".encode())
    sizes = [65536, 1, 70000, 4096, 131072, 333]
    i = 0
    with open(path, "rb") as src:
        while True:
            block = src.read(sizes[i % len(sizes)])
            i += 1
            if not block:
                break
            ext = ";n=%d" % i if i % 97 == 0 else ""
            s.sendall(b"%x%s\r\n" % (len(block), ext.encode()) + block + b"\r\n")
    s.sendall(b"0\r\nX-Checksum: end\r\n\r\n")
    f = s.makefile("rb")
    status, fields = read_head(f)
    body = f.read(int(fields.get("content-length", "0")))
    print(status.decode().strip(), body.decode())

def download(port, host, delay_ms):
    s = connect(port)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.sendall(f"GET /stream HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    f = s.makefile("rb", buffering=65536)
    status, fields = read_head(f)
    assert fields.get("transfer-encoding", "").lower() == "chunked", (status, fields)
    h = hashlib.sha256()
    n = 0
    since_pause = 0
    while True:
        size = int(f.readline().split(b";")[0], 16)
        if size == 0:
            while f.readline() not in (b"\r\n", b""):
                pass
            break
        left = size
        while left > 0:
            data = f.read(min(left, 65536))
            h.update(data)
            left -= len(data)
            n += len(data)
            since_pause += len(data)
            if since_pause >= 262144:
                since_pause = 0
                time.sleep(delay_ms / 1000)
        assert f.read(2) == b"\r\n"
    print(n, h.hexdigest())

def tunnel(port, size, delay_ms):
    import threading
    s = connect(port)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.sendall(b"GET /tunnel HTTP/1.1\r\nHost: bulk.test\r\nConnection: Upgrade\r\nUpgrade: bulk\r\n\r\n")
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        head += s.recv(1)
    assert head.startswith(b"HTTP/1.1 101 "), head
    sent = hashlib.sha256()

    def send_up():
        left = size
        while left > 0:
            block = os.urandom(min(left, 65536))
            sent.update(block)
            s.sendall(block)
            left -= len(block)

    t = threading.Thread(target=send_up)
    t.start()
    got = hashlib.sha256()
    n = since_pause = 0
    while n < size:
        data = s.recv(65536)
        if not data:
            break
        got.update(data)
        n += len(data)
        since_pause += len(data)
        if since_pause >= 262144:
            since_pause = 0
            time.sleep(delay_ms / 1000)
    t.join()
    s.close()
    print(sent.hexdigest(), n, got.hexdigest())

def hash_server(delay_ms):
    import threading
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    print(srv.getsockname()[1], flush=True)

    def handle(c):
        f = c.makefile("rb", buffering=65536)
        status, fields = read_head(f)
        h = hashlib.sha256()
        n = since_pause = 0
        while True:
            size = int(f.readline().split(b";")[0], 16)
            if size == 0:
                while f.readline() not in (b"\r\n", b""):
                    pass
                break
            left = size
            while left > 0:
                data = f.read(min(left, 65536))
                if not data:
                    raise EOFError("body cut short")
                h.update(data)
                left -= len(data)
                n += len(data)
                since_pause += len(data)
                if since_pause >= 262144:
                    since_pause = 0
                    time.sleep(delay_ms / 1000)
            assert f.read(2) == b"\r\n"
        body = f"{n} {h.hexdigest()} te={fields.get('transfer-encoding')}".encode()
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
        c.close()

    while True:
        c, _ = srv.accept()
        threading.Thread(target=handle, args=(c,), daemon=True).start()

if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "upload":
        upload(sys.argv[2], sys.argv[3], sys.argv[4])
    elif mode == "tunnel":
        tunnel(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    elif mode == "hash-server":
        hash_server(float(sys.argv[2]))
    else:
        download(sys.argv[2], sys.argv[3], float(sys.argv[4]))
