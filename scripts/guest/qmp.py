#!/usr/bin/python3
"""Tiny QMP / QEMU guest agent client for scripts/guest/verify (stdlib only).

  qmp.py qmp SOCK hostfwd-port [GUEST_PORT]   host port of the user-net hostfwd to GUEST_PORT (22)
  qmp.py qmp SOCK powerdown                   system_powerdown (ACPI power button)
  qmp.py qmp SOCK quit
  qmp.py qga SOCK ping                        guest-ping
  qmp.py qga SOCK set-password USER PASSWORD  guest-set-user-password (crypted=false)
  qmp.py qga SOCK info                        guest-info version
"""
import base64
import json
import socket
import sys


class Chan:
    def __init__(self, path, timeout=10.0):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.buf = b""

    def line(self):
        while b"\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise EOFError("socket closed")
            self.buf += d
        l, self.buf = self.buf.split(b"\n", 1)
        return json.loads(l)

    def send(self, cmd, **args):
        msg = {"execute": cmd}
        if args:
            msg["arguments"] = args
        self.s.sendall(json.dumps(msg).encode() + b"\n")

    def call(self, cmd, **args):
        self.send(cmd, **args)
        while True:
            r = self.line()
            if "event" in r:
                continue
            if "error" in r:
                raise RuntimeError(f"{cmd}: {r['error']}")
            return r.get("return")


def qmp(path):
    c = Chan(path)
    c.line()  # greeting
    c.call("qmp_capabilities")
    return c


def qga(path):
    c = Chan(path, timeout=15.0)
    # guest-sync-delimited flushes anything stale on the channel (the agent may have restarted)
    c.s.sendall(b"\xff")
    c.send("guest-sync-delimited", id=4242)
    while True:
        d = c.s.recv(65536)
        if not d:
            raise EOFError("socket closed")
        c.buf += d
        i = c.buf.rfind(b"\xff")
        if i >= 0 and b"4242" in c.buf[i:] and b"\n" in c.buf[i:]:
            rest = c.buf[i + 1:]
            c.buf = rest.split(b"\n", 1)[1]
            break
    return c


def main(a):
    kind, path, op = a[0], a[1], a[2]
    if kind == "qmp":
        c = qmp(path)
        if op == "hostfwd-port":
            gport = a[3] if len(a) > 3 else "22"
            out = c.call("human-monitor-command", **{"command-line": "info usernet"})
            for ln in out.splitlines():
                f = ln.split()
                if "HOST_FORWARD" in ln and len(f) >= 6 and f[5] == gport:
                    print(f[3])
                    return 0
            print(out, file=sys.stderr)
            return 1
        if op == "powerdown":
            c.call("system_powerdown")
            return 0
        if op == "quit":
            c.call("quit")
            return 0
    elif kind == "qga":
        c = qga(path)
        if op == "ping":
            c.call("guest-ping")
            print("pong")
            return 0
        if op == "info":
            print(c.call("guest-info")["version"])
            return 0
        if op == "set-password":
            pw = base64.b64encode(a[4].encode()).decode()
            c.call("guest-set-user-password", username=a[3], password=pw, crypted=False)
            return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except Exception as e:  # noqa: BLE001
        print(f"qmp.py: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
