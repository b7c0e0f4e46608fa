"""agw.py: integration-test harness. Starts the real audiogwd in a temporary
directory on ephemeral ports, and talks to it with a small standard-library
WebSocket client (RFC 6455), so tests can also misbehave on purpose: send
oversized or truncated frames, never read, vanish without a close frame."""
import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import struct
import subprocess
import tempfile
import time
import unittest

AUDIOGWD = os.environ.get("AUDIOGWD", os.path.join(os.path.dirname(__file__), "../../build/audiogwd"))
AUDIOGWCTL = os.environ.get("AUDIOGWCTL", os.path.join(os.path.dirname(AUDIOGWD), "audiogwctl"))
SECRET = b"integration-test-secret-0123456789abcdef"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout=10.0, step=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise AssertionError("timed out waiting for " + what)


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def mint(sub="alice", room="r1", ttl=3600, secret=SECRET, **claims):
    """An HS256 JWT, built here independently of the daemon's code."""
    now = int(time.time())
    body = {"sub": sub, "room": room, "exp": now + ttl, "iat": now}
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    h = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    p = b64url(json.dumps(body).encode())
    sig = hmac.new(secret, (h + "." + p).encode(), hashlib.sha256).digest()
    return h + "." + p + "." + b64url(sig)


def children_of(pid):
    out = []
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                out += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return sorted(out)


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


class HandshakeError(Exception):
    def __init__(self, status, body):
        super().__init__("HTTP %d: %s" % (status, body))
        self.status = status
        self.body = body


def http_request(port, path, method="GET", headers=None, body=b"", host="127.0.0.1", timeout=5):
    """One HTTP/1.1 request; returns (status, headers dict, body bytes)."""
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        lines = ["%s %s HTTP/1.1" % (method, path), "Host: %s:%d" % (host, port),
                 "Connection: close", "Content-Length: %d" % len(body)]
        lines += ["%s: %s" % kv for kv in (headers or {}).items()]
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        return read_http_response(s, until_close=True)
    finally:
        s.close()


def read_http_response(s, until_close=False):
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("connection closed before the response headers")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0") or 0)
    while len(rest) < n:
        chunk = s.recv(4096)
        if not chunk:
            break
        rest += chunk
    return status, headers, rest[:n], rest[n:]


class WS:
    """A blocking WebSocket client. recv() answers pings itself unless
    auto_pong is False; a close frame is returned as ("close", code, reason)."""

    def __init__(self, port, path="/v1/audio", token=None, query="", headers=None,
                 host="127.0.0.1", source=None, timeout=5, auto_pong=True, tls=False):
        self.auto_pong = auto_pong
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        if source:
            self.sock.bind((source, 0))
        self.sock.connect((host, port))
        if tls:  # wss:// with the test's self-signed certificate
            import ssl
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            self.sock = ctx.wrap_socket(self.sock, server_hostname=host)
        target = path
        params = []
        if token is not None:
            params.append("token=" + token)
        if query:
            params.append(query)
        if params:
            target += "?" + "&".join(params)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = ["GET %s HTTP/1.1" % target, "Host: %s:%d" % (host, port),
                 "Upgrade: websocket", "Connection: Upgrade",
                 "Sec-WebSocket-Key: " + key, "Sec-WebSocket-Version: 13"]
        lines += ["%s: %s" % kv for kv in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        status, hdrs, body, rest = read_http_response(self.sock)
        if status != 101:
            self.sock.close()
            raise HandshakeError(status, body.decode("utf-8", "replace"))
        accept = base64.b64encode(hashlib.sha1(
            (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        assert hdrs.get("sec-websocket-accept") == accept, "bad Sec-WebSocket-Accept"
        self.buf = rest
        self.closed = None

    # -- sending --
    def send_frame(self, opcode, payload, fin=True, mask=True, declared_len=None):
        n = len(payload) if declared_len is None else declared_len
        head = bytes([(0x80 if fin else 0) | opcode])
        mbit = 0x80 if mask else 0
        if n < 126:
            head += bytes([mbit | n])
        elif n < 65536:
            head += bytes([mbit | 126]) + struct.pack("!H", n)
        else:
            head += bytes([mbit | 127]) + struct.pack("!Q", n)
        if mask:
            m = os.urandom(4)
            head += m
            payload = bytes(b ^ m[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + payload)

    def send_text(self, text):
        self.send_frame(0x1, text.encode() if isinstance(text, str) else text)

    def send_json(self, obj):
        self.send_text(json.dumps(obj))

    def send_binary(self, data):
        self.send_frame(0x2, data)

    def close(self, code=1000):
        try:
            self.send_frame(0x8, struct.pack("!H", code))
        except OSError:
            pass

    def abort(self):
        """Vanish without a close frame (RST)."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    # -- receiving --
    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed by the server")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_frame(self):
        b0, b1 = self._read(2)
        n = b1 & 0x7f
        if n == 126:
            n = struct.unpack("!H", self._read(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._read(8))[0]
        assert not b1 & 0x80, "server frames must not be masked"
        return b0 & 0x0f, self._read(n)

    def recv_frame_timeout(self, timeout):
        """One raw frame (opcode, payload) or socket.timeout; pings are not answered."""
        self.sock.settimeout(timeout)
        if not self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed by the server")
            self.buf += chunk
        self.sock.settimeout(10)
        return self.recv_frame()

    def recv(self, timeout=None):
        """Next data message: ("text", str), ("binary", bytes) or ("close", code, reason)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise socket.timeout("timed out")
                self.sock.settimeout(left)
            op, payload = self.recv_frame()
            if op == 0x9:
                if self.auto_pong:
                    self.send_frame(0xA, payload)
                continue
            if op == 0xA:
                continue
            if op == 0x8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                self.closed = (code, payload[2:].decode("utf-8", "replace"))
                return ("close", code, self.closed[1])
            return ("text", payload.decode()) if op == 0x1 else ("binary", payload)

    def recv_json(self, timeout=None, skip=()):
        """Next text message as JSON, skipping messages whose type is in skip."""
        while True:
            m = self.recv(timeout)
            if m[0] != "text":
                raise AssertionError("expected a text message, got %r" % (m,))
            j = json.loads(m[1])
            if j.get("type") not in skip:
                return j

    def recv_close(self, timeout=10):
        """Read until the close frame; returns its code."""
        while True:
            m = self.recv(timeout)
            if m[0] == "close":
                return m[1]

    def fileno(self):
        return self.sock.fileno()


BASE_CONFIG = """
[server]
listen = 127.0.0.1:{port}
workers = {workers}
run_dir = {dir}/run
{server_extra}
[auth]
hs256_secret_file = {dir}/secret.key
{auth_extra}
[limits]
{limits_extra}
[heartbeat]
{heartbeat_extra}
[drain]
{drain_extra}
[admin]
listen = {admin_listen}
control_socket = ipc://{dir}/run/ctl.ipc
{admin_extra}
[audit]
database = {dir}/run/audit.db
[log]
level = {log_level}
[downstream]
{downstream_extra}
"""


class Daemon:
    """A real audiogwd in a temporary directory. Keyword arguments fill the
    config template (workers, *_extra sections, log_level)."""

    def __init__(self, workers=2, **kw):
        self.tmp = tempfile.TemporaryDirectory(prefix="audiogwd-test-")
        self.dir = self.tmp.name
        self.port = free_port()
        self.admin_port = free_port()
        with open(os.path.join(self.dir, "secret.key"), "wb") as f:
            f.write(SECRET + b"\n")
        params = dict(port=self.port, workers=workers, dir=self.dir, server_extra="",
                      auth_extra="", limits_extra="", heartbeat_extra="", drain_extra="",
                      admin_extra="", admin_listen="127.0.0.1:%d" % self.admin_port,
                      downstream_extra="",
                      log_level="info")
        params.update(kw)
        self.workers = workers
        self.config = os.path.join(self.dir, "audiogwd.conf")
        with open(self.config, "w") as f:
            f.write(BASE_CONFIG.format(**params))
        self.proc = None

    def start(self, wait=True):
        self.log_path = os.path.join(self.dir, "audiogwd.log")
        self.log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen([AUDIOGWD, "-c", self.config, "-f"], stdout=self.log_file,
                                     stderr=subprocess.STDOUT, cwd=self.dir)
        if wait:
            wait_for(lambda: self.ready_workers() >= self.workers or self.proc.poll() is not None,
                     timeout=20, what="workers ready")
            if self.proc.poll() is not None:
                raise AssertionError("audiogwd exited %d:\n%s" % (self.proc.returncode, self.log_text()))
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.kill()
        self.tmp.cleanup()

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def log_lines(self, event=None):
        out = []
        for line in self.log_text().splitlines():
            try:
                j = json.loads(line)
            except ValueError:
                continue
            if event is None or j.get("event") == event:
                out.append(j)
        return out

    def ready_workers(self):
        return len(self.log_lines("worker_ready"))

    def children_with(self, flag):
        out = []
        for p in children_of(self.proc.pid):
            try:
                with open("/proc/%d/cmdline" % p, "rb") as f:
                    if flag.encode() in f.read().split(b"\0") and pid_alive(p):
                        out.append(p)
            except OSError:
                pass
        return out

    def worker_pids(self):
        return self.children_with("--worker")

    def downstream_pid(self):
        pids = self.children_with("--downstream")
        return pids[0] if pids else None

    def journal_pid(self):
        pids = self.children_with("--journal")
        return pids[0] if pids else None

    def ws(self, sub="alice", room="r1", **kw):
        claims = kw.pop("claims", {})
        return WS(self.port, token=mint(sub, room, **claims), **kw)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            pids = [p for p in children_of(self.proc.pid)]
            self.proc.kill()
            self.proc.wait()
            for p in pids:
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
        if self.proc:
            self.log_file.close()


def run(module_name):
    unittest.main(module=module_name, verbosity=2)
