"""Small protocol clients for the console tests (test_consoles.py): no test framework here.

- `spice_link(host, port, password)`: the SPICE link handshake of a direct SPICE client
  (remote-viewer) on the main channel, up to the server's link result: 0 = OK,
  7 = permission denied (spice-protocol's SpiceLinkErr).
- `QMP`: a QMP client over a unix socket (the bare-QEMU checks of the clients themselves).
- `ws_handshake(url, ...)`: a websocket upgrade by hand, as tempest's test_novnc does it,
  returning the HTTP status, the headers and every byte that followed them, so a refusal
  can be checked to carry no console byte.
- `RfbOverWs`: RFB over a websocket (the `websockets` package): version, security types,
  security type None, ClientInit/ServerInit.

Every network call has a timeout.
"""

import base64
import json
import os
import socket
import struct
import time
import urllib.parse

SPICE_MAGIC = b"REDQ"
SPICE_VERSION_MAJOR = 2
SPICE_VERSION_MINOR = 2
SPICE_CHANNEL_MAIN = 1
# common capabilities (spice-protocol enums.h / protocol.h)
SPICE_COMMON_CAP_PROTOCOL_AUTH_SELECTION = 0
SPICE_COMMON_CAP_AUTH_SPICE = 1
SPICE_COMMON_CAP_MINI_HEADER = 3
SPICE_TICKET_PUBKEY_BYTES = 162  # a 1024-bit RSA public key, DER (SubjectPublicKeyInfo)
SPICE_LINK_ERR_OK = 0
SPICE_LINK_ERR_PERMISSION_DENIED = 7
LINK_ERRORS = {0: "OK", 1: "ERROR", 2: "INVALID_MAGIC", 3: "INVALID_DATA",
               4: "VERSION_MISMATCH", 5: "NEED_SECURED", 6: "NEED_UNSECURED",
               7: "PERMISSION_DENIED", 8: "BAD_CONNECTION_ID", 9: "CHANNEL_NOT_AVAILABLE"}


class ProtocolError(Exception):
    pass


def recvn(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def spice_link_mess(channel_type=SPICE_CHANNEL_MAIN, channel_id=0, connection_id=0):
    """SpiceLinkHeader + SpiceLinkMess, with the common caps spice-gtk sends
    (PROTOCOL_AUTH_SELECTION, AUTH_SPICE, MINI_HEADER) and no channel caps."""
    caps = (1 << SPICE_COMMON_CAP_PROTOCOL_AUTH_SELECTION) | (1 << SPICE_COMMON_CAP_AUTH_SPICE) \
        | (1 << SPICE_COMMON_CAP_MINI_HEADER)
    # connection_id, channel_type, channel_id, num_common_caps, num_channel_caps, caps_offset
    mess = struct.pack("<IBBIII", connection_id, channel_type, channel_id, 1, 0, 18)
    mess += struct.pack("<I", caps)
    return SPICE_MAGIC + struct.pack("<III", SPICE_VERSION_MAJOR, SPICE_VERSION_MINOR,
                                     len(mess)) + mess


def encrypt_ticket(pubkey_der, password):
    """The ticket: the password and a NUL, RSA-OAEP (SHA-1, MGF1-SHA-1) under the key the
    server sent in its SpiceLinkReply (red_channel's ticket format)."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    key = serialization.load_der_public_key(pubkey_der)
    return key.encrypt(password.encode() + b"\0", padding.OAEP(
        mgf=padding.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None))


def spice_link(host, port, password, timeout=10, channel_type=SPICE_CHANNEL_MAIN):
    """Runs the link handshake against a SPICE server and returns its link result
    (SPICE_LINK_ERR_*: 0 OK, 7 permission denied). A SpiceLinkReply that carries an error
    is returned as that error (no ticket sent). Raises ProtocolError/EOFError/OSError
    for anything that is not SPICE."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(spice_link_mess(channel_type))
        hdr = recvn(s, 16)
        magic, (major, minor, size) = hdr[:4], struct.unpack("<III", hdr[4:])
        if magic != SPICE_MAGIC:
            raise ProtocolError(f"not a SPICE server: reply magic {magic!r}")
        if major != SPICE_VERSION_MAJOR:
            raise ProtocolError(f"SPICE protocol {major}.{minor}")
        body = recvn(s, size)
        error = struct.unpack("<I", body[:4])[0]
        if error != SPICE_LINK_ERR_OK:
            return error
        pubkey = body[4:4 + SPICE_TICKET_PUBKEY_BYTES]
        num_common, num_channel, caps_offset = struct.unpack(
            "<III", body[4 + SPICE_TICKET_PUBKEY_BYTES:4 + SPICE_TICKET_PUBKEY_BYTES + 12])
        common = struct.unpack("<I", body[caps_offset:caps_offset + 4])[0] if num_common else 0
        if common & (1 << SPICE_COMMON_CAP_PROTOCOL_AUTH_SELECTION):
            s.sendall(struct.pack("<I", SPICE_COMMON_CAP_AUTH_SPICE))  # SpiceLinkAuthMechanism
        s.sendall(encrypt_ticket(pubkey, password))
        return struct.unpack("<I", recvn(s, 4))[0]


# --- QMP ---------------------------------------------------------------------------------

class QMP:
    """One QMP connection over a unix socket; events are collected in .events."""

    def __init__(self, path, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.settimeout(timeout)
            try:
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.file = self.sock.makefile("rw")
        self.greeting = json.loads(self.file.readline())
        self.events = []
        self.cmd("qmp_capabilities")

    def cmd(self, name, **arguments):
        msg = {"execute": name}
        if arguments:
            msg["arguments"] = arguments
        self.file.write(json.dumps(msg) + "\n")
        self.file.flush()
        while True:
            line = self.file.readline()
            if not line:
                raise EOFError("QMP closed")
            m = json.loads(line)
            if "event" in m:
                self.events.append(m)
                continue
            if "error" in m:
                raise ProtocolError(f"QMP {name}: {m['error']}")
            return m["return"]

    def close(self):
        try:
            self.file.close()
        finally:
            self.sock.close()


# --- websockets --------------------------------------------------------------------------

def ws_target(url):
    """(host, port, request-target) of the websocket a console URL leads to, the way
    noVNC (the `path` query parameter, Nova's shape), spice_auto.html (?token= → /, with
    the token as a cookie) or a serial ws:// URL does it."""
    u = urllib.parse.urlsplit(url)
    q = urllib.parse.parse_qs(u.query)
    if "path" in q:
        target = "/" + q["path"][0].lstrip("/")
    elif u.scheme in ("ws", "wss"):
        target = (u.path or "/") + (f"?{u.query}" if u.query else "")
    else:
        target = "/" + (f"?token={q['token'][0]}" if "token" in q else "")
    return u.hostname, u.port or 80, target


def ws_handshake(url, origin=None, target=None, cookie=None, protocol=None, timeout=10,
                 read_for=1.5):
    """A websocket upgrade by hand against the proxy behind URL. Returns (status, headers,
    rest, closed): the HTTP status code, the response headers (lowercase names), every
    byte received after them within `read_for` seconds, and whether the proxy closed the
    connection within that time. For a refused upgrade `rest` is the error body; for an
    accepted one, the raw frames that followed."""
    host, port, default_target = ws_target(url)
    target = target or default_target
    lines = [f"GET {target} HTTP/1.1", f"Host: {host}:{port}", "Upgrade: websocket",
             "Connection: Upgrade", f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}",
             "Sec-WebSocket-Version: 13"]
    if origin:
        lines.append(f"Origin: {origin}")
    if cookie:
        lines.append(f"Cookie: {cookie}")
    if protocol:
        lines.append(f"Sec-WebSocket-Protocol: {protocol}")
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        if not head:
            raise EOFError("the proxy closed without an HTTP response")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split()[1])
        headers = {}
        for h in header_lines:
            k, _, v = h.partition(":")
            headers[k.strip().lower()] = v.strip()
        deadline = time.monotonic() + read_for
        closed = False
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            s.settimeout(left)
            try:
                chunk = s.recv(4096)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            rest += chunk
    return status, headers, rest, closed


def ws_frames(data):
    """Parses unmasked server frames: [(opcode, payload)] (a trailing partial frame is
    dropped)."""
    frames = []
    i = 0
    while i + 2 <= len(data):
        op, ln = data[i] & 0x0F, data[i + 1] & 0x7F
        i += 2
        if ln == 126:
            ln = struct.unpack(">H", data[i:i + 2])[0]
            i += 2
        elif ln == 127:
            ln = struct.unpack(">Q", data[i:i + 8])[0]
            i += 8
        if i + ln > len(data):
            break
        frames.append((op, data[i:i + ln]))
        i += ln
    return frames


def console_bytes(data):
    """The payload bytes of the binary/text/continuation frames in DATA: what a console
    would have sent (close/ping/pong frames excluded)."""
    return b"".join(p for op, p in ws_frames(data) if op in (0, 1, 2))


class RfbOverWs:
    """RFB spoken over a console websocket (websockets' sync client). `read()` returns
    bytes, whatever the frame boundaries."""

    def __init__(self, url, origin=None, timeout=10, cookie=None):
        from websockets.sync.client import connect

        host, port, target = ws_target(url)
        headers = {"Cookie": cookie} if cookie else None
        self.timeout = timeout
        self.ws = connect(f"ws://{host}:{port}{target}", origin=origin,
                          additional_headers=headers, open_timeout=timeout,
                          close_timeout=2, subprotocols=None, max_size=None)
        self.buf = b""

    def read(self, n, timeout=None):
        while len(self.buf) < n:
            msg = self.ws.recv(timeout=timeout or self.timeout)
            self.buf += msg if isinstance(msg, bytes) else msg.encode()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send(self, data):
        self.ws.send(data)

    def handshake(self, password=None):
        """RFB 3.8 up to ServerInit. Returns (security_types, chosen, server_name).
        Security type 1 (None) when offered, else 2 (VNC auth, with PASSWORD)."""
        version = self.read(12)
        if not version.startswith(b"RFB "):
            raise ProtocolError(f"not RFB: {version!r}")
        self.send(b"RFB 003.008\n")
        n = self.read(1)[0]
        if n == 0:
            ln = struct.unpack(">I", self.read(4))[0]
            raise ProtocolError(f"RFB refused: {self.read(ln)!r}")
        types = list(self.read(n))
        if 1 in types:
            chosen = 1
            self.send(b"\x01")
        elif 2 in types and password is not None:
            chosen = 2
            self.send(b"\x02")
            challenge = self.read(16)
            self.send(vnc_des(challenge, password))
        else:
            raise ProtocolError(f"no usable security type in {types}")
        result = struct.unpack(">I", self.read(4))[0]
        if result != 0:
            reason = b""
            try:
                ln = struct.unpack(">I", self.read(4, timeout=2))[0]
                reason = self.read(ln, timeout=2)
            except Exception:  # noqa: BLE001 - the reason is optional before 3.8
                pass
            raise ProtocolError(f"RFB SecurityResult failed ({result}): {reason!r}")
        self.send(b"\x01")  # ClientInit, shared
        init = self.read(24)
        name = self.read(struct.unpack(">I", init[20:24])[0])
        return types, chosen, name.decode(errors="replace")

    def request_update(self, width=640, height=480):
        """FramebufferUpdateRequest (non-incremental) for the whole screen."""
        self.send(struct.pack(">BBHHHH", 3, 0, 0, 0, width, height))

    def close(self):
        try:
            self.ws.close()
        except Exception:  # noqa: BLE001
            pass


def vnc_des(challenge, password):
    """VNC authentication: DES-ECB of the 16-byte challenge with the password's first 8
    bytes (NUL padded), each byte bit-reversed, as the key (openssl's legacy provider)."""
    import subprocess

    key = bytes(int(f"{c:08b}"[::-1], 2) for c in password.encode()[:8].ljust(8, b"\0"))
    return subprocess.run(["openssl", "enc", "-provider", "legacy", "-provider", "default",
                           "-des-ecb", "-nopad", "-K", key.hex()], input=challenge,
                          capture_output=True, check=True, timeout=10).stdout
