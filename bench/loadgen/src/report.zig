//! Final report: a human table, or one JSON object on one line with --json.
const std = @import("std");
const net = @import("net.zig");
const args = @import("args.zig");
const stats_mod = @import("stats.zig");
const Stats = stats_mod.Stats;

pub const Result = struct {
    cfg: *const args.Config,
    threads: u32,
    /// Measured window: after warmup until the stop (hold: from HOLDING until the stop).
    duration_s: f64,
    /// hold: start until every connection was established and verified.
    setup_s: f64,
    stats: *const Stats,

    fn perSecond(r: *const Result, n: u64) f64 {
        // hold measures how many connections stay up, not a rate.
        if (r.duration_s <= 0 or r.cfg.command == .hold) return 0;
        return @as(f64, @floatFromInt(n)) / r.duration_s;
    }

    /// The throughput figure of the mode in bytes: responses read (rr, rate), or the stream direction (bulk).
    fn bytesPerSecond(r: *const Result) f64 {
        const s = r.stats;
        return switch (r.cfg.command) {
            .bulk => r.perSecond(if (r.cfg.direction == .up) s.bytes_sent else s.bytes_recv),
            else => r.perSecond(s.bytes_recv),
        };
    }
};

/// Fixed-buffer text builder: formatting never allocates, output is written with one write().
const Out = struct {
    buf: []u8,
    n: usize = 0,

    fn p(o: *Out, comptime fmt: []const u8, a: anytype) void {
        const s = std.fmt.bufPrint(o.buf[o.n..], fmt, a) catch return;
        o.n += s.len;
    }

    fn text(o: *Out) []const u8 {
        return o.buf[0..o.n];
    }
};

fn us(ns: u64) f64 {
    return @as(f64, @floatFromInt(ns)) / 1000.0;
}

pub fn print(r: *const Result) void {
    var buf: [4096]u8 = undefined;
    var o: Out = .{ .buf = &buf };
    if (r.cfg.json) json(r, &o) else table(r, &o);
    net.writeAll(1, o.text());
}

fn json(r: *const Result, o: *Out) void {
    const c = r.cfg;
    const s = r.stats;
    o.p("{{\"mode\":\"{s}\",\"target\":\"{s}\",\"threads\":{d},\"connections\":{d},\"size\":{d}", .{ @tagName(c.command), c.target_text, r.threads, c.connections, c.size });
    o.p(",\"pipeline\":{d},\"direction\":{s},\"rate_limit\":{d},\"warmup_s\":{d:.3},\"duration_s\":{d:.6}", .{
        c.pipeline, if (c.command != .bulk) "null" else if (c.direction == .up) "\"up\"" else "\"down\"", c.rate_limit, c.warmup_s, r.duration_s,
    });
    o.p(",\"requests\":{d},\"rps\":{d:.1},\"connections_per_s\":{d:.1}", .{ s.requests, r.perSecond(s.requests), if (c.command == .rate) r.perSecond(s.requests) else 0 });
    o.p(",\"bytes_sent\":{d},\"bytes_received\":{d},\"bytes_per_s\":{d:.1}", .{ s.bytes_sent, s.bytes_recv, r.bytesPerSecond() });
    o.p(",\"connections_opened\":{d},\"held\":{d},\"dropped\":{d},\"setup_s\":{d:.3}", .{ s.conns_opened, s.held, s.dropped, r.setup_s });
    const h = &s.hist;
    if (h.total == 0) {
        o.p(",\"latency_us\":null", .{});
    } else {
        o.p(",\"latency_us\":{{\"samples\":{d},\"min\":{d:.1},\"mean\":{d:.1},\"p50\":{d:.1},\"p90\":{d:.1},\"p99\":{d:.1},\"p999\":{d:.1},\"max\":{d:.1}}}", .{
            h.total,              us(h.min),            h.mean() / 1000.0,      us(h.percentile(50)),
            us(h.percentile(90)), us(h.percentile(99)), us(h.percentile(99.9)), us(h.max),
        });
    }
    o.p(",\"errors\":{{", .{});
    inline for (@typeInfo(stats_mod.ErrorKind).@"enum".field_names, 0..) |name, k| {
        o.p("{s}\"{s}\":{d}", .{ if (k == 0) "" else ",", name, s.errors[k] });
    }
    o.p("}},\"errors_total\":{d}", .{s.errorTotal()});
    if (s.other_errno != 0) {
        o.p(",\"error_other_last\":\"{s}\"", .{net.errName(@fromBackingInt(@intCast(s.other_errno)))});
    } else if (s.other_unexpected_data > 0) {
        o.p(",\"error_other_last\":\"unexpected_data\"", .{});
    } else {
        o.p(",\"error_other_last\":null", .{});
    }
    o.p("}}\n", .{});
}

fn table(r: *const Result, o: *Out) void {
    const c = r.cfg;
    const s = r.stats;
    o.p("loadgen {s}  target {s}  threads {d}  connections {d}", .{ @tagName(c.command), c.target_text, r.threads, c.connections });
    switch (c.command) {
        .rr => o.p("  size {d} B  pipeline {d}\n", .{ c.size, c.pipeline }),
        .rate => if (c.rate_limit > 0) o.p("  size {d} B  rate-limit {d}/s\n", .{ c.size, c.rate_limit }) else o.p("  size {d} B\n", .{c.size}),
        .hold => o.p("  size {d} B\n", .{c.size}),
        .bulk => o.p("  direction {s}  chunk {d} B\n", .{ @tagName(c.direction), c.size }),
        .serve, .relay => {},
    }
    if (c.command == .hold) {
        o.p("  setup        {d:.3} s to establish and verify\n", .{r.setup_s});
        o.p("  held         {d:.3} s\n", .{r.duration_s});
        o.p("  connections  {d} verified, {d} dropped while held, {d} attempts\n", .{ s.held, s.dropped, s.conns_opened });
    } else {
        o.p("  duration     {d:.3} s measured (warmup {d:.1} s excluded)\n", .{ r.duration_s, c.warmup_s });
    }
    switch (c.command) {
        .rr => o.p("  requests     {d}  ({d:.1} req/s)\n", .{ s.requests, r.perSecond(s.requests) }),
        .rate => o.p("  connections  {d} completed  ({d:.1} conn/s), {d} attempts in all\n", .{ s.requests, r.perSecond(s.requests), s.conns_opened }),
        else => {},
    }
    if (c.command != .hold) {
        const bps = r.bytesPerSecond();
        o.p("  bytes        {d} sent, {d} received  ({d:.2} MB/s, {d:.3} Gbit/s)\n", .{ s.bytes_sent, s.bytes_recv, bps / 1e6, bps * 8 / 1e9 });
    }
    const h = &s.hist;
    if (h.total > 0) {
        o.p("  latency us   p50 {d:.1}  p90 {d:.1}  p99 {d:.1}  p99.9 {d:.1}  max {d:.1}  (mean {d:.1}, {d} samples)\n", .{
            us(h.percentile(50)), us(h.percentile(90)), us(h.percentile(99)), us(h.percentile(99.9)), us(h.max), h.mean() / 1000.0, h.total,
        });
    }
    if (s.errorTotal() == 0) {
        o.p("  errors       none\n", .{});
    } else {
        o.p("  errors      ", .{});
        inline for (@typeInfo(stats_mod.ErrorKind).@"enum".field_names, 0..) |name, k| {
            if (s.errors[k] > 0) o.p(" {s} {d}", .{ name, s.errors[k] });
        }
        if (s.other_errno != 0) o.p("  (last other: {s})", .{net.errName(@fromBackingInt(@intCast(s.other_errno)))});
        if (s.other_unexpected_data > 0) o.p("  ({d} unexpected data)", .{s.other_unexpected_data});
        o.p("\n", .{});
    }
}
