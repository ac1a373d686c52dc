//! loadgen: event-driven load generator (rr, rate, hold, bulk) and the identical backend (serve) used
//! for every proxy in the benchmark suite. This file parses the command line and dispatches.
const std = @import("std");
const net = @import("net.zig");
const args = @import("args.zig");
const client = @import("client.zig");
const server = @import("server.zig");
const relay = @import("relay.zig");

pub const usage =
    \\usage:
    \\  loadgen rr    --target HOST:PORT [--connections 50] [--size 1024] [--pipeline 1] [common]
    \\  loadgen rate  --target HOST:PORT [--connections 50] [--size 1024] [--rate-limit 0] [common]
    \\  loadgen hold  --target HOST:PORT [--connections 1000] [--size 16] [--duration 10] [--timeout-ms 5000] [--json] [--threads N]
    \\  loadgen bulk  --target HOST:PORT [--connections 1] [--size 65536] [--direction up|down] [common]
    \\  loadgen serve --listen HOST:PORT [--mode echo|sink|source] [--threads N]
    \\  loadgen relay --listen HOST:PORT --target HOST:PORT [--pipe-size 1048576]
    \\common: [--duration 10] [--warmup 1] [--timeout-ms 5000] [--threads N (default: CPUs)] [--json]
    \\HOST:PORT is numeric: 127.0.0.1:9000 or [::1]:9000. Options also accept --name=value.
    \\See bench/loadgen/README.md.
    \\
;

pub fn main(init: std.process.Init.Minimal) u8 {
    var argv_buf: [128][]const u8 = undefined;
    var argc: usize = 0;
    var it = std.process.Args.Iterator.init(init.args);
    _ = it.skip(); // program name
    while (it.next()) |a| {
        if (argc == argv_buf.len) {
            net.print(2, "loadgen: too many arguments\n", .{});
            return 2;
        }
        argv_buf[argc] = a;
        argc += 1;
    }

    var diag: args.Diag = .{};
    const cfg = args.parse(argv_buf[0..argc], &diag) catch |err| switch (err) {
        error.Help => {
            net.writeAll(1, usage);
            return 0;
        },
        error.Usage => {
            net.print(2, "loadgen: {s}\n", .{diag.msg});
            net.writeAll(2, usage);
            return 2;
        },
    };

    net.installSignals();
    const nofile = net.raiseNofile();
    return switch (cfg.command) {
        .serve => server.run(&cfg),
        .relay => relay.run(&cfg),
        else => client.run(&cfg, nofile),
    };
}

test {
    _ = @import("histogram.zig");
    _ = @import("args.zig");
    _ = @import("net.zig");
    _ = @import("stats.zig");
    // Analyze the I/O code too, so `zig build test` catches compile errors there.
    std.testing.refAllDecls(@import("client.zig"));
    std.testing.refAllDecls(@import("server.zig"));
    std.testing.refAllDecls(@import("relay.zig"));
    std.testing.refAllDecls(@import("report.zig"));
}
