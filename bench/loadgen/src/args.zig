//! Command line: `loadgen MODE [options]`. Pure (no I/O) so it can be unit-tested.
const std = @import("std");
const net = @import("net.zig");

pub const Command = enum { rr, rate, hold, bulk, serve, relay };
pub const ServeMode = enum { echo, sink, source };
pub const Direction = enum { up, down };

pub const Config = struct {
    command: Command = .rr,
    target: net.Address = .{ .v4 = .{ .port = 0, .addr = 0 } },
    target_text: []const u8 = "",
    listen: net.Address = .{ .v4 = .{ .port = 0, .addr = 0 } },
    serve_mode: ServeMode = .echo,
    /// 0 = one per CPU.
    threads: u32 = 0,
    connections: u32 = 0,
    /// rr/rate/hold: request size; bulk: bytes per write()/read() call.
    size: u32 = 0,
    pipeline: u32 = 1,
    /// hold: 0 means "until SIGINT/SIGTERM".
    duration_s: f64 = 10,
    warmup_s: f64 = 1,
    json: bool = false,
    timeout_ms: u32 = 5000,
    /// rate: connection attempts per second over all threads; 0 = as fast as possible.
    rate_limit: u32 = 0,
    direction: Direction = .up,
    /// relay: bytes per pipe (F_SETPIPE_SZ; the kernel caps it at /proc/sys/fs/pipe-max-size).
    pipe_size: u32 = 1 << 20,
};

pub const default_connections = std.enums.EnumArray(Command, u32).init(.{ .rr = 50, .rate = 50, .hold = 1000, .bulk = 1, .serve = 0, .relay = 0 });
pub const default_size = std.enums.EnumArray(Command, u32).init(.{ .rr = 1024, .rate = 1024, .hold = 16, .bulk = 65536, .serve = 0, .relay = 0 });

/// File descriptors kept back from RLIMIT_NOFILE for epoll, listeners, stdio and slack.
pub const fd_reserve: u64 = 1000;

/// Most connections one process may hold with an open-file limit of `nofile`
/// (20000 -> 19000; beyond that, run several loadgen processes).
pub fn maxConnections(nofile: u64) u64 {
    return nofile -| fd_reserve;
}

pub const Diag = struct {
    buf: [256]u8 = undefined,
    msg: []const u8 = "",

    fn fail(d: *Diag, comptime fmt: []const u8, args: anytype) error{Usage} {
        d.msg = std.fmt.bufPrint(&d.buf, fmt, args) catch "invalid arguments";
        return error.Usage;
    }
};

pub const ParseError = error{ Usage, Help };

const Opt = enum {
    target,
    listen,
    mode,
    threads,
    connections,
    size,
    pipeline,
    duration,
    warmup,
    json,
    @"timeout-ms",
    @"rate-limit",
    direction,
    @"pipe-size",
    help,
};

/// Which commands accept an option: a typo or an option of another mode is an error, not a silent no-op.
fn applies(opt: Opt, cmd: Command) bool {
    return switch (opt) {
        .help => true,
        .threads => cmd != .relay,
        .listen => cmd == .serve or cmd == .relay,
        .target => cmd != .serve,
        .mode => cmd == .serve,
        .@"pipe-size" => cmd == .relay,
        .pipeline => cmd == .rr,
        .@"rate-limit" => cmd == .rate,
        .direction => cmd == .bulk,
        .warmup => cmd != .serve and cmd != .hold and cmd != .relay,
        else => cmd != .serve and cmd != .relay,
    };
}

pub fn parse(argv: []const []const u8, d: *Diag) ParseError!Config {
    if (argv.len == 0) return d.fail("missing MODE (rr, rate, hold, bulk, serve or relay)", .{});
    if (isHelp(argv[0])) return error.Help;
    var c: Config = .{};
    c.command = std.meta.stringToEnum(Command, argv[0]) orelse
        return d.fail("unknown mode '{s}' (rr, rate, hold, bulk, serve or relay)", .{argv[0]});

    var have_target = false;
    var have_listen = false;
    var i: usize = 1;
    while (i < argv.len) : (i += 1) {
        const arg = argv[i];
        if (isHelp(arg)) return error.Help;
        if (!std.mem.startsWith(u8, arg, "--")) return d.fail("unexpected argument '{s}'", .{arg});
        // Both "--opt value" and "--opt=value".
        var name = arg[2..];
        var inline_value: ?[]const u8 = null;
        if (std.mem.indexOfScalar(u8, name, '=')) |eq| {
            inline_value = name[eq + 1 ..];
            name = name[0..eq];
        }
        const opt = std.meta.stringToEnum(Opt, name) orelse return d.fail("unknown option '--{s}'", .{name});
        if (!applies(opt, c.command)) return d.fail("--{s} does not apply to '{s}'", .{ name, @tagName(c.command) });
        if (opt == .json) {
            if (inline_value != null) return d.fail("--json takes no value", .{});
            c.json = true;
            continue;
        }
        const value = inline_value orelse blk: {
            i += 1;
            if (i >= argv.len) return d.fail("--{s} needs a value", .{name});
            break :blk argv[i];
        };
        switch (opt) {
            .target => {
                c.target = net.Address.parse(value) catch return d.fail("bad --target '{s}' (want 127.0.0.1:PORT or [::1]:PORT)", .{value});
                c.target_text = value;
                have_target = true;
            },
            .listen => {
                c.listen = net.Address.parse(value) catch return d.fail("bad --listen '{s}' (want 127.0.0.1:PORT or [::1]:PORT)", .{value});
                have_listen = true;
            },
            .mode => c.serve_mode = std.meta.stringToEnum(ServeMode, value) orelse return d.fail("bad --mode '{s}' (echo, sink or source)", .{value}),
            .direction => c.direction = std.meta.stringToEnum(Direction, value) orelse return d.fail("bad --direction '{s}' (up or down)", .{value}),
            .threads => c.threads = try int(d, name, value, 1, 256),
            .connections => c.connections = try int(d, name, value, 1, 10_000_000),
            .size => c.size = try int(d, name, value, 1, 64 << 20),
            .pipeline => c.pipeline = try int(d, name, value, 1, 4096),
            .@"timeout-ms" => c.timeout_ms = try int(d, name, value, 1, 3_600_000),
            .@"rate-limit" => c.rate_limit = try int(d, name, value, 0, 100_000_000),
            .@"pipe-size" => c.pipe_size = try int(d, name, value, 4096, 1 << 30),
            .duration => c.duration_s = try seconds(d, name, value),
            .warmup => c.warmup_s = try seconds(d, name, value),
            .json, .help => unreachable,
        }
    }

    if (c.command == .serve or c.command == .relay) {
        if (!have_listen) return d.fail("{s} needs --listen HOST:PORT", .{@tagName(c.command)});
        if (c.command == .relay and !have_target) return d.fail("relay needs --target HOST:PORT", .{});
        return c;
    }
    if (!have_target) return d.fail("{s} needs --target HOST:PORT", .{@tagName(c.command)});
    if (c.duration_s == 0 and c.command != .hold) return d.fail("--duration must be > 0", .{});
    if (c.command == .hold) c.warmup_s = 0;
    if (c.connections == 0) c.connections = default_connections.get(c.command);
    if (c.size == 0) c.size = default_size.get(c.command);
    return c;
}

fn isHelp(a: []const u8) bool {
    return std.mem.eql(u8, a, "-h") or std.mem.eql(u8, a, "--help") or std.mem.eql(u8, a, "help");
}

fn int(d: *Diag, name: []const u8, v: []const u8, min: u32, max: u32) error{Usage}!u32 {
    const n = std.fmt.parseInt(u32, v, 10) catch return d.fail("--{s}: '{s}' is not a whole number", .{ name, v });
    if (n < min or n > max) return d.fail("--{s}: {d} is outside {d}..{d}", .{ name, n, min, max });
    return n;
}

fn seconds(d: *Diag, name: []const u8, v: []const u8) error{Usage}!f64 {
    const f = std.fmt.parseFloat(f64, v) catch return d.fail("--{s}: '{s}' is not a number of seconds", .{ name, v });
    if (!std.math.isFinite(f) or f < 0 or f > 86_400) return d.fail("--{s}: {s} is outside 0..86400 seconds", .{ name, v });
    return f;
}

// ---------------------------------------------------------------- tests

const testing = std.testing;

fn parseOk(argv: []const []const u8) !Config {
    var d: Diag = .{};
    return parse(argv, &d) catch |e| {
        std.debug.print("unexpected parse failure: {s}\n", .{d.msg});
        return e;
    };
}

fn expectUsage(argv: []const []const u8, needle: []const u8) !void {
    var d: Diag = .{};
    try testing.expectError(error.Usage, parse(argv, &d));
    if (std.mem.indexOf(u8, d.msg, needle) == null) {
        std.debug.print("message '{s}' lacks '{s}'\n", .{ d.msg, needle });
        return error.TestUnexpectedResult;
    }
}

test "rr defaults" {
    const c = try parseOk(&.{ "rr", "--target", "127.0.0.1:9000" });
    try testing.expectEqual(Command.rr, c.command);
    try testing.expectEqual(@as(u32, 50), c.connections);
    try testing.expectEqual(@as(u32, 1024), c.size);
    try testing.expectEqual(@as(u32, 1), c.pipeline);
    try testing.expectEqual(@as(f64, 10), c.duration_s);
    try testing.expectEqual(@as(f64, 1), c.warmup_s);
    try testing.expectEqual(@as(u32, 5000), c.timeout_ms);
    try testing.expectEqual(@as(u16, 9000), c.target.port());
    try testing.expect(!c.json);
}

test "options in both spellings" {
    const c = try parseOk(&.{ "rr", "--target=[::1]:8443", "--connections", "200", "--size=64", "--pipeline", "8", "--duration", "2.5", "--warmup=0", "--json", "--threads", "3", "--timeout-ms", "250" });
    try testing.expectEqual(@as(u32, 200), c.connections);
    try testing.expectEqual(@as(u32, 64), c.size);
    try testing.expectEqual(@as(u32, 8), c.pipeline);
    try testing.expectEqual(@as(f64, 2.5), c.duration_s);
    try testing.expectEqual(@as(f64, 0), c.warmup_s);
    try testing.expectEqual(@as(u32, 3), c.threads);
    try testing.expectEqual(@as(u32, 250), c.timeout_ms);
    try testing.expect(c.json);
    try testing.expectEqual(@as(u32, std.os.linux.AF.INET6), c.target.family());
}

test "mode specific defaults and options" {
    const h = try parseOk(&.{ "hold", "--target", "127.0.0.1:1", "--duration", "0" });
    try testing.expectEqual(@as(u32, 1000), h.connections);
    try testing.expectEqual(@as(u32, 16), h.size);
    try testing.expectEqual(@as(f64, 0), h.duration_s);
    const b = try parseOk(&.{ "bulk", "--target", "127.0.0.1:1", "--direction", "down" });
    try testing.expectEqual(Direction.down, b.direction);
    try testing.expectEqual(@as(u32, 1), b.connections);
    const r = try parseOk(&.{ "rate", "--target", "127.0.0.1:1", "--rate-limit", "5000" });
    try testing.expectEqual(@as(u32, 5000), r.rate_limit);
    const s = try parseOk(&.{ "serve", "--listen", "127.0.0.1:0", "--mode", "source", "--threads", "1" });
    try testing.expectEqual(ServeMode.source, s.serve_mode);
    try testing.expectEqual(@as(u16, 0), s.listen.port());
    const rl = try parseOk(&.{ "relay", "--listen", "127.0.0.1:0", "--target", "127.0.0.1:9", "--pipe-size", "262144" });
    try testing.expectEqual(@as(u32, 262144), rl.pipe_size);
    try testing.expectEqual(@as(u16, 9), rl.target.port());
}

test "usage errors carry a message" {
    try expectUsage(&.{}, "missing MODE");
    try expectUsage(&.{"flood"}, "unknown mode");
    try expectUsage(&.{"rr"}, "needs --target");
    try expectUsage(&.{ "rr", "--target", "localhost:80" }, "bad --target");
    try expectUsage(&.{ "rr", "--target", "127.0.0.1:1", "--connections" }, "needs a value");
    try expectUsage(&.{ "rr", "--target", "127.0.0.1:1", "--connections", "x" }, "not a whole number");
    try expectUsage(&.{ "rr", "--target", "127.0.0.1:1", "--connections", "0" }, "outside");
    try expectUsage(&.{ "rr", "--target", "127.0.0.1:1", "--bogus", "1" }, "unknown option");
    try expectUsage(&.{ "rate", "--target", "127.0.0.1:1", "--pipeline", "2" }, "does not apply");
    try expectUsage(&.{ "serve", "--listen", "127.0.0.1:0", "--target", "127.0.0.1:1" }, "does not apply");
    try expectUsage(&.{ "serve", "--mode", "echo" }, "needs --listen");
    try expectUsage(&.{ "relay", "--listen", "127.0.0.1:0" }, "needs --target");
    try expectUsage(&.{ "relay", "--listen", "127.0.0.1:0", "--target", "127.0.0.1:1", "--duration", "1" }, "does not apply");
    try expectUsage(&.{ "bulk", "--target", "127.0.0.1:1", "--pipe-size", "65536" }, "does not apply");
    try expectUsage(&.{ "serve", "--listen", "127.0.0.1:0", "--mode", "mirror" }, "bad --mode");
    try expectUsage(&.{ "rr", "--target", "127.0.0.1:1", "--duration", "0" }, "> 0");
    try expectUsage(&.{ "rr", "--target", "127.0.0.1:1", "--duration", "-1" }, "outside");
    try expectUsage(&.{ "rr", "--target", "127.0.0.1:1", "stray" }, "unexpected argument");
    try expectUsage(&.{ "rr", "--target", "127.0.0.1:1", "--json=1" }, "takes no value");
    var d: Diag = .{};
    try testing.expectError(error.Help, parse(&.{ "rr", "--help" }, &d));
}

test "connection ceiling follows the open-file limit" {
    try testing.expectEqual(@as(u64, 19000), maxConnections(20000));
    try testing.expectEqual(@as(u64, 0), maxConnections(500));
}
