/**
 * bench/results/chart.svg, written by hand (no dependencies): grouped bars per scenario, one bar per
 * system. Panel 1: throughput relative to HAProxy (1 thread); panel 2: p99 latency (log scale);
 * panel 3: idle memory per connection.
 * @module
 */
import { REF_HAPROXY, type Results } from "./stats.ts";

const W = 980;
const LEFT = 70;
const RIGHT = 20;
const PANEL_H = 230;

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

export function systemColor(id: string, index: number): string {
  if (id === "direct") return "#8c8c8c";
  const palettes: Record<string, string[]> = {
    switchyard: ["#1f6fb4", "#17a2b8", "#2ca02c", "#0b3d91"],
    haproxy: ["#d62728", "#f08080", "#a01010"],
    nginx: ["#9467bd", "#c5b0d5"],
  };
  const kind = id.split(/[/-]/)[0]!;
  const p = palettes[kind] ?? ["#444444"];
  return p[index % p.length]!;
}

interface Bar { system: string; value: number | null; label: string; errors?: number }
interface Group { label: string; bars: Bar[] }

function panel(y0: number, title: string, groups: Group[], colors: Map<string, string>, log: boolean, ref: number | null): string {
  const top = y0 + 34;
  const h = PANEL_H - 70;
  const bottom = top + h;
  const vals = groups.flatMap((g) => g.bars.map((b) => b.value ?? 0)).filter((v) => v > 0);
  const out: string[] = [`<text x="${LEFT}" y="${y0 + 18}" class="title">${esc(title)}</text>`];
  if (vals.length === 0) return out.concat(`<text x="${LEFT}" y="${top + 20}">no data</text>`).join("\n");
  let lo = 0;
  let hi = Math.max(...vals, ref ?? 0) * 1.15;
  if (log) { lo = Math.pow(10, Math.floor(Math.log10(Math.min(...vals) / 2))); hi = Math.pow(10, Math.ceil(Math.log10(Math.max(...vals) * 1.5))); }
  const y = (v: number) => log
    ? bottom - ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * h
    : bottom - (v / hi) * h;
  const ticks: number[] = [];
  if (log) for (let t = lo; t <= hi * 1.001; t *= 10) ticks.push(t);
  else { const step = niceStep(hi / 5); for (let t = 0; t <= hi; t += step) ticks.push(t); }
  for (const t of ticks) {
    out.push(`<line x1="${LEFT}" x2="${W - RIGHT}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" class="grid"/>`);
    out.push(`<text x="${LEFT - 6}" y="${(y(t) + 4).toFixed(1)}" class="tick" text-anchor="end">${fmtTick(t)}</text>`);
  }
  if (ref !== null) out.push(`<line x1="${LEFT}" x2="${W - RIGHT}" y1="${y(ref).toFixed(1)}" y2="${y(ref).toFixed(1)}" class="ref"/>`);
  const gw = (W - LEFT - RIGHT) / groups.length;
  groups.forEach((g, gi) => {
    const n = g.bars.length;
    const bw = Math.min(44, (gw - 24) / Math.max(n, 1));
    const x0 = LEFT + gi * gw + (gw - bw * n) / 2;
    g.bars.forEach((b, bi) => {
      const x = x0 + bi * bw;
      if (b.value === null || b.value <= 0) {
        out.push(`<text x="${(x + bw / 2).toFixed(1)}" y="${bottom - 4}" class="val" text-anchor="middle">–</text>`);
        return;
      }
      const yt = y(b.value);
      const flagged = (b.errors ?? 0) > 0;
      const note = flagged ? ` (${b.errors} load errors)` : "";
      out.push(`<rect x="${(x + 2).toFixed(1)}" y="${yt.toFixed(1)}" width="${(bw - 4).toFixed(1)}" height="${(bottom - yt).toFixed(1)}" fill="${colors.get(b.system)}"${flagged ? ' class="err"' : ""}><title>${esc(`${b.system}: ${b.label}${note}`)}</title></rect>`);
      out.push(`<text x="${(x + bw / 2).toFixed(1)}" y="${(yt - 4).toFixed(1)}" class="val" text-anchor="middle">${esc(b.label + (flagged ? " !" : ""))}</text>`);
    });
    out.push(`<text x="${(LEFT + gi * gw + gw / 2).toFixed(1)}" y="${bottom + 18}" class="group" text-anchor="middle">${esc(g.label)}</text>`);
  });
  out.push(`<line x1="${LEFT}" x2="${W - RIGHT}" y1="${bottom}" y2="${bottom}" class="axis"/>`);
  return out.join("\n");
}

function niceStep(raw: number): number {
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

function fmtTick(t: number): string {
  if (t >= 1000) return `${t / 1000}k`;
  return Number(t.toPrecision(3)).toString();
}

export function chartSvg(r: Results): string {
  const systems = r.systems.map((s) => s.id);
  const colors = new Map<string, string>();
  const perKind = new Map<string, number>();
  for (const id of systems) {
    const kind = id.split(/[/-]/)[0]!;
    const i = perKind.get(kind) ?? 0;
    perKind.set(kind, i + 1);
    colors.set(id, systemColor(id, i));
  }
  const med = (sc: string, sys: string) => r.medians.find((m) => m.scenario === sc && m.system === sys);
  const present = (sc: string) => r.scenarios.some((s) => s.id === sc) && r.medians.some((m) => m.scenario === sc);
  const through = ["rr-1k", "redis-get", "bulk", "http", "rate"].filter(present).map((sc) => ({
    label: sc,
    bars: systems.map((s) => { const v = med(sc, s)?.vsHaproxy ?? null; return { system: s, value: v, label: v === null ? "–" : v.toFixed(2), errors: med(sc, s)?.errors }; }),
  }));
  const p99 = ["rr-1k", "redis-get", "http", "rate", "hold"].filter(present).map((sc) => ({
    label: sc === "hold" ? "hold (connect → verified)" : sc,
    bars: systems.map((s) => { const v = med(sc, s)?.p99Us ?? null; return { system: s, value: v === null ? null : v / 1000, label: v === null ? "–" : fmtMs(v / 1000), errors: med(sc, s)?.errors }; }),
  }));
  const mem = present("hold") ? [{
    label: "hold: bytes of RSS per idle proxied connection",
    bars: systems.filter((s) => s !== "direct").map((s) => { const v = med("hold", s)?.value ?? null; return { system: s, value: v, label: v === null ? "–" : `${Math.round(v)}`, errors: med("hold", s)?.errors }; }),
  }] : [];
  const legendH = 30;
  const heading = `switchyard bench ${r.label} — ${r.createdAt} — medians of ${r.settings.rounds} round(s)`;
  let y = legendH + 26;
  const parts = [
    panel(y, `Throughput relative to ${REF_HAPROXY} (= 1.0, dashed), higher is better`, through, colors, false, 1),
  ];
  y += PANEL_H;
  parts.push(panel(y, "p99 latency in ms (log scale), lower is better", p99, colors, true, null));
  y += PANEL_H;
  if (mem.length) { parts.push(panel(y, "Idle memory per connection in bytes (RSS delta / held), lower is better", mem, colors, false, null)); y += PANEL_H; }
  parts.push(`<text x="${LEFT}" y="${y}" class="foot">"!" and a dashed outline: the load generator counted errors in that system's runs (see the Summary table). Values are medians; ratios from this one run.</text>`);
  y += 10;
  let lx = LEFT;
  const legend = systems.map((s) => {
    const x = lx;
    lx += 30 + s.length * 7;
    return `<rect x="${x}" y="${legendH}" width="12" height="12" fill="${colors.get(s)}"/><text x="${x + 17}" y="${legendH + 11}" class="legend">${esc(s)}</text>`;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y + 10}" viewBox="0 0 ${W} ${y + 10}" font-family="sans-serif">
<style>
  .title { font-size: 14px; font-weight: bold; fill: #222; }
  .tick, .val { font-size: 10px; fill: #333; }
  .group { font-size: 12px; fill: #222; }
  .legend { font-size: 12px; fill: #222; }
  .grid { stroke: #e5e5e5; }
  .axis { stroke: #555; }
  .ref { stroke: #d62728; stroke-dasharray: 5 4; }
  .err { stroke: #000; stroke-width: 1.5; stroke-dasharray: 3 2; }
  .foot { font-size: 11px; fill: #555; }
</style>
<rect width="100%" height="100%" fill="white"/>
<text x="${LEFT}" y="18" class="title">${esc(heading)}</text>
${legend.join("\n")}
${parts.join("\n")}
</svg>
`;
}

function fmtMs(ms: number): string {
  return ms >= 10 ? ms.toFixed(0) : ms >= 1 ? ms.toFixed(1) : ms.toFixed(2);
}
