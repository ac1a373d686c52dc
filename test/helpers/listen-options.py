#!/usr/bin/python3
"""Prints, as JSON, the options of every listening TCP socket that process PID holds on PORT:
[{"family": 4|6, "deferAccept": s, "reusePort": 0|1, "fastOpen": queue, "v6only": 0|1|null}].
The sockets are borrowed with pidfd_getfd(2) (Linux 5.6; needs ptrace rights over PID, e.g. the same
user or root), so the values are the kernel's, not what the program meant to set."""
import ctypes, json, os, socket, sys

SYS_PIDFD_GETFD = 438
TCP_FASTOPEN = 23
libc = ctypes.CDLL(None, use_errno=True)
pid, port = int(sys.argv[1]), int(sys.argv[2])
pidfd = os.pidfd_open(pid)
found = []
seen = set()  # a listener also holds a duplicate of its socket (to pause it): count each socket once
for name in os.listdir(f"/proc/{pid}/fd"):
    try:
        link = os.readlink(f"/proc/{pid}/fd/{name}")
    except OSError:
        continue
    if not link.startswith("socket:") or link in seen:
        continue
    seen.add(link)
    fd = libc.syscall(SYS_PIDFD_GETFD, pidfd, int(name), 0)
    if fd < 0:
        sys.exit(f"pidfd_getfd {pid}/{name}: errno {ctypes.get_errno()}")
    s = socket.socket(fileno=fd)
    try:
        if s.type != socket.SOCK_STREAM or s.family not in (socket.AF_INET, socket.AF_INET6):
            continue
        if not s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) or s.getsockname()[1] != port:
            continue
        v6 = s.family == socket.AF_INET6
        found.append({
            "family": 6 if v6 else 4,
            "deferAccept": s.getsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT),
            "reusePort": s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT),
            "fastOpen": s.getsockopt(socket.IPPROTO_TCP, TCP_FASTOPEN),
            "v6only": s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) if v6 else None,
        })
    finally:
        s.close()
print(json.dumps(found))
