//! `loadgen serve`: the backend every proxy under test talks to, so all of them face the same peer.
//!
//!   echo    writes back every byte it reads
//!   sink    reads and discards
//!   source  writes an endless stream (and discards anything it reads)
//!
//! One thread per core, each with its own SO_REUSEPORT listening socket and epoll loop; the kernel
//! spreads incoming connections over the sockets, so threads share nothing.
const std = @import("std");
const linux = std.os.linux;
const net = @import("net.zig");
const args = @import("args.zig");
const EPOLL = net.EPOLL;

const scratch_len = 256 * 1024;
/// Writes per readiness event for source, reads for sink: keeps one busy connection from starving others.
const ops_per_event = 4;
/// accept4() calls per listener wake-up before the loop serves existing connections again.
const accepts_per_event = 256;
/// Out of descriptors: stop accepting for this long instead of spinning on a listener that stays readable.
const accept_pause_ns = 100 * std.time.ns_per_ms;
const listen_data: u64 = 0;

const Conn = struct {
    fd: i32,
    /// echo: bytes read but not yet written back (heap, only while the peer is slow to read).
    pend: []u8 = &.{},
    pend_off: usize = 0,
    interest: u32,
    prev: ?*Conn = null,
    next: ?*Conn = null,
};

const Worker = struct {
    mode: args.ServeMode,
    listen_fd: i32,
    ep: net.Epoll,
    scratch: []u8,
    /// All open connections, so they can be closed on exit.
    head: ?*Conn = null,
    open: u64 = 0,
    accepted: u64 = 0,
    bytes_in: u64 = 0,
    bytes_out: u64 = 0,
    paused_until: u64 = 0,
    warned_emfile: bool = false,

    fn run(w: *Worker) void {
        var events: [256]net.Event = undefined;
        while (!net.signalled.load(.acquire)) {
            const n = w.ep.wait(&events, 100);
            for (events[0..n]) |ev| {
                if (ev.data.u64 == listen_data) {
                    w.acceptAll();
                } else {
                    w.onConn(@ptrFromInt(ev.data.u64), ev.events);
                }
            }
            if (w.paused_until != 0 and net.nowNs() >= w.paused_until) {
                w.paused_until = 0;
                _ = w.ep.modify(w.listen_fd, EPOLL.IN, listen_data);
            }
        }
        while (w.head) |c| w.closeConn(c);
        net.close(w.listen_fd);
        w.ep.deinit();
    }

    fn acceptAll(w: *Worker) void {
        var k: usize = 0;
        while (k < accepts_per_event) : (k += 1) {
            const rc = linux.accept4(w.listen_fd, null, null, linux.SOCK.NONBLOCK | linux.SOCK.CLOEXEC);
            switch (net.errno(rc)) {
                .SUCCESS => {},
                .AGAIN => return,
                .INTR, .CONNABORTED => continue,
                .MFILE, .NFILE, .NOBUFS, .NOMEM => {
                    if (!w.warned_emfile) {
                        w.warned_emfile = true;
                        net.print(2, "loadgen serve: accept: {s} after {d} open connections; pausing accepts (run more serve processes on the same port)\n", .{ net.errName(net.errno(rc)), w.open });
                    }
                    w.paused_until = net.nowNs() + accept_pause_ns;
                    _ = w.ep.modify(w.listen_fd, 0, listen_data);
                    return;
                },
                else => return,
            }
            const fd: i32 = @intCast(rc);
            net.setNoDelay(fd);
            const c = std.heap.smp_allocator.create(Conn) catch {
                net.close(fd);
                continue;
            };
            c.* = .{
                .fd = fd,
                .interest = switch (w.mode) {
                    .echo, .sink => EPOLL.IN | EPOLL.RDHUP,
                    .source => EPOLL.OUT | EPOLL.IN | EPOLL.RDHUP,
                },
            };
            if (w.ep.add(fd, c.interest, @intFromPtr(c)) != .SUCCESS) {
                net.close(fd);
                std.heap.smp_allocator.destroy(c);
                continue;
            }
            c.next = w.head;
            if (w.head) |h| h.prev = c;
            w.head = c;
            w.open += 1;
            w.accepted += 1;
        }
    }

    fn closeConn(w: *Worker, c: *Conn) void {
        net.close(c.fd);
        if (c.prev) |p| p.next = c.next else w.head = c.next;
        if (c.next) |n| n.prev = c.prev;
        if (c.pend.len > 0) std.heap.smp_allocator.free(c.pend);
        std.heap.smp_allocator.destroy(c);
        w.open -= 1;
    }

    fn setInterest(w: *Worker, c: *Conn, events: u32) bool {
        if (c.interest == events) return true;
        c.interest = events;
        if (w.ep.modify(c.fd, events, @intFromPtr(c)) == .SUCCESS) return true;
        w.closeConn(c);
        return false;
    }

    fn onConn(w: *Worker, c: *Conn, ev: u32) void {
        switch (w.mode) {
            .echo => if (c.pend.len > 0) w.echoDrain(c) else w.echoRead(c),
            .sink => w.sinkRead(c),
            .source => {
                if (ev & (EPOLL.IN | EPOLL.RDHUP | EPOLL.HUP | EPOLL.ERR) != 0) {
                    // Discard what the client sends; EOF or an error ends the connection.
                    const rc = linux.read(c.fd, w.scratch.ptr, w.scratch.len);
                    switch (net.errno(rc)) {
                        .SUCCESS => if (rc == 0) return w.closeConn(c) else {
                            w.bytes_in += rc;
                        },
                        .AGAIN, .INTR => {},
                        else => return w.closeConn(c),
                    }
                }
                if (ev & EPOLL.OUT != 0) w.sourceWrite(c);
            },
        }
    }

    /// Read a chunk and write it straight back. On a short write, keep the unwritten tail, stop reading
    /// (EPOLLOUT only) until it is written: the server never buffers more than one read per connection.
    fn echoRead(w: *Worker, c: *Conn) void {
        const rc = linux.read(c.fd, w.scratch.ptr, w.scratch.len);
        switch (net.errno(rc)) {
            .SUCCESS => if (rc == 0) return w.closeConn(c),
            .AGAIN, .INTR => return,
            else => return w.closeConn(c),
        }
        w.bytes_in += rc;
        var off: usize = 0;
        while (off < rc) {
            const wr = linux.write(c.fd, w.scratch.ptr + off, rc - off);
            switch (net.errno(wr)) {
                .SUCCESS => off += wr,
                .INTR => {},
                .AGAIN => break,
                else => return w.closeConn(c),
            }
        }
        w.bytes_out += off;
        if (off == rc) return;
        const tail = rc - off;
        c.pend = std.heap.smp_allocator.alloc(u8, tail) catch return w.closeConn(c);
        @memcpy(c.pend, w.scratch[off..rc]);
        c.pend_off = 0;
        _ = w.setInterest(c, EPOLL.OUT);
    }

    /// Socket writable again: write the kept tail; once it is gone, go back to reading.
    fn echoDrain(w: *Worker, c: *Conn) void {
        while (c.pend_off < c.pend.len) {
            const wr = linux.write(c.fd, c.pend.ptr + c.pend_off, c.pend.len - c.pend_off);
            switch (net.errno(wr)) {
                .SUCCESS => {
                    c.pend_off += wr;
                    w.bytes_out += wr;
                },
                .INTR => {},
                .AGAIN => return,
                else => return w.closeConn(c),
            }
        }
        std.heap.smp_allocator.free(c.pend);
        c.pend = &.{};
        c.pend_off = 0;
        _ = w.setInterest(c, EPOLL.IN | EPOLL.RDHUP);
    }

    fn sinkRead(w: *Worker, c: *Conn) void {
        var k: usize = 0;
        while (k < ops_per_event) : (k += 1) {
            const rc = linux.read(c.fd, w.scratch.ptr, w.scratch.len);
            switch (net.errno(rc)) {
                .SUCCESS => {
                    if (rc == 0) return w.closeConn(c);
                    w.bytes_in += rc;
                    if (rc < w.scratch.len) return; // drained for now
                },
                .INTR => {},
                .AGAIN => return,
                else => return w.closeConn(c),
            }
        }
    }

    fn sourceWrite(w: *Worker, c: *Conn) void {
        var k: usize = 0;
        while (k < ops_per_event) : (k += 1) {
            const wr = linux.write(c.fd, w.scratch.ptr, w.scratch.len);
            switch (net.errno(wr)) {
                .SUCCESS => {
                    w.bytes_out += wr;
                    if (wr < w.scratch.len) return; // socket buffer full
                },
                .INTR => {},
                .AGAIN => return,
                else => return w.closeConn(c),
            }
        }
    }
};

fn workerMain(w: *Worker) void {
    w.run();
}

pub fn run(cfg: *const args.Config) u8 {
    const gpa = std.heap.smp_allocator;
    const cpus: u32 = @intCast(std.Thread.getCpuCount() catch 1);
    const nthreads: u32 = if (cfg.threads == 0) cpus else cfg.threads;

    // The first socket resolves port 0; the others bind that same port with SO_REUSEPORT.
    var addr = cfg.listen;
    const workers = gpa.alloc(Worker, nthreads) catch return 1;
    for (workers, 0..) |*w, t| {
        const fd = net.listenOrSay(&addr, 4096, "loadgen serve") orelse return 1;
        if (t == 0) addr = net.localAddress(fd) orelse addr;
        const ep = switch (net.Epoll.init()) {
            .fd => |efd| net.Epoll{ .fd = efd },
            .err => return 1,
        };
        _ = ep.add(fd, EPOLL.IN, listen_data);
        const scratch = gpa.alloc(u8, scratch_len) catch return 1;
        for (scratch, 0..) |*b, i| b.* = 'a' + @as(u8, @intCast(i % 26));
        w.* = .{ .mode = cfg.serve_mode, .listen_fd = fd, .ep = ep, .scratch = scratch };
    }
    var ab: [64]u8 = undefined;
    net.print(1, "LISTENING {s}\n", .{addr.format(&ab)});

    const threads = gpa.alloc(std.Thread, nthreads) catch return 1;
    for (threads, workers) |*th, *w| {
        th.* = std.Thread.spawn(.{ .stack_size = 1 << 20 }, workerMain, .{w}) catch {
            net.print(2, "loadgen serve: cannot start a thread\n", .{});
            return 1;
        };
    }
    for (threads) |th| th.join();

    var accepted: u64 = 0;
    var bytes_in: u64 = 0;
    var bytes_out: u64 = 0;
    for (workers) |*w| {
        accepted += w.accepted;
        bytes_in += w.bytes_in;
        bytes_out += w.bytes_out;
        gpa.free(w.scratch);
    }
    net.print(2, "loadgen serve: stopped; {d} connections accepted, {d} bytes in, {d} bytes out\n", .{ accepted, bytes_in, bytes_out });
    return 0;
}
