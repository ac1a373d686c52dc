#!/usr/bin/python3
"""Runs a command the way systemd would for a Type=notify unit with socket activation, without systemd.

Creates the notify socket (a unix datagram socket) and a listening TCP socket on 127.0.0.1 (kernel
port) at fd 3, then execs the command with NOTIFY_SOCKET, LISTEN_FDS=1, LISTEN_FDNAMES=<name>,
LISTEN_PID=<its own pid> (set by a shell that then execs it, as systemd sets it between fork and
exec) and WATCHDOG_USEC. Prints JSON lines on stdout: {"pid", "port"} first, then {"notify": text}
for every datagram, then {"exit": code}. Usage: systemd-harness.py NAME WATCHDOG_USEC CMD...
"""
import json, os, socket, subprocess, sys, tempfile, select

name, watchdog, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", 0))
listener.listen(128)
port = listener.getsockname()[1]
if listener.fileno() != 3:
    os.dup2(listener.fileno(), 3)
os.set_inheritable(3, True)

# Made after fd 3 is taken, so it cannot land there.
tmp = tempfile.mkdtemp(prefix="switchyard-systemd-")
notify_path = os.path.join(tmp, "notify")
notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
notify.bind(notify_path)

env = dict(os.environ, NOTIFY_SOCKET=notify_path, LISTEN_FDS="1", LISTEN_FDNAMES=name, WATCHDOG_USEC=watchdog)
proc = subprocess.Popen(["/bin/sh", "-c", 'LISTEN_PID=$$; export LISTEN_PID; exec "$@"', "sh", *cmd], env=env, pass_fds=(3,))
if listener.fileno() != 3:
    os.close(3)
listener.close()

def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()

out({"pid": proc.pid, "port": port})
while True:
    ready, _, _ = select.select([notify], [], [], 0.1)
    if ready:
        out({"notify": notify.recv(4096).decode()})
    elif proc.poll() is not None:
        break
out({"exit": proc.returncode})
os.unlink(notify_path)
os.rmdir(tmp)
