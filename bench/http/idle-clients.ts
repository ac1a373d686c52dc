/**
 * Holds N idle keep-alive HTTP/1.1 client connections to ADDRESS: each sends one GET, reads its whole
 * response (Content-Length), then stays open and silent. Prints `HELD N` once all are, then waits to
 * be killed. Run by bench/http/main.ts (its own process, so its memory is not the proxy's).
 *
 *   bun bench/http/idle-clients.ts 127.0.0.1:8080 2000 /100
 * @module
 */
import type { Socket } from "bun";

const [address, countText, path = "/100"] = process.argv.slice(2);
if (!address || !countText) {
  console.error("usage: idle-clients.ts HOST:PORT N [PATH]");
  process.exit(2);
}
const i = address.lastIndexOf(":");
const hostname = address.slice(0, i);
const port = Number(address.slice(i + 1));
const total = Number(countText);
const request = new TextEncoder().encode(`GET ${path} HTTP/1.1\r\nHost: ${address}\r\n\r\n`);

interface Client { got: string; done: boolean }
const held: Socket<Client>[] = [];
let answered = 0;
let failed = 0;

/** True once `text` holds a whole response head and its Content-Length of body. */
function complete(text: string): boolean {
  const end = text.indexOf("\r\n\r\n");
  if (end < 0) return false;
  const m = /\r\ncontent-length:\s*(\d+)/i.exec(text.slice(0, end));
  return text.length - end - 4 >= Number(m?.[1] ?? 0);
}

function connectOne(): Promise<void> {
  return new Promise((resolve) => {
    Bun.connect<Client>({
      hostname, port, data: { got: "", done: false },
      socket: {
        open(s) { held.push(s); s.write(request); },
        data(s, chunk) {
          if (s.data.done) return;
          s.data.got += chunk.toString("latin1");
          if (complete(s.data.got)) {
            s.data.done = true;
            s.data.got = "";
            answered++;
            resolve();
          }
        },
        close(s) { if (!s.data.done) { failed++; resolve(); } },
        connectError() { failed++; resolve(); },
        error() {},
      },
    }).catch(() => { failed++; resolve(); });
  });
}

// In batches, so the proxy sees a burst of bounded size rather than N connects at once.
const BATCH = 100;
for (let n = 0; n < total; n += BATCH) {
  const batch: Promise<void>[] = [];
  for (let k = n; k < Math.min(total, n + BATCH); k++) batch.push(connectOne());
  await Promise.all(batch);
}
console.log(`HELD ${answered} FAILED ${failed}`);
setInterval(() => {}, 1 << 30);
