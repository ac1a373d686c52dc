//! peek: the first bytes waiting on a socket, left in place (recv with MSG_PEEK | MSG_DONTWAIT), so
//! whoever routes on them (TLS passthrough, fingerprinting) never has to replay bytes.
const std = @import("std");
const linux = std.os.linux;
const sys = @import("sys.zig");

/// Up to buf.len bytes without consuming them: the count (0 = the peer closed, nothing waiting), or
/// -errno (-EAGAIN: nothing has arrived yet).
pub fn peek(fd: i32, buf: []u8) c_int {
    while (true) {
        const rc = linux.recvfrom(fd, buf.ptr, buf.len, linux.MSG.PEEK | linux.MSG.DONTWAIT, null, null);
        switch (linux.errno(rc)) {
            .SUCCESS => return @intCast(rc),
            .INTR => continue,
            else => return sys.negErrno(rc),
        }
    }
}

const rig = @import("test_rig.zig");

test "peek returns the waiting bytes and leaves them for the next read" {
    const r = try rig.Rig.init();
    defer r.deinit();
    var buf: [64]u8 = undefined;
    try std.testing.expectEqual(sys.errnoInt(.AGAIN), peek(r.p1, &buf));
    try rig.writeAll(r.c, "\x16\x03\x01hello");
    sys.sleepMs(10);
    try std.testing.expectEqual(@as(c_int, 4), peek(r.p1, buf[0..4]));
    try std.testing.expectEqualStrings("\x16\x03\x01h", buf[0..4]);
    try std.testing.expectEqual(@as(c_int, 8), peek(r.p1, &buf));
    var got: [8]u8 = undefined;
    try std.testing.expectEqual(@as(usize, 8), linux.read(r.p1, &got, 8));
    try std.testing.expectEqualStrings("\x16\x03\x01hello", &got);
    try std.testing.expectEqual(sys.errnoInt(.BADF), peek(-1, &buf));
}
