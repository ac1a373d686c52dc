#!/usr/bin/python3
"""Runs a command the way systemd would for a Type=notify unit with socket activation, without systemd.

Creates the notify socket (a unix datagram socket) and a listening TCP socket on 127.0.0.1 (kernel
port) at fd 3, then execs the command with NOTIFY_SOCKET, LISTEN_FDS=1, LISTEN_FDNAMES=<name>,
LISTEN_PID=<its own pid> (set by a shell that then execs it, as systemd sets it between fork and
exec) and WATCHDOG_USEC. Prints JSON lines on stdout: {"pid", "port"} first, then {"notify": text}
for every datagram, {"exit": code} when the process it started exits, and it goes on reporting
datagrams until one says STOPPING=1 (a binary upgrade leaves a new main process behind). Usage: systemd-harness.py NAME WATCHDOG_USEC CMD...
"""
import json, os, socket, subprocess, sys, tempfile, select, time

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
# The service may outlive the process started here (a binary upgrade hands it to a new MAINPID), so
# after that process exits keep listening until some process says STOPPING=1 (or 20 s pass).
exited_at = None
stopping = False
while True:
    ready, _, _ = select.select([notify], [], [], 0.1)
    if ready:
        text = notify.recv(4096).decode()
        stopping = stopping or "STOPPING=1" in text.split("\n")
        out({"notify": text})
    if exited_at is None and proc.poll() is not None:
        exited_at = time.time()
        out({"exit": proc.returncode})
    if exited_at is not None and not ready and (stopping or time.time() - exited_at > 20):
        break
os.unlink(notify_path)
os.rmdir(tmp)
