//! Per-thread counters. Each worker owns one Stats (plain integers, no sharing); the main thread merges
//! them after the workers have been joined.
const std = @import("std");
const net = @import("net.zig");
const Histogram = @import("histogram.zig").Histogram;

pub const ErrorKind = enum(u8) {
    connect_refused,
    connect_timeout,
    reset,
    eof,
    timeout,
    other,
};

pub const error_kind_count = @typeInfo(ErrorKind).@"enum".field_names.len;

/// Map an errno to the kind we report. `connecting` tells a connect timeout from a read timeout.
pub fn classify(e: net.E, connecting: bool) ErrorKind {
    return switch (e) {
        .CONNREFUSED => .connect_refused,
        .TIMEDOUT => if (connecting) .connect_timeout else .timeout,
        .CONNRESET, .PIPE, .CONNABORTED => .reset,
        else => .other,
    };
}

pub const Stats = struct {
    /// Completed exchanges inside the measurement window (rr: requests, rate: connections, hold: verified).
    requests: u64 = 0,
    /// Payload bytes written / read inside the window.
    bytes_sent: u64 = 0,
    bytes_recv: u64 = 0,
    /// connect() attempts over the whole run, warmup included.
    conns_opened: u64 = 0,
    /// hold: connections verified end to end, and how many of them the far side dropped while held.
    held: u64 = 0,
    dropped: u64 = 0,
    /// Errors over the whole run, warmup included (an error is an error whenever it happens).
    errors: [error_kind_count]u64 = @splat(0),
    /// The most recent errno counted as `other`, so "other" is never a dead end when reading a report.
    other_errno: u16 = 0,
    other_unexpected_data: u64 = 0,
    hist: Histogram = .{},

    pub fn addError(s: *Stats, kind: ErrorKind, e: net.E) void {
        s.errors[@backingInt(kind)] += 1;
        if (kind == .other) s.other_errno = @backingInt(e);
    }

    pub fn errorTotal(s: *const Stats) u64 {
        var t: u64 = 0;
        for (s.errors) |c| t += c;
        return t;
    }

    pub fn merge(s: *Stats, o: *const Stats) void {
        s.requests += o.requests;
        s.bytes_sent += o.bytes_sent;
        s.bytes_recv += o.bytes_recv;
        s.conns_opened += o.conns_opened;
        s.held += o.held;
        s.dropped += o.dropped;
        for (&s.errors, o.errors) |*a, b| a.* += b;
        if (o.other_errno != 0) s.other_errno = o.other_errno;
        s.other_unexpected_data += o.other_unexpected_data;
        s.hist.merge(&o.hist);
    }
};

test "classify errno" {
    try std.testing.expectEqual(ErrorKind.connect_refused, classify(.CONNREFUSED, true));
    try std.testing.expectEqual(ErrorKind.connect_timeout, classify(.TIMEDOUT, true));
    try std.testing.expectEqual(ErrorKind.timeout, classify(.TIMEDOUT, false));
    try std.testing.expectEqual(ErrorKind.reset, classify(.CONNRESET, false));
    try std.testing.expectEqual(ErrorKind.other, classify(.ADDRNOTAVAIL, true));
}
