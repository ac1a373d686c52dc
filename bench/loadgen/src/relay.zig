//! `loadgen relay`: the simplest kernel-only TCP relay, a yardstick for the proxies' bulk figures.
//!
//! Per accepted connection: a blocking connect to the target, then one thread per direction moving
//! bytes socket -> pipe -> socket with blocking splice(2), and shutdown(SHUT_WR) of the other side at
//! EOF. No epoll, no user-space copy, no timers, no limits or error handling beyond closing: what it
//! costs is what the kernel costs (the second TCP hop and splice itself). The gap between it and
//! `direct` is the ceiling of any splice-based proxy on the host; the gap between it and a proxy is
//! that proxy's own overhead. Not a proxy: a thread pair per connection, made for a few bulk streams.
const std = @import("std");
const linux = std.os.linux;
const net = @import("net.zig");
const args = @import("args.zig");

const SPLICE_F_MOVE: usize = 1;

/// One connection: both sockets, closed by the second of its two direction threads to finish.
const Link = struct {
    client: i32,
    upstream: i32,
    pipe_size: u32,
    left: std.atomic.Value(u8) = .init(2),

    fn done(l: *Link) void {
        if (l.left.fetchSub(1, .acq_rel) != 1) return;
        net.close(l.client);
        net.close(l.upstream);
        std.heap.smp_allocator.destroy(l);
    }
};

fn splice(from: i32, to: i32, len: usize) usize {
    return linux.syscall6(.splice, @as(usize, @bitCast(@as(isize, from))), 0, @as(usize, @bitCast(@as(isize, to))), 0, len, SPLICE_F_MOVE);
}

/// Moves `from` -> `to` until EOF or an error, then passes the EOF on.
fn pump(l: *Link, from: i32, to: i32) void {
    defer l.done();
    var p: [2]i32 = undefined;
    if (net.errno(linux.pipe2(&p, .{ .CLOEXEC = true })) != .SUCCESS) return;
    defer net.close(p[0]);
    defer net.close(p[1]);
    // A refused size keeps the default pipe (per-user pipe limits); the splice length follows it.
    const got = linux.fcntl(p[1], linux.F.SETPIPE_SZ, l.pipe_size);
    const cap: usize = if (net.errno(got) == .SUCCESS) got else 65536;
    while (true) {
        const n = splice(from, p[1], cap);
        if (net.errno(n) == .INTR) continue;
        if (net.errno(n) != .SUCCESS or n == 0) break;
        var left = n;
        while (left > 0) {
            const m = splice(p[0], to, left);
            if (net.errno(m) == .INTR) continue;
            if (net.errno(m) != .SUCCESS or m == 0) return;
            left -= m;
        }
    }
    _ = linux.shutdown(to, linux.SHUT.WR);
}

fn blockingSocket(family: u32) ?i32 {
    const rc = linux.socket(family, linux.SOCK.STREAM | linux.SOCK.CLOEXEC, 0);
    return if (net.errno(rc) == .SUCCESS) @intCast(rc) else null;
}

fn serve(cfg: *const args.Config, client: i32) void {
    const up = blockingSocket(cfg.target.family()) orelse return net.close(client);
    if (net.errno(linux.connect(up, cfg.target.sockaddr(), cfg.target.len())) != .SUCCESS) {
        net.close(up);
        return net.close(client);
    }
    net.setNoDelay(client);
    net.setNoDelay(up);
    const l = std.heap.smp_allocator.create(Link) catch {
        net.close(up);
        return net.close(client);
    };
    l.* = .{ .client = client, .upstream = up, .pipe_size = cfg.pipe_size };
    const ends = [2][2]i32{ .{ client, up }, .{ up, client } };
    for (ends) |e| {
        const t = std.Thread.spawn(.{ .stack_size = 64 << 10 }, pump, .{ l, e[0], e[1] }) catch {
            // This direction never runs: pass its EOF on and count it as done.
            _ = linux.shutdown(e[1], linux.SHUT.WR);
            l.done();
            continue;
        };
        t.detach();
    }
}

pub fn run(cfg: *const args.Config) u8 {
    var addr = cfg.listen;
    const fd = net.listenOrSay(&addr, 128, "loadgen relay") orelse return 1;
    addr = net.localAddress(fd) orelse addr;
    // Blocking accept: SIGINT/SIGTERM (installed without SA_RESTART) interrupt it with EINTR.
    _ = linux.fcntl(fd, linux.F.SETFL, 0);
    var ab: [64]u8 = undefined;
    net.print(1, "LISTENING {s}\n", .{addr.format(&ab)});
    var accepted: u64 = 0;
    while (!net.signalled.load(.acquire)) {
        const rc = linux.accept4(fd, null, null, linux.SOCK.CLOEXEC);
        switch (net.errno(rc)) {
            .SUCCESS => {},
            .INTR, .CONNABORTED => continue,
            // Out of descriptors or memory: do not spin on a listener that stays readable.
            else => {
                net.sleepNs(10 * std.time.ns_per_ms);
                continue;
            },
        }
        accepted += 1;
        serve(cfg, @intCast(rc));
    }
    net.print(2, "loadgen relay: stopped; {d} connections accepted\n", .{accepted});
    return 0;
}
