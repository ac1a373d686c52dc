//! Builds libswitchyard.so, the C-ABI library that src/native/ loads through bun:ffi.
//! Pinned to Zig 0.17.1 (scripts/bootstrap.sh); the build API changes between releases.
const std = @import("std");

pub fn build(b: *std.Build) void {
    const target = b.standardTargetOptions(.{});
    const optimize = b.standardOptimizeOption(.{});

    const root = b.createModule(.{
        .root_source_file = b.path("src/lib.zig"),
        .target = target,
        .optimize = optimize,
        // The library runs inside Bun (a glibc process): its threads must be pthreads, which
        // std.Thread uses only when libc is linked (raw clone() threads would clobber glibc's TLS).
        .link_libc = true,
    });
    // The sockmap relay's BPF program, compiled from C by this Zig's own clang (no system clang or
    // libbpf needed) and embedded in the library (src/sockmap.zig: @embedFile("relay_bpf")).
    const bpf = b.addSystemCommand(&.{ b.graph.zig_exe, "cc", "-target", "bpfel-freestanding", "-O2", "-g0", "-c" });
    bpf.addFileArg(b.path("bpf/relay.bpf.c"));
    bpf.addArg("-o");
    const bpf_obj = bpf.addOutputFileArg("relay.bpf.o");
    root.addAnonymousImport("relay_bpf", .{ .root_source_file = bpf_obj });

    const lib = b.addLibrary(.{ .name = "switchyard", .linkage = .dynamic, .root_module = root });
    b.installArtifact(lib);

    const filters = b.option([]const []const u8, "test-filter", "Run only the tests whose names contain this") orelse &.{};
    const tests = b.addTest(.{ .root_module = root, .filters = filters });
    b.step("test", "Run the library's unit tests").dependOn(&b.addRunArtifact(tests).step);
}
