//! libswitchyard: what only the kernel does fast, behind a narrow C ABI (plain integers in, integers out).
//! Every function returns >= 0 on success and -errno on failure, so JS never reads errno itself.
//! This is the first slice: the build, the embedding and the loading are real; the ABI handshake is
//! its only function so far.
//! The relay engines (splice, sockmap), reuseport listeners and peek are built in later steps.
const std = @import("std");

/// Bumped whenever an exported signature changes; src/native/ refuses a library of another version.
pub const ABI_VERSION: c_int = 1;

export fn sy_abi_version() c_int {
    return ABI_VERSION;
}

test "abi version is positive" {
    try std.testing.expect(sy_abi_version() > 0);
}
