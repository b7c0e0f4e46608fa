"""The operator plane against the real daemon with two workers: the admin
HTTP API (SPEC 6.1, 6.2), the events it pushes to clients (SPEC 4.2:
kicked, muted/unmuted, system, message), the Prometheus metrics (6.3) and
the JSON logs (6.5).

Clients are placed on a chosen worker by reconnecting until welcome.worker
shows it (SO_REUSEPORT spreads connections by hash); extras are closed
cleanly and the test waits until the daemon's connection count settles, so
counts in replies are exact. Every test starts its own daemon."""
import calendar
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import agw  # noqa: E402
from agw import AUDIOGWCTL, WS, HandshakeError, http_request, mint, wait_for  # noqa: E402


class Daemon(agw.Daemon):
    """agw.Daemon that shows the end of the daemon's log when a test fails in it."""

    def __exit__(self, *exc):
        if exc[0] is not None and exc[0] is not unittest.SkipTest and self.proc:
            try:
                tail = self.log_text().splitlines()[-60:]
                sys.stderr.write("\n--- last lines of the daemon log ---\n%s\n---\n" % "\n".join(tail))
            except OSError:
                pass
        return super().__exit__(*exc)


T = 10.0            # generous: the machine is slow and shared
QUIET = 1.0         # how long "nothing arrives" is watched
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
MANY = "max_conns_per_user = 20"   # one user on both workers, extras while placing


def rtp(seq, payload=b"x" * 100, pt=111):
    return struct.pack("!BBHII", 0x80, pt, seq & 0xffff, seq * 960, 0) + payload


# ---------------------------------------------------------------- admin API

def api(d, path, method="GET", body=None, key=None, raw=None, headers=None):
    """One admin request: (status, parsed JSON body (or text), headers)."""
    hdrs = dict(headers or {})
    if key is not None:
        hdrs["Authorization"] = "Bearer " + key
    data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    if data:
        hdrs.setdefault("Content-Type", "application/json")
    status, h, b, _ = http_request(d.admin_port, path, method=method, headers=hdrs, body=data,
                                   timeout=T)
    if h.get("content-type", "").startswith("application/json"):
        try:
            return status, json.loads(b), h
        except ValueError:
            raise AssertionError("%s %s: %d with a body that is not JSON: %r" %
                                 (method, path, status, b))
    return status, b.decode("utf-8", "replace"), h


def ok(d, path, method="GET", body=None, **kw):
    st, j, _ = api(d, path, method, body, **kw)
    if st != 200:
        raise AssertionError("%s %s: expected 200, got %d %r" % (method, path, st, j))
    return j


def q(s):
    return urllib.parse.quote(s, safe="")


def status(d):
    return ok(d, "/v1/status")


def wait_conns(d, n):
    """Until the daemon counts exactly n connections (closed extras gone)."""
    wait_for(lambda: status(d)["connections"] == n, timeout=T,
             what="the daemon to count %d connections (has %r)" % (n, status(d)["connections"]))


def wait_ready(d, n=2, timeout=20):
    """Workers ready per /v1/workers (for daemons whose log the harness cannot see)."""
    def ready():
        try:
            st, j, _ = api(d, "/v1/workers")
        except OSError:
            return False
        return st == 200 and sum(1 for w in j if w.get("state") == "ready") >= n
    wait_for(lambda: ready() or d.proc.poll() is not None, timeout=timeout, what="workers ready")
    if d.proc.poll() is not None:
        raise AssertionError("audiogwd exited %d" % d.proc.returncode)


# ---------------------------------------------------------------- clients

OPEN = []   # every client socket, closed after each test


def connect(d, user, room, claims=None, **kw):
    ws = d.ws(user, room, claims=dict(claims or {}), **kw)
    OPEN.append(ws.sock)
    w = ws.recv_json(timeout=T)
    d.welcomes = getattr(d, "welcomes", 0) + 1
    if w.get("type") != "welcome":
        ws.sock.close()
        raise AssertionError("first message is not a welcome: %r" % (w,))
    ws.welcome, ws.user, ws.room = w, user, room
    ws.session, ws.ssrc, ws.worker = w["session"], w["ssrc"], w["worker"]
    return ws


def bye(ws):
    """A clean close: our close frame, then the server's."""
    try:
        ws.close()
        if ws.closed is None:
            ws.recv_close(timeout=T)
    except (OSError, ConnectionError, AssertionError, ValueError):
        pass
    finally:
        ws.sock.close()


def place(d, room, users, workers=2, claims=None):
    """users[i] connected to worker i % workers (extras closed cleanly)."""
    out = []
    for i, u in enumerate(users):
        want = i % workers
        for _ in range(100):
            c = connect(d, u, room, claims)
            if c.worker == want:
                out.append(c)
                break
            bye(c)
        else:
            raise AssertionError("could not place %s on worker %d" % (u, want))
    return out


def expect(ws, pred, what, timeout=T):
    """Reads until a JSON text message satisfies pred; returns it. Binary
    messages and other texts are skipped (and listed if nothing matches)."""
    seen = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("%s: timed out; saw %r" % (what, seen[-20:]))
        try:
            m = ws.recv(timeout=left)
        except socket.timeout:
            raise AssertionError("%s: timed out; saw %r" % (what, seen[-20:]))
        if m[0] == "close":
            raise AssertionError("%s: connection closed %r; saw %r" % (what, m, seen[-20:]))
        if m[0] == "binary":
            seen.append(("binary", len(m[1])))
            continue
        j = json.loads(m[1])
        if pred(j):
            return j
        seen.append(j)


def quiet_texts(ws, seconds=QUIET):
    """Everything that arrives for a while: (JSON texts, binaries, close code or None)."""
    texts, bins = [], []
    end = time.monotonic() + seconds
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return texts, bins, None
        try:
            m = ws.recv(timeout=left)
        except socket.timeout:
            return texts, bins, None
        if m[0] == "close":
            return texts, bins, m[1]
        if m[0] == "binary":
            bins.append(m[1])
        else:
            texts.append(json.loads(m[1]))


def binaries(ws, n, timeout=T):
    """The next n binary messages (texts skipped)."""
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("got %d of %d frames" % (len(out), n))
        try:
            m = ws.recv(timeout=left)
        except socket.timeout:
            raise AssertionError("got %d of %d frames" % (len(out), n))
        if m[0] == "close":
            raise AssertionError("closed %r after %d of %d frames" % (m, len(out), n))
        if m[0] == "binary":
            out.append(m[1])
    return out


def kicked_then_4001(tc, ws, reason=None):
    """The client gets {"type":"kicked",...} and then a close 4001."""
    j = expect(ws, lambda j: j.get("type") == "kicked", "kicked message for " + ws.user)
    tc.assertIsInstance(j.get("reason"), str, j)
    if reason is not None:
        tc.assertEqual(j, {"type": "kicked", "reason": reason})
    while True:
        m = ws.recv(timeout=T)
        if m[0] == "close":
            tc.assertEqual(m[1], 4001, "close code after kicked")
            return
        if m[0] == "text":
            tc.assertEqual(json.loads(m[1]).get("type"), "member",
                           "only member events may follow kicked, got %r" % (m,))


def ping_pong(tc, ws, ident=7):
    ws.send_json({"type": "ping", "id": ident})
    j = expect(ws, lambda j: j.get("type") == "pong", "pong")
    tc.assertEqual(j["id"], ident)


def handshake_status(d, user, room="r"):
    """101 (then closed) or the refusal's (status, body)."""
    try:
        c = d.ws(user, room)
    except HandshakeError as e:
        return e.status, e.body
    bye(c)
    return 101, ""


# ---------------------------------------------------------------- metrics

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """{(name, frozenset(labels)): value} and {name: type}; raises on a bad line."""
    samples, types = {}, {}
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split()
            if len(parts) >= 4 and parts[1] == "TYPE":
                types[parts[2]] = parts[3]
            elif not (len(parts) >= 3 and parts[1] == "HELP"):
                raise AssertionError("bad comment line in /metrics: %r" % line)
            continue
        m = SAMPLE.match(line)
        if not m:
            raise AssertionError("bad sample line in /metrics: %r" % line)
        labels = {}
        if m.group(3):
            rest = m.group(3)
            labels = dict(LABEL.findall(rest))
            if LABEL.sub("", rest).replace(",", "").strip():
                raise AssertionError("bad labels in /metrics: %r" % line)
        samples[(m.group(1), frozenset(labels.items()))] = float(m.group(4))
    return samples, types


def metrics(d, **kw):
    st, text, h = api(d, "/metrics", **kw)
    if st != 200:
        raise AssertionError("/metrics: %d %r" % (st, text))
    return parse_metrics(text)[0]


def msum(samples, name, **labels):
    """The sum of every series of name whose labels include labels."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


def series_of(samples, name):
    return [dict(ls) for (n, ls) in samples if n == name]


def values_of(samples, name):
    """{worker label: value} of a per-worker metric."""
    return {dict(ls)["worker"]: v for (n, ls), v in samples.items() if n == name}


# ================================================================= tests

class Case(unittest.TestCase):
    def tearDown(self):
        while OPEN:
            OPEN.pop().close()


class Probes(Case):
    def test_healthz_and_readyz(self):
        with Daemon(workers=2) as d:
            for path in ("/healthz", "/readyz"):
                st, j, h = api(d, path)
                self.assertEqual(st, 200, path)
                self.assertEqual(j, {"status": "ok"}, path)
                self.assertTrue(h["content-type"].startswith("application/json"), h)

    def test_drain_turns_readyz_503_and_healthz_stays_200(self):
        with Daemon(workers=2) as d:
            self.assertFalse(status(d)["draining"])
            st, j, _ = api(d, "/v1/drain", "POST")
            self.assertEqual(st, 200, j)
            self.assertIs(j.get("ok"), True, j)
            try:
                wait_for(lambda: api(d, "/readyz")[0] == 503, timeout=5, what="/readyz 503")
            except AssertionError:
                self.skipTest("POST /v1/drain does not make /readyz 503 yet "
                              "(drain not implemented)")
            self.assertEqual(api(d, "/healthz")[:2], (200, {"status": "ok"}))
            self.assertTrue(status(d)["draining"])


class Listings(Case):
    def test_status(self):
        with Daemon(workers=2) as d:
            t0 = time.monotonic()
            s = status(d)
            for k in ("version", "pid", "generation", "uptime_s", "workers", "connections",
                      "rooms", "draining"):
                self.assertIn(k, s)
            self.assertRegex(s["version"], r"^\d+\.\d+")
            self.assertEqual(s["pid"], d.proc.pid)
            self.assertIsInstance(s["generation"], int)
            self.assertGreaterEqual(s["generation"], 1)
            self.assertIsInstance(s["uptime_s"], int)
            self.assertGreaterEqual(s["uptime_s"], 0)
            self.assertEqual(s["workers"], 2)
            self.assertEqual(s["connections"], 0)
            self.assertEqual(s["rooms"], 0)
            self.assertIs(s["draining"], False)
            a, b = place(d, "st-r1", ["st-a", "st-b"])
            c = connect(d, "st-c", "st-r2")
            wait_conns(d, 3)
            s = status(d)
            self.assertEqual(s["rooms"], 2)
            self.assertEqual(s["workers"], 2)
            # uptime grows
            time.sleep(max(0.0, 2.2 - (time.monotonic() - t0)))
            self.assertGreaterEqual(status(d)["uptime_s"], 1)
            for x in (a, b, c):
                bye(x)
            wait_conns(d, 0)
            self.assertEqual(status(d)["rooms"], 0)

    def test_workers(self):
        with Daemon(workers=2) as d:
            now = time.time()
            a, b, c = place(d, "wk", ["wk-a", "wk-b", "wk-c"])   # 2 on worker 0, 1 on worker 1
            wait_conns(d, 3)
            ws = ok(d, "/v1/workers")
            self.assertIsInstance(ws, list)
            self.assertEqual(sorted(w["slot"] for w in ws), [0, 1], ws)
            self.assertEqual(sorted(w["pid"] for w in ws), sorted(d.worker_pids()))
            by_slot = {w["slot"]: w for w in ws}
            for w in ws:
                self.assertEqual(w["generation"], 1, w)
                self.assertEqual(w["state"], "ready", w)
                self.assertRegex(w["started_at"], RFC3339)
                if w["started_at"].endswith("Z"):
                    t = calendar.timegm(time.strptime(w["started_at"][:19], "%Y-%m-%dT%H:%M:%S"))
                    self.assertLess(abs(t - now), 120, w)
            self.assertEqual(by_slot[0]["connections"], 2)
            self.assertEqual(by_slot[1]["connections"], 1)

    def test_rooms_and_speakers(self):
        with Daemon(workers=2) as d:
            a, b = place(d, "rm-talk", ["rm-a", "rm-b"])
            c = connect(d, "rm-c", "rm-quiet")
            wait_conns(d, 3)
            rooms = {r["room"]: r for r in ok(d, "/v1/rooms")}
            self.assertEqual(set(rooms), {"rm-talk", "rm-quiet"})
            self.assertEqual(rooms["rm-talk"], {"room": "rm-talk", "members": 2, "speakers": 0})
            self.assertEqual(rooms["rm-quiet"], {"room": "rm-quiet", "members": 1, "speakers": 0})
            seq = [0]

            def talking():
                seq[0] += 1
                a.send_binary(rtp(seq[0]))
                rs = {r["room"]: r for r in ok(d, "/v1/rooms")}
                return rs["rm-talk"]["speakers"] == 1 and rs
            rs = wait_for(talking, timeout=T, step=0.1, what="a speaker in /v1/rooms")
            self.assertEqual(rs["rm-quiet"]["speakers"], 0)
            self.assertEqual(rs["rm-talk"]["members"], 2)
            # 2 s after the last frame the speaker no longer counts
            wait_for(lambda: {r["room"]: r for r in ok(d, "/v1/rooms")}["rm-talk"]["speakers"] == 0,
                     timeout=T, step=0.2, what="speakers back to 0 after silence")

    def test_room_detail_counts_the_sequence(self):
        """SPEC 4.3: each member's own RTP sequence is tracked; the room
        listing shows what it found (lost, duplicate, out of order)."""
        with Daemon(workers=1) as d:
            a, b = connect(d, "sq-a", "sq"), connect(d, "sq-b", "sq")
            wait_conns(d, 2)
            # 10 11 13: one lost; 13 again: a duplicate; 12 late: it fills
            # the gap (lost 0) and is out of order; 20: 14..19 lost
            for seq in (10, 11, 13, 13, 12, 20):
                a.send_binary(rtp(seq))
            binaries(b, 6)

            def counted():
                m = {m["user"]: m for m in ok(d, "/v1/rooms/sq")["members"]}["sq-a"]
                return m["frames_in"] == 6 and m
            m = wait_for(counted, timeout=T, what="frames_in of the speaker")
            self.assertEqual((m["frames_lost"], m["frames_duplicate"], m["frames_out_of_order"]),
                             (6, 1, 1), m)
            out = subprocess.run([AUDIOGWCTL, "-c", d.config, "room", "sq"], capture_output=True,
                                 text=True, timeout=30, cwd=d.dir)
            self.assertEqual(out.returncode, 0, out.stderr)
            head, row = out.stdout.splitlines()[1], [l for l in out.stdout.splitlines()
                                                     if l.startswith("sq-a ")][0]
            self.assertEqual(head.split()[-1], "LOST", out.stdout)
            self.assertEqual(row.split()[-1], "6", out.stdout)

    def test_room_detail(self):
        with Daemon(workers=2) as d:
            a, b = place(d, "rd", ["rd-a", "rd-b"])
            lis = connect(d, "rd-listener", "rd", claims={"perm": "listen"})
            wait_conns(d, 3)
            j = ok(d, "/v1/rooms/rd")
            self.assertEqual(j["room"], "rd")
            members = {m["user"]: m for m in j["members"]}
            self.assertEqual(set(members), {"rd-a", "rd-b", "rd-listener"})
            for c in (a, b, lis):
                m = members[c.user]
                self.assertEqual(m["session"], c.session)
                self.assertEqual(m["worker"], c.worker)
                self.assertEqual(m["ssrc"], c.ssrc)
                self.assertIs(m["muted"], False)
                self.assertEqual(m["perm"], "listen" if c is lis else "speak")
                for k in ("frames_in", "frames_out", "frames_dropped"):
                    self.assertEqual(m[k], 0, (k, m))
            for i in range(3):
                a.send_binary(rtp(i))
            binaries(b, 3)
            binaries(lis, 3)
            lis.send_binary(rtp(1))
            lis.send_binary(rtp(2))

            def counted():
                ms = {m["user"]: m for m in ok(d, "/v1/rooms/rd")["members"]}
                return (ms["rd-a"]["frames_in"] == 3 and ms["rd-b"]["frames_out"] == 3 and
                        ms["rd-listener"]["frames_out"] == 3 and
                        ms["rd-listener"]["frames_dropped"] == 2) and ms
            try:
                ms = wait_for(counted, timeout=T, what="per-session counters")
            except AssertionError:
                self.fail("per-session counters: %r" % ok(d, "/v1/rooms/rd")["members"])
            self.assertEqual(ms["rd-a"]["frames_out"], 0)
            self.assertEqual(ms["rd-a"]["frames_dropped"], 0)
            self.assertEqual(ms["rd-b"]["frames_in"], 0)
            for k in ("frames_lost", "frames_duplicate", "frames_out_of_order"):
                self.assertEqual(ms["rd-a"][k], 0, (k, ms["rd-a"]))
            # unknown room
            st, j, h = api(d, "/v1/rooms/no-such-room")
            self.assertEqual(st, 404)
            self.assertIsInstance(j, dict)
            self.assertIn("error", j)

    def test_sessions(self):
        with Daemon(workers=2, limits_extra=MANY) as d:
            s1, s2 = place(d, "ss-r", ["ss-u", "ss-u"])
            other = connect(d, "ss-other", "ss-r2")
            wait_conns(d, 3)
            got = ok(d, "/v1/sessions?user=ss-u")
            self.assertEqual(sorted(s["session"] for s in got), sorted([s1.session, s2.session]))
            by_id = {s["session"]: s for s in got}
            for c in (s1, s2):
                s = by_id[c.session]
                self.assertEqual(s["user"], "ss-u")
                self.assertEqual(s["room"], "ss-r")
                self.assertEqual(s["worker"], c.worker)
                self.assertEqual(s["ssrc"], c.ssrc)
                self.assertEqual(s["ip"], "127.0.0.1")
                self.assertRegex(s["connected_at"], RFC3339)
                self.assertIs(s["muted"], False)
            self.assertEqual(ok(d, "/v1/sessions?user=nobody"), [])
            everyone = ok(d, "/v1/sessions")
            self.assertEqual(sorted(s["session"] for s in everyone),
                             sorted([s1.session, s2.session, other.session]))


class Kick(Case):
    def test_kick_user_on_both_workers(self):
        with Daemon(workers=2, log_level="info", limits_extra=MANY) as d:
            k0, k1 = place(d, "kk", ["kk-user", "kk-user"])
            w0, w1 = place(d, "kk", ["kk-watch0", "kk-watch1"])
            wait_conns(d, 4)
            st, j, _ = api(d, "/v1/users/kk-user/kick", "POST", {"reason": "flooding"})
            self.assertEqual((st, j), (200, {"ok": True, "connections": 2}))
            kicked_then_4001(self, k0, "flooding")
            kicked_then_4001(self, k1, "flooding")
            # the others stay and see the kicked user leave
            for w in (w0, w1):
                expect(w, lambda j: j.get("type") == "member" and j.get("event") == "left"
                       and j.get("user") == "kk-user", "left event")
                ping_pong(self, w)
            wait_for(lambda: ok(d, "/v1/sessions?user=kk-user") == [], timeout=T,
                     what="the kicked sessions to be gone")
            wait_conns(d, 2)
            # the supervisor logs the kick
            kicks = [l for l in d.log_lines("kick") if l.get("user") == "kk-user"]
            self.assertTrue(kicks, "no 'kick' log line for kk-user")
            self.assertEqual(kicks[0]["level"], "info")
            self.assertEqual(kicks[0]["worker"], "supervisor")

    def test_kick_unknown_user_is_404(self):
        with Daemon(workers=2) as d:
            c = connect(d, "ku-someone", "ku")
            st, j, _ = api(d, "/v1/users/ku-nobody/kick", "POST", {"reason": "x"})
            self.assertEqual((st, j), (404, {"error": "no such user connected"}))
            ping_pong(self, c)

    def test_ban_without_connection_refuses_handshakes_until_it_ends(self):
        with Daemon(workers=2) as d:
            before = msum(metrics(d), "audiogw_handshake_rejected_total", reason="banned")
            t0 = time.monotonic()
            st, j, _ = api(d, "/v1/users/bn-user/kick", "POST", {"ban_ms": 3000})
            self.assertEqual((st, j), (200, {"ok": True, "connections": 0}))
            st, body = handshake_status(d, "bn-user")
            self.assertEqual(st, 403, body)
            self.assertEqual(json.loads(body), {"error": "banned"})
            # a second try lands on (probably) another worker: still banned
            for _ in range(3):
                if time.monotonic() - t0 > 2.0:
                    break
                st, body = handshake_status(d, "bn-user")
                self.assertEqual(st, 403, body)
            # others are not affected
            self.assertEqual(handshake_status(d, "bn-other")[0], 101)
            wait_for(lambda: msum(metrics(d), "audiogw_handshake_rejected_total",
                                  reason="banned") > before, timeout=T,
                     what="handshake_rejected_total{reason=banned} to grow")
            # the ban ends
            wait_for(lambda: handshake_status(d, "bn-user")[0] == 101, timeout=20, step=0.25,
                     what="the ban to end")
            self.assertGreater(time.monotonic() - t0, 2.8, "the ban ended early")

    def test_kick_with_ban_kicks_and_bans(self):
        with Daemon(workers=2) as d:
            c = connect(d, "kb-user", "kb")
            st, j, _ = api(d, "/v1/users/kb-user/kick", "POST",
                           {"reason": "timeout", "ban_ms": 60000})
            self.assertEqual((st, j), (200, {"ok": True, "connections": 1}))
            kicked_then_4001(self, c, "timeout")
            for _ in range(4):
                st, body = handshake_status(d, "kb-user")
                self.assertEqual(st, 403, body)

    def test_kick_session(self):
        with Daemon(workers=2, limits_extra=MANY) as d:
            s0, s1 = place(d, "ks", ["ks-user", "ks-user"])
            wait_conns(d, 2)
            st, j, _ = api(d, "/v1/sessions/%s/kick" % q(s1.session), "POST")
            self.assertEqual((st, j), (200, {"ok": True, "connections": 1}))
            kicked_then_4001(self, s1)
            ping_pong(self, s0)
            wait_for(lambda: [s["session"] for s in ok(d, "/v1/sessions?user=ks-user")]
                     == [s0.session], timeout=T, what="only the other session left")
            st, j, _ = api(d, "/v1/sessions/no-such-session/kick", "POST")
            self.assertEqual(st, 404, j)
            self.assertIn("error", j)
            ping_pong(self, s0, 8)


class Mute(Case):
    def test_admin_mute_and_unmute_across_workers(self):
        with Daemon(workers=2) as d:
            # the talker and one listener on worker 0, the other listener on worker 1
            m, far, near = place(d, "mu", ["mu-talker", "mu-far", "mu-near"])
            listeners = [far, near]
            wait_conns(d, 3)
            # relayed before the mute
            m.send_binary(rtp(1))
            for lis in listeners:
                binaries(lis, 1)

            st, j, _ = api(d, "/v1/users/mu-talker/mute", "POST")
            self.assertEqual((st, j), (200, {"ok": True, "connections": 1}))
            got = expect(m, lambda j: j.get("type") == "muted", "muted for the target")
            self.assertEqual(got, {"type": "muted", "by": "admin"})
            for lis in listeners:
                ev = expect(lis, lambda j: j.get("type") == "member" and j.get("event") == "muted"
                            and j.get("user") == "mu-talker", "member muted on worker %d" % lis.worker)
                self.assertEqual(ev.get("ssrc"), m.ssrc)
            wait_for(lambda: [x["muted"] for x in ok(d, "/v1/rooms/mu")["members"]
                              if x["user"] == "mu-talker"] == [True], timeout=T,
                     what="room listing to show muted")
            self.assertIs(ok(d, "/v1/sessions?user=mu-talker")[0]["muted"], True)

            dropped0 = msum(metrics(d), "audiogw_audio_frames_dropped_total", reason="muted")
            for i in range(10, 15):
                m.send_binary(rtp(i))
            wait_for(lambda: msum(metrics(d), "audiogw_audio_frames_dropped_total",
                                  reason="muted") >= dropped0 + 5, timeout=T,
                     what="5 frames counted as dropped (muted)")
            for lis in listeners:
                _, bins, _ = quiet_texts(lis, 0.5)
                self.assertEqual(bins, [], "a muted user's frames were relayed")

            st, j, _ = api(d, "/v1/users/mu-talker/unmute", "POST")
            self.assertEqual((st, j), (200, {"ok": True, "connections": 1}))
            got = expect(m, lambda j: j.get("type") == "unmuted", "unmuted for the target")
            self.assertEqual(got, {"type": "unmuted", "by": "admin"})
            for lis in listeners:
                ev = expect(lis, lambda j: j.get("type") == "member" and j.get("event") == "unmuted"
                            and j.get("user") == "mu-talker",
                            "member unmuted on worker %d" % lis.worker)
                self.assertEqual(ev.get("ssrc"), m.ssrc)
            m.send_binary(rtp(100))
            for lis in listeners:
                f = binaries(lis, 1)[0]
                self.assertEqual(struct.unpack("!H", f[2:4])[0], 100,
                                 "the first frame after unmute is not the unmuted one")

    def test_mute_unknown_user_is_404(self):
        with Daemon(workers=2) as d:
            for op in ("mute", "unmute"):
                st, j, _ = api(d, "/v1/users/mu-nobody/" + op, "POST")
                self.assertEqual((st, j), (404, {"error": "no such user connected"}), op)


class Broadcast(Case):
    def test_room_broadcast_reaches_members_on_both_workers_only(self):
        with Daemon(workers=2) as d:
            a, b = place(d, "bc", ["bc-a", "bc-b"])
            o0, o1 = place(d, "bc-other", ["bc-o0", "bc-o1"])
            wait_conns(d, 4)
            st, j, _ = api(d, "/v1/rooms/bc/broadcast", "POST", {"text": "hello room"})
            self.assertEqual((st, j), (200, {"ok": True, "connections": 2}))
            for c in (a, b):
                got = expect(c, lambda j: j.get("type") == "system", "system on %s" % c.user)
                self.assertEqual(got, {"type": "system", "text": "hello room"})
            # the other room's members get only their own broadcast, not the first one
            st, j, _ = api(d, "/v1/rooms/bc-other/broadcast", "POST", {"text": "second"})
            self.assertEqual((st, j), (200, {"ok": True, "connections": 2}))
            for c in (o0, o1):
                got = expect(c, lambda j: j.get("type") == "system", "system on %s" % c.user)
                self.assertEqual(got["text"], "second", "a broadcast leaked into another room")

    def test_broadcast_to_every_room(self):
        with Daemon(workers=2) as d:
            clients = place(d, "all-1", ["al-a", "al-b"]) + place(d, "all-2", ["al-c", "al-d"])
            clients.append(connect(d, "al-e", "all-3"))
            wait_conns(d, 5)
            for path, text in (("/v1/rooms/%2A/broadcast", "star encoded"),
                               ("/v1/rooms/*/broadcast", "star literal")):
                st, j, _ = api(d, path, "POST", {"text": text})
                self.assertEqual((st, j), (200, {"ok": True, "connections": 5}), path)
                for c in clients:
                    got = expect(c, lambda j: j.get("type") == "system", "system on " + c.user)
                    self.assertEqual(got, {"type": "system", "text": text}, path)

    def test_broadcast_errors(self):
        with Daemon(workers=2) as d:
            c = connect(d, "be-a", "be")
            st, j, _ = api(d, "/v1/rooms/be-none/broadcast", "POST", {"text": "x"})
            self.assertEqual(st, 404, j)
            self.assertIn("error", j)
            st, j, _ = api(d, "/v1/rooms/be/broadcast", "POST", {})
            self.assertEqual(st, 400, j)
            self.assertIn("error", j)
            ping_pong(self, c)


class Message(Case):
    def test_message_to_a_user_on_both_workers(self):
        with Daemon(workers=2, limits_extra=MANY) as d:
            u0, u1 = place(d, "ms", ["ms-user", "ms-user"])
            bystander = connect(d, "ms-by", "ms")
            wait_conns(d, 3)
            data = {"kind": "note", "n": [1, 2.5, None, True], "s": "h\u00e9llo \"q\""}
            st, j, _ = api(d, "/v1/users/ms-user/message", "POST", {"data": data})
            self.assertEqual((st, j), (200, {"ok": True, "connections": 2}))
            for c in (u0, u1):
                got = expect(c, lambda j: j.get("type") == "message", "message on %d" % c.worker)
                self.assertEqual(got, {"type": "message", "data": data})
            # any JSON value
            st, j, _ = api(d, "/v1/users/ms-user/message", "POST", {"data": "just text"})
            self.assertEqual(st, 200, j)
            for c in (u0, u1):
                got = expect(c, lambda j: j.get("type") == "message", "message on %d" % c.worker)
                self.assertEqual(got, {"type": "message", "data": "just text"})
            texts, _, _ = quiet_texts(bystander, 0.5)
            self.assertFalse([t for t in texts if t.get("type") == "message"], texts)

    def test_message_errors(self):
        with Daemon(workers=2) as d:
            c = connect(d, "me-user", "me")
            st, j, _ = api(d, "/v1/users/me-nobody/message", "POST", {"data": {"a": 1}})
            self.assertEqual((st, j), (404, {"error": "no such user connected"}))
            st, j, _ = api(d, "/v1/users/me-user/message", "POST", {"nodata": 1})
            self.assertEqual(st, 400, j)
            self.assertIn("error", j)
            texts, _, _ = quiet_texts(c, 0.5)
            self.assertEqual(texts, [])

    def test_path_parameters_are_percent_decoded(self):
        """A user id may hold any printable byte (SPEC 4.1; the daemon allows
        0x21-0x7e), '/' and '%' included, a room also spaces; the admin API
        addresses them percent-encoded, decoded once."""
        with Daemon(workers=2) as d:
            user, room = "team/a%b", "ro om/1"
            c = connect(d, user, room)
            st, j, _ = api(d, "/v1/users/%s/message" % q(user), "POST", {"data": 1})
            self.assertEqual((st, j), (200, {"ok": True, "connections": 1}),
                             "message to %r via %s" % (user, q(user)))
            self.assertEqual(expect(c, lambda j: j.get("type") == "message", "message"),
                             {"type": "message", "data": 1})
            st, j, _ = api(d, "/v1/rooms/%s" % q(room))
            self.assertEqual(st, 200, "GET /v1/rooms/%s: %r" % (q(room), j))
            self.assertEqual(j["room"], room)


class HttpErrors(Case):
    def test_unknown_route_wrong_method_bad_body(self):
        with Daemon(workers=2) as d:
            c = connect(d, "he-user", "he")
            for path in ("/nope", "/v1", "/v1/nope", "/v1/users/he-user", "/v1/users/he-user/ban",
                         "/v2/status"):
                st, j, h = api(d, path)
                self.assertEqual(st, 404, path)
                self.assertIsInstance(j, dict, "%s: a JSON error body" % path)
                self.assertIn("error", j, path)
            for method, path in (("POST", "/v1/status"), ("POST", "/v1/workers"),
                                 ("POST", "/v1/rooms"), ("GET", "/v1/users/he-user/kick"),
                                 ("GET", "/v1/users/he-user/mute"), ("GET", "/v1/drain"),
                                 ("DELETE", "/v1/status")):
                st, j, h = api(d, path, method)
                self.assertEqual(st, 405, "%s %s" % (method, path))
                self.assertIsInstance(j, dict, "%s %s: a JSON error body" % (method, path))
                self.assertIn("error", j)
            for raw in (b"{bad json", b"[1,2]", b'"text"', b"{\"reason\": }"):
                st, j, h = api(d, "/v1/users/he-user/kick", "POST", raw=raw)
                self.assertEqual(st, 400, raw)
                self.assertIsInstance(j, dict, "%r: a JSON error body" % raw)
                self.assertIn("error", j)
            # none of that kicked anybody
            self.assertEqual(len(ok(d, "/v1/sessions?user=he-user")), 1)
            ping_pong(self, c)


class ApiKey(Case):
    KEY = "k3y-0123456789-abcdef"

    def test_key_required_except_for_probes(self):
        with tempfile.TemporaryDirectory() as kd:
            path = os.path.join(kd, "admin.key")
            d = Daemon(workers=2, admin_extra="api_key_file = " + path)
            with open(path, "w") as f:
                f.write(self.KEY + "\n")
            with d:
                c = connect(d, "ak-user", "ak")
                cases = [("GET", "/v1/status", None), ("GET", "/metrics", None),
                         ("GET", "/v1/workers", None), ("GET", "/v1/rooms/ak", None),
                         ("POST", "/v1/users/ak-user/message", {"data": 1}),
                         ("POST", "/v1/users/ak-user/kick", {"reason": "x"}),
                         ("GET", "/v1/nope", None)]
                for method, p, body in cases:
                    for key in (None, "wrong", self.KEY + "x", self.KEY[:-1], ""):
                        st, j, _ = api(d, p, method, body, key=key)
                        self.assertEqual(st, 401, "%s %s with key %r" % (method, p, key))
                    st, j, _ = api(d, p, method, body, headers={"Authorization": self.KEY})
                    self.assertEqual(st, 401, "%s %s with a key but no Bearer" % (method, p))
                    st, j, _ = api(d, p, method, body,
                                   headers={"Authorization": "Basic " + self.KEY})
                    self.assertEqual(st, 401, "%s %s with Basic" % (method, p))
                for path in ("/healthz", "/readyz"):
                    self.assertEqual(api(d, path)[:2], (200, {"status": "ok"}), path)
                # the user was never kicked; with the key everything works
                st, j, _ = api(d, "/v1/status", key=self.KEY)
                self.assertEqual(st, 200, j)
                self.assertEqual(j["connections"], 1)
                st, text, _ = api(d, "/metrics", key=self.KEY)
                self.assertEqual(st, 200)
                self.assertIn("audiogw_connections", text)
                st, j, _ = api(d, "/v1/users/ak-user/kick", "POST", {"reason": "x"}, key=self.KEY)
                self.assertEqual((st, j), (200, {"ok": True, "connections": 1}))
                kicked_then_4001(self, c, "x")


class Metrics(Case):
    NAMES = {
        "audiogw_connections": "gauge",
        "audiogw_connections_accepted_total": "counter",
        "audiogw_handshake_rejected_total": "counter",
        "audiogw_active_speakers": "gauge",
        "audiogw_rooms": "gauge",
        "audiogw_audio_frames_in_total": "counter",
        "audiogw_audio_frames_out_total": "counter",
        "audiogw_audio_frames_dropped_total": "counter",
        "audiogw_audio_bytes_in_total": "counter",
        "audiogw_audio_bytes_out_total": "counter",
        "audiogw_outbound_queue_frames": "gauge",
        "audiogw_write_coalesce_seconds": "gauge",
        "audiogw_closes_total": "counter",
        "audiogw_relay_latency_seconds": "histogram",
        "audiogw_bus_messages_total": "counter",
        "audiogw_worker_restarts_total": "counter",
        "audiogw_audit_events_total": "counter",
        "audiogw_audit_dropped_total": "counter",
    }
    PER_WORKER = ("audiogw_connections", "audiogw_connections_accepted_total",
                  "audiogw_audio_frames_in_total", "audiogw_audio_frames_out_total",
                  "audiogw_audio_frames_dropped_total", "audiogw_write_coalesce_seconds")

    def test_write_coalesce_in_force_is_a_gauge(self):
        with Daemon(workers=1, limits_extra="write_coalesce = 30ms") as d:
            samples, _ = parse_metrics(api(d, "/metrics")[1])
            self.assertEqual(values_of(samples, "audiogw_write_coalesce_seconds"), {"0": 0.03})
        with Daemon(workers=2) as d:   # auto, idle: writes at every turn
            samples, _ = parse_metrics(api(d, "/metrics")[1])
            self.assertEqual(values_of(samples, "audiogw_write_coalesce_seconds"),
                             {"0": 0.0, "1": 0.0})

    def test_every_metric_of_the_spec_is_served(self):
        with Daemon(workers=2) as d:
            a, b = place(d, "mx", ["mx-a", "mx-b"])
            wait_conns(d, 2)
            st, text, h = api(d, "/metrics")
            self.assertEqual(st, 200)
            self.assertTrue(h["content-type"].startswith("text/plain"), h)
            samples, types = parse_metrics(text)
            names = {n for n, _ in samples}
            for name, typ in self.NAMES.items():
                self.assertEqual(types.get(name), typ, "# TYPE of " + name)
                if typ == "histogram":
                    for suffix in ("_bucket", "_sum", "_count"):
                        self.assertIn(name + suffix, names)
                else:
                    self.assertIn(name, names)
            # every sample belongs to a declared metric
            for n in names:
                base = re.sub(r"_(bucket|sum|count)$", "", n)
                self.assertTrue(n in types or types.get(base) == "histogram", n)
            reasons = {l.get("reason") for l in series_of(samples, "audiogw_audio_frames_dropped_total")}
            self.assertEqual(reasons, {"invalid", "rate", "muted", "queue", "listen_only"})
            self.assertIn("auth", {l.get("reason") for l in
                                   series_of(samples, "audiogw_handshake_rejected_total")})
            self.assertTrue(all("code" in l for l in series_of(samples, "audiogw_closes_total")))
            self.assertEqual({l.get("dir") for l in
                              series_of(samples, "audiogw_bus_messages_total")}, {"in", "out"})
            for name in self.PER_WORKER:
                self.assertEqual({l.get("worker") for l in series_of(samples, name)}, {"0", "1"},
                                 name + " per worker")
            # the histogram: le buckets up to +Inf, cumulative, +Inf == _count
            buckets = {}
            for (n, ls), v in samples.items():
                if n == "audiogw_relay_latency_seconds_bucket":
                    l = dict(ls)
                    self.assertIn("le", l)
                    key = tuple(sorted((k, x) for k, x in l.items() if k != "le"))
                    buckets.setdefault(key, []).append((float(l["le"]), v))
            self.assertTrue(buckets, "no histogram buckets")
            for key, bs in buckets.items():
                bs.sort()
                self.assertEqual(bs[-1][0], float("inf"), key)
                self.assertEqual([v for _, v in bs], sorted(v for _, v in bs), "not cumulative")
                count = samples.get(("audiogw_relay_latency_seconds_count", frozenset(key)))
                self.assertEqual(count, bs[-1][1], "+Inf bucket != _count for %r" % (key,))
            # gauges
            self.assertEqual(msum(samples, "audiogw_connections"), 2)
            self.assertEqual(msum(samples, "audiogw_rooms"), 1)
            self.assertEqual(msum(samples, "audiogw_connections_accepted_total"), d.welcomes,
                             "accepted_total vs upgrades completed (closed extras included)")

    def test_a_relayed_frame_moves_frames_in_and_out(self):
        with Daemon(workers=2) as d:
            a, b, c = place(d, "rl", ["rl-a", "rl-b", "rl-c"])   # a, c on 0; b on 1
            wait_conns(d, 3)
            m0 = metrics(d)
            frame_len = len(rtp(0))
            for i in range(5):
                a.send_binary(rtp(i))
            binaries(b, 5)
            binaries(c, 5)

            def moved():
                m = metrics(d)
                return (msum(m, "audiogw_audio_frames_in_total") -
                        msum(m0, "audiogw_audio_frames_in_total") == 5 and
                        msum(m, "audiogw_audio_frames_out_total") -
                        msum(m0, "audiogw_audio_frames_out_total") == 10) and m
            try:
                m1 = wait_for(moved, timeout=T, what="frame counters")
            except AssertionError:
                m = metrics(d)
                self.fail("frames_in +%d (want 5), frames_out +%d (want 10: one per recipient)" % (
                    msum(m, "audiogw_audio_frames_in_total") - msum(m0, "audiogw_audio_frames_in_total"),
                    msum(m, "audiogw_audio_frames_out_total") - msum(m0, "audiogw_audio_frames_out_total")))
            self.assertEqual(msum(m1, "audiogw_audio_frames_in_total", worker=str(a.worker)) -
                             msum(m0, "audiogw_audio_frames_in_total", worker=str(a.worker)), 5)
            self.assertGreaterEqual(msum(m1, "audiogw_audio_bytes_in_total") -
                                    msum(m0, "audiogw_audio_bytes_in_total"), 5 * frame_len)
            self.assertGreaterEqual(msum(m1, "audiogw_audio_bytes_out_total") -
                                    msum(m0, "audiogw_audio_bytes_out_total"), 10 * frame_len)
            # b is on the other worker: the frames crossed the bus
            self.assertGreater(msum(m1, "audiogw_bus_messages_total", dir="out"),
                               msum(m0, "audiogw_bus_messages_total", dir="out"))
            self.assertGreater(msum(m1, "audiogw_bus_messages_total", dir="in"),
                               msum(m0, "audiogw_bus_messages_total", dir="in"))
            self.assertEqual(msum(m1, "audiogw_audio_frames_dropped_total"),
                             msum(m0, "audiogw_audio_frames_dropped_total"))

    def test_a_refused_token_moves_handshake_rejected_auth(self):
        with Daemon(workers=2) as d:
            before = msum(metrics(d), "audiogw_handshake_rejected_total", reason="auth")
            with self.assertRaises(HandshakeError) as cm:
                WS(d.port, token=mint("ra-user", "r", secret=b"not-the-secret-" * 3))
            self.assertEqual(cm.exception.status, 401)
            with self.assertRaises(HandshakeError) as cm:
                WS(d.port)   # no token at all
            self.assertEqual(cm.exception.status, 401)
            try:
                wait_for(lambda: msum(metrics(d), "audiogw_handshake_rejected_total",
                                      reason="auth") == before + 2, timeout=T,
                         what="rejected{reason=auth} +2")
            except AssertionError:
                self.fail("handshake_rejected_total{reason=auth}: %d -> %d (want +2)" % (
                    before, msum(metrics(d), "audiogw_handshake_rejected_total", reason="auth")))
            self.assertEqual(msum(metrics(d), "audiogw_connections_accepted_total"), 0)

    def test_invalid_and_listen_only_frames_are_counted_as_dropped(self):
        with Daemon(workers=2) as d:
            a = connect(d, "iv-a", "iv")
            lis = connect(d, "iv-l", "iv", claims={"perm": "listen"})
            m0 = metrics(d)
            a.send_binary(b"\x80\x6f\x00")                    # shorter than an RTP header
            a.send_binary(struct.pack("!BBHII", 0x40, 111, 1, 960, 0) + b"v1")  # version 1
            lis.send_binary(rtp(1))

            def drops(reason):
                return (msum(metrics(d), "audiogw_audio_frames_dropped_total", reason=reason) -
                        msum(m0, "audiogw_audio_frames_dropped_total", reason=reason))
            try:
                wait_for(lambda: drops("invalid") == 2 and drops("listen_only") == 1, timeout=T,
                         what="drop counters")
            except AssertionError:
                self.fail("dropped{invalid} +%d (want 2), dropped{listen_only} +%d (want 1)" %
                          (drops("invalid"), drops("listen_only")))
            # and nothing of it reached the other member
            _, bins, _ = quiet_texts(lis, 0.5)
            self.assertEqual(bins, [])
            ping_pong(self, a)

    def test_counters_do_not_go_backwards_when_a_worker_is_killed(self):
        with Daemon(workers=2) as d:
            a, b = place(d, "kx", ["kx-a", "kx-b"])
            wait_conns(d, 2)
            for i in range(4):
                a.send_binary(rtp(i))
                b.send_binary(rtp(i))
            binaries(a, 4)
            binaries(b, 4)
            a.send_binary(b"bad")                                  # an invalid drop
            with self.assertRaises(HandshakeError):                 # an auth rejection
                WS(d.port, token="not.a.jwt")
            bye(connect(d, "kx-gone", "kx"))                        # a close
            wait_for(lambda: msum(metrics(d), "audiogw_audio_frames_dropped_total",
                                  reason="invalid") >= 1 and
                     msum(metrics(d), "audiogw_audio_frames_out_total") >= 8,
                     timeout=T, what="counters to settle")
            time.sleep(0.3)
            s0, types = parse_metrics(api(d, "/metrics")[1])
            restarts0 = msum(s0, "audiogw_worker_restarts_total")
            workers = {w["slot"]: w["pid"] for w in ok(d, "/v1/workers")}
            victim = workers[0]
            # both workers did something worth keeping
            for w in ("0", "1"):
                self.assertGreater(msum(s0, "audiogw_audio_frames_in_total", worker=w), 0, w)
            os.kill(victim, signal.SIGKILL)

            def replaced():
                ws = ok(d, "/v1/workers")
                ready = [w for w in ws if w["state"] == "ready"]
                return (len(ready) == 2 and victim not in [w["pid"] for w in ready] and
                        sorted(w["slot"] for w in ready) == [0, 1])
            wait_for(replaced, timeout=30, step=0.1, what="a replacement for worker 0")
            wait_for(lambda: msum(metrics(d), "audiogw_worker_restarts_total") >= restarts0 + 1,
                     timeout=T, what="worker_restarts_total to grow")
            s1 = metrics(d)
            self.assertEqual(msum(s1, "audiogw_worker_restarts_total"), restarts0 + 1)
            counters = [n for n, t in types.items() if t == "counter"]
            self.assertIn("audiogw_audio_frames_in_total", counters)
            went_back = []
            for name in counters:
                # the sum over workers of each label combination other than worker
                keys = {frozenset((k, v) for k, v in ls if k != "worker")
                        for (n, ls) in s0 if n == name}
                for key in keys:
                    before = msum(s0, name, **dict(key))
                    after = msum(s1, name, **dict(key))
                    if after < before:
                        went_back.append("%s%s: %g -> %g" % (name, dict(key), before, after))
            for suffix in ("_count", "_sum"):
                name = "audiogw_relay_latency_seconds" + suffix
                if msum(s1, name) < msum(s0, name):
                    went_back.append("%s: %g -> %g" % (name, msum(s0, name), msum(s1, name)))
            self.assertEqual(went_back, [], "counters went backwards after a worker restart")
            self.assertGreaterEqual(msum(s1, "audiogw_audio_frames_in_total"), 8)


class Logs(Case):
    LEVELS = ("debug", "info", "warn", "error")

    def check_lines(self, text, where, may_be_empty=False):
        lines = [l for l in text.splitlines() if l.strip()]
        if not may_be_empty:
            self.assertTrue(lines, "no log lines in " + where)
        out = []
        for l in lines:
            try:
                j = json.loads(l)
            except ValueError:
                self.fail("%s: a log line that is not JSON: %r" % (where, l))
            self.assertIsInstance(j, dict, l)
            for k in ("ts", "level", "worker", "event"):
                self.assertIn(k, j, "%s: %r lacks %s" % (where, l, k))
            self.assertRegex(j["ts"], RFC3339)
            self.assertIn(j["level"], self.LEVELS, l)
            self.assertTrue(isinstance(j["event"], str) and j["event"], l)
            self.assertTrue(isinstance(j["worker"], (int, str)), l)
            out.append(j)
        return out

    def test_every_line_is_a_json_object_with_the_common_fields(self):
        d = Daemon(workers=2, log_level="debug").start()
        try:
            a, b = place(d, "lg", ["lg-a", "lg-b"])
            a.send_binary(rtp(1))
            binaries(b, 1)
            with self.assertRaises(HandshakeError):
                WS(d.port, token="garbage")
            api(d, "/v1/users/lg-a/kick", "POST", {"reason": "log test"})
            api(d, "/v1/rooms/lg/broadcast", "POST", {"text": "x"})
            bye(b)
            wait_conns(d, 0)
            self.assertEqual(d.stop(signal.SIGTERM), 0)
            lines = self.check_lines(d.log_text(), "the daemon's output")
            workers = {j["worker"] for j in lines}
            self.assertTrue({0, 1} <= workers or {"0", "1"} <= workers,
                            "lines from both workers: %r" % workers)
        finally:
            d.kill()
            d.tmp.cleanup()

    def test_debug_logs_connect_and_disconnect(self):
        with Daemon(workers=2, log_level="debug") as d:
            c = connect(d, "dl-user", "dl-room")
            bye(c)

            def pair():
                con = [j for j in d.log_lines("connect") if j.get("session") == c.session]
                dis = [j for j in d.log_lines("disconnect") if j.get("session") == c.session]
                return con and dis and (con[0], dis[0])
            con, dis = wait_for(pair, timeout=T, what="connect and disconnect lines")
            for j in (con, dis):
                self.assertEqual(j["user"], "dl-user", j)
                self.assertEqual(j["room"], "dl-room", j)
                self.assertEqual(j["ip"], "127.0.0.1", j)
                self.assertEqual(j["level"], "debug", j)
                self.assertEqual(j["worker"], c.worker, j)
            self.assertEqual(dis.get("reason"), "client", dis)
            self.assertLessEqual(con["ts"], dis["ts"])
            # a kick is logged with its reason
            k = connect(d, "dl-kicked", "dl-room")
            api(d, "/v1/users/dl-kicked/kick", "POST", {"reason": "x"})
            kicked_then_4001(self, k)
            dis = wait_for(lambda: [j for j in d.log_lines("disconnect")
                                    if j.get("session") == k.session], timeout=T,
                           what="the kicked session's disconnect line")[0]
            self.assertEqual(dis.get("reason"), "kicked", dis)

    def test_info_level_hides_debug_lines(self):
        with Daemon(workers=2, log_level="info") as d:
            c = connect(d, "il-user", "il")
            bye(c)
            api(d, "/v1/rooms/%2A/broadcast", "POST", {"text": "x"})
            time.sleep(0.5)
            lines = self.check_lines(d.log_text(), "the daemon's output")
            self.assertEqual([j for j in lines if j["level"] == "debug"], [])

    def test_warn_level_has_no_info_lines(self):
        d = Daemon(workers=2, log_level="warn").start(wait=False)
        try:
            wait_ready(d)
            c = connect(d, "wl-user", "wl")
            api(d, "/v1/users/wl-user/kick", "POST", {"reason": "x"})   # an info line at info
            kicked_then_4001(self, c)
            c2 = connect(d, "wl-user2", "wl")
            bye(c2)
            victim = {w["slot"]: w["pid"] for w in ok(d, "/v1/workers")}[1]
            os.kill(victim, signal.SIGKILL)     # a worker dying unexpectedly: warn or error
            wait_for(lambda: d.log_text().strip(), timeout=T, what="a warn line")
            wait_for(lambda: sorted(w["pid"] for w in ok(d, "/v1/workers")
                                    if w["state"] == "ready" and w["pid"] != victim)
                     == sorted(p for p in d.worker_pids() if p != victim) and
                     len(d.worker_pids()) == 2, timeout=30, what="the replacement worker")
            time.sleep(0.5)
            lines = self.check_lines(d.log_text(), "the daemon's output")
            self.assertEqual([j for j in lines if j["level"] not in ("warn", "error")], [])
        finally:
            d.kill()
            d.tmp.cleanup()

    def test_log_file_and_reopen_on_sigusr1(self):
        with tempfile.TemporaryDirectory() as ld:
            path = os.path.join(ld, "audiogwd.log")
            d = Daemon(workers=2, log_level="debug\nfile = " + path).start(wait=False)
            try:
                def file_lines(p):
                    if not os.path.exists(p):
                        return []
                    with open(p, "rb") as f:
                        return self.check_lines(f.read().decode("utf-8", "replace"), p, True)

                wait_for(lambda: len([j for j in file_lines(path)
                                      if j["event"] == "worker_ready"]) >= 2 or
                         d.proc.poll() is not None, timeout=20, what="worker_ready in the file")
                self.assertIsNone(d.proc.poll(), "audiogwd exited")
                wait_ready(d)
                c = connect(d, "lf-before", "lf")
                bye(c)
                wait_for(lambda: [j for j in file_lines(path) if j["event"] == "disconnect"
                                  and j.get("session") == c.session], timeout=T,
                         what="a worker's line in the file")
                api(d, "/v1/users/lf-kick1/kick", "POST", {"ban_ms": 1})
                wait_for(lambda: [j for j in file_lines(path) if j["event"] == "kick"
                                  and j.get("user") == "lf-kick1"], timeout=T,
                         what="the supervisor's line in the file")

                rotated = path + ".1"
                os.rename(path, rotated)
                os.kill(d.proc.pid, signal.SIGUSR1)
                wait_for(lambda: os.path.exists(path), timeout=T,
                         what="a new file at %s after SIGUSR1" % path)
                api(d, "/v1/users/lf-kick2/kick", "POST", {"ban_ms": 1})
                wait_for(lambda: [j for j in file_lines(path) if j["event"] == "kick"
                                  and j.get("user") == "lf-kick2"], timeout=T,
                         what="the supervisor's next line in the new file")
                # the workers reopen too (they get the signal from the supervisor)
                time.sleep(2.0)
                for c in place(d, "lf", ["lf-after0", "lf-after1"]):
                    bye(c)
                    sess = c.session
                    wait_for(lambda: [j for j in file_lines(path) if j["event"] == "connect"
                                      and j.get("session") == sess], timeout=T,
                             what="worker %d's connect line in the new file" % c.worker)
                old = file_lines(rotated)
                self.assertFalse([j for j in old if j.get("user") in ("lf-kick2", "lf-after0",
                                                                        "lf-after1")],
                                 "lines written to the renamed file after SIGUSR1")
                self.assertTrue([j for j in old if j.get("user") == "lf-kick1"])
            finally:
                d.kill()
                d.tmp.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
