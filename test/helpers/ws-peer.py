#!/usr/bin/python3
"""WebSocket peers for test/integration/http-websocket.test.ts (python3-websockets, a real RFC 6455 stack):
  server        an echo server on 127.0.0.1 (prints its port), every message sent back as it came;
  client PORT   connects to ws://127.0.0.1:PORT/ws (through the proxy), then checks a text echo, an
                8 MiB binary echo (sha256), 200 messages sent before any echo is read (in order), and the
                closing handshake; prints "ok <checks>" or fails with the reason;
  client PORT CA_FILE SERVER_NAME   the same over wss:// (TLS with SNI SERVER_NAME, verified against CA_FILE)."""
import asyncio, hashlib, os, ssl, sys
import websockets

async def echo(ws, path=None):
    async for message in ws:
        await ws.send(message)

async def server():
    async with websockets.serve(echo, "127.0.0.1", 0, max_size=None) as srv:
        print(srv.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()

async def client(port, ca=None, name=None):
    tls = {}
    if ca:
        ctx = ssl.create_default_context(cafile=ca)
        tls = {"ssl": ctx, "server_hostname": name}
    scheme = "wss" if ca else "ws"
    async with websockets.connect(f"{scheme}://127.0.0.1:{port}/ws", max_size=None, open_timeout=10, **tls) as ws:
        await ws.send("hello through the proxy")
        assert await ws.recv() == "hello through the proxy"
        big = os.urandom(8 * 1024 * 1024)
        await ws.send(big)
        back = await ws.recv()
        assert hashlib.sha256(back).digest() == hashlib.sha256(big).digest(), "8 MiB echo differs"
        for i in range(200):
            await ws.send(f"m{i}")
        for i in range(200):
            got = await ws.recv()
            assert got == f"m{i}", (i, got)
        await ws.close()
        assert ws.close_code == 1000, ws.close_code
    print("ok text binary-8MiB ordered-200 close-1000")

if __name__ == "__main__":
    asyncio.run(server() if sys.argv[1] == "server" else client(*sys.argv[2:]))
