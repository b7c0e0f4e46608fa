"""The client protocol end to end (SPEC 4.1, 4.2, 4.3, 4.7) against the real
daemon with two workers: handshake rejections, the welcome message, room
membership across workers, audio relay (SSRC rewrite, no echo, no leak to
other rooms, invalid/listen/muted frames dropped), control messages (ping,
mute, join, errors) and the close codes for oversized frames and garbage.

Clients are spread on both workers by connecting until welcome.worker shows
the one wanted (SO_REUSEPORT hashes connections); the extras are closed.
Every user id and room name is unique, so tests sharing a daemon do not see
each other (and max_conns_per_user never applies)."""
import collections
import hashlib
import hmac
import itertools
import json
import os
import socket
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from agw import SECRET, Daemon, HandshakeError, WS, b64url, mint  # noqa: E402

T = 10.0          # generous timeouts: the machine is slow and shared
SETTLE = 0.5      # let a new worker's bus connect and subscriptions settle before audio
FAKE_SSRC = 0xDEADBEEF
_ids = itertools.count(1)


def uniq(prefix):
    return "%s-%d-%d" % (prefix, os.getpid(), next(_ids))


# ---------------------------------------------------------------- clients

def connect(d, sub, room, claims=None, **kw):
    """A WS that got its welcome; the welcome and a few of its fields are
    kept on the object (ws.welcome, ws.user, ws.ssrc, ws.worker)."""
    ws = d.ws(sub, room, claims=dict(claims or {}), **kw)
    try:
        w = ws.recv_json(timeout=T)
    except BaseException:
        ws.sock.close()
        raise
    if not isinstance(w, dict) or w.get("type") != "welcome":
        ws.sock.close()
        raise AssertionError("the first message after the upgrade is not a welcome: %r" % (w,))
    ws.welcome, ws.user, ws.room = w, sub, room
    ws.ssrc, ws.worker = w.get("ssrc"), w.get("worker")
    return ws


def bye(ws, wait=True):
    """A clean close: our close frame, then (if wait) the server's."""
    try:
        ws.close()
        if wait and ws.closed is None:
            ws.recv_close(timeout=T)
    except (OSError, ConnectionError, AssertionError, ValueError):
        pass
    finally:
        ws.sock.close()


def spread(d, room, counts, prefix="u", claims=None, attempts=60):
    """counts = {worker: n}: returns {worker: [n clients in room on that worker]}.
    Connects (bounded) until every worker has its share; extras are closed."""
    got = {w: [] for w in counts}
    extras = []
    try:
        for _ in range(attempts + sum(counts.values())):
            if all(len(got[w]) >= n for w, n in counts.items()):
                break
            c = connect(d, uniq(prefix), room, claims)
            if c.worker in got and len(got[c.worker]) < counts[c.worker]:
                got[c.worker].append(c)
            else:
                extras.append(c)
        if not all(len(got[w]) >= n for w, n in counts.items()):
            for l in got.values():
                for c in l:
                    bye(c, wait=False)
            raise AssertionError("could not get %r clients per worker in %d attempts (workers "
                                 "seen: %r)" % (counts, attempts, sorted({c.worker for c in extras})))
    finally:
        for c in extras:
            bye(c)
    return got


# ---------------------------------------------------------------- reading

def next_json(ws, pred, timeout=T, what="a message"):
    """The next text message (as JSON) satisfying pred; others (and binary
    messages) are skipped. Fails on timeout or close."""
    deadline = time.monotonic() + timeout
    seen = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("%s: timed out waiting for %s; last text seen: %r"
                                 % (ws.user, what, seen[-8:]))
        try:
            m = ws.recv(timeout=left)
        except socket.timeout:
            continue
        if m[0] == "close":
            raise AssertionError("%s: closed %d %r while waiting for %s; seen: %r"
                                 % (ws.user, m[1], m[2], what, seen[-8:]))
        if m[0] != "text":
            continue
        j = json.loads(m[1])
        if pred(j):
            return j
        seen.append(j)


def member_event(event, user):
    return lambda j: (j.get("type") == "member" and j.get("event") == event
                      and j.get("user") == user)


def read_for(ws, seconds):
    """Everything that arrives within seconds: (texts as JSON, binaries)."""
    texts, bins = [], []
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return texts, bins
        try:
            m = ws.recv(timeout=left)
        except socket.timeout:
            return texts, bins
        if m[0] == "close":
            raise AssertionError("%s: unexpected close %d %r" % (ws.user, m[1], m[2]))
        if m[0] == "text":
            texts.append(json.loads(m[1]))
        else:
            bins.append(m[1])


def collect_binary(ws, count, timeout=T, linger=0.5):
    """Binary messages until count arrived (or the deadline), then whatever
    more arrives within linger (to catch duplicates). Text is skipped."""
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < count:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            m = ws.recv(timeout=left)
        except socket.timeout:
            break
        if m[0] == "close":
            raise AssertionError("%s: unexpected close %d %r" % (ws.user, m[1], m[2]))
        if m[0] == "binary":
            out.append(m[1])
    if linger:
        out += read_for(ws, linger)[1]
    return out


def collect_until(ws, frame, timeout=T):
    """Binary messages up to and including the one equal to frame."""
    out = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("%s: timed out waiting for a frame; got %d others"
                                 % (ws.user, len(out)))
        try:
            m = ws.recv(timeout=left)
        except socket.timeout:
            continue
        if m[0] == "close":
            raise AssertionError("%s: unexpected close %d %r" % (ws.user, m[1], m[2]))
        if m[0] == "binary":
            out.append(m[1])
            if m[1] == frame:
                return out


def ping(ws, ident, timeout=T):
    ws.send_json({"type": "ping", "id": ident})
    return next_json(ws, lambda j: j.get("type") == "pong" and j.get("id") == ident,
                     timeout, "pong %r" % (ident,))


# ---------------------------------------------------------------- RTP

def rtp(seq, payload=b"", ts=None, ssrc=FAKE_SSRC, pt=111, b0=0x80, marker=False):
    b1 = (pt & 0x7f) | (0x80 if marker else 0)
    if ts is None:
        ts = seq * 960
    return struct.pack("!BBHII", b0, b1, seq & 0xffff, ts & 0xffffffff, ssrc) + payload


def relayed(frame, ssrc):
    """What a listener must receive: the frame with the sender's SSRC."""
    return frame[:8] + struct.pack("!I", ssrc) + frame[12:]


def make_frames(tag, n, size=60, seq0=1000):
    out = []
    for i in range(n):
        p = ("%s:%04d:" % (tag, i)).encode()
        out.append(rtp(seq0 + i, (p * (size // len(p) + 1))[:size]))
    return out


def send_all(ws, frames, rate=200.0):
    for f in frames:
        ws.send_binary(f)
        time.sleep(1.0 / rate)


# ---------------------------------------------------------------- tokens

def jwt(header, claims, key=SECRET, digest=hashlib.sha256, signature=None):
    h = b64url(json.dumps(header).encode())
    p = b64url(json.dumps(claims).encode())
    if signature is None:
        signature = b64url(hmac.new(key, (h + "." + p).encode(), digest).digest())
    return h + "." + p + "." + signature


def claims_for(sub, room, **extra):
    now = int(time.time())
    c = {"sub": sub, "room": room, "exp": now + 3600, "iat": now}
    c.update(extra)
    return c


# ---------------------------------------------------------------- tests

class Base(unittest.TestCase):
    """One daemon per class (started in well under a second); each test
    closes the clients it made."""
    daemon_kw = {}

    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(**cls.daemon_kw)
        try:
            cls.d.start()
        except BaseException:
            cls.d.__exit__(None, None, None)
            raise
        time.sleep(SETTLE)  # the workers' bus

    @classmethod
    def tearDownClass(cls):
        cls.d.__exit__(None, None, None)

    def setUp(self):
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            bye(c, wait=False)

    def connect(self, sub=None, room=None, claims=None, **kw):
        c = connect(self.d, sub or uniq("u"), room or uniq("room"), claims, **kw)
        self.clients.append(c)
        return c

    def spread(self, room, counts, claims=None, prefix="u"):
        got = spread(self.d, room, counts, prefix, claims)
        for l in got.values():
            self.clients.extend(l)
        return got

    def assert_frames(self, ws, got, expected):
        """got is exactly expected as a multiset (each frame exactly once)."""
        g, e = collections.Counter(got), collections.Counter(expected)
        if g != e:
            missing = sum((e - g).values())
            extra = g - e
            dups = sum(n - 1 for f, n in g.items() if n > 1)
            foreign = sum(n for f, n in extra.items() if f not in e)
            def desc(f):
                return "seq %d, %d bytes" % (struct.unpack("!H", f[2:4])[0], len(f)) \
                    if len(f) >= 12 else "%d bytes" % len(f)
            self.fail("%s (worker %s): expected %d frames, got %d: %d missing (%s), "
                      "%d duplicated, %d unexpected (%s)"
                      % (ws.user, ws.worker, len(expected), len(got), missing,
                         ", ".join(desc(f) for f in list(e - g)[:5]), dups, foreign,
                         ", ".join(desc(f) for f in list(extra)[:5] if f not in e)))


class Handshake(Base):
    """SPEC 4.1: rejections before the upgrade, as HTTP + {"error":"CODE"}."""

    def assert_rejected(self, token, status=401, **kw):
        with self.assertRaises(HandshakeError, msg="token %r... was accepted" % (token or "")[:40]) as cm:
            WS(self.d.port, token=token, timeout=T, **kw)
        e = cm.exception
        self.assertEqual(e.status, status, "body: %r" % e.body)
        try:
            body = json.loads(e.body)
        except ValueError:
            self.fail("the %d body is not JSON: %r" % (status, e.body))
        self.assertIsInstance(body, dict, e.body)
        self.assertIsInstance(body.get("error"), str, e.body)
        self.assertTrue(body["error"], e.body)
        return body["error"]

    def assert_accepted(self, token, sub, room, **kw):
        ws = WS(self.d.port, token=token, timeout=T, **kw)
        ws.user = sub
        self.clients.append(ws)
        w = ws.recv_json(timeout=T)
        self.assertEqual(w.get("type"), "welcome", w)
        self.assertEqual(w.get("user"), sub, w)
        self.assertEqual(w.get("room"), room, w)
        return w

    def test_missing_token_is_401(self):
        self.assert_rejected(None)
        self.assert_rejected("")

    def test_garbage_token_is_401(self):
        for t in ("garbage", "a.b.c", "..", "x" * 200, "eyJhbGciOiJIUzI1NiJ9.eyJ9.AAAA"):
            with self.subTest(token=t):
                self.assert_rejected(t)

    def test_bad_signature_is_401(self):
        t = mint(uniq("u"), uniq("room"), secret=b"another-secret-that-is-long-enough-0123456789")
        self.assert_rejected(t)
        # A valid token with its signature swapped for another token's.
        a = mint(uniq("u"), uniq("room")).split(".")
        b = mint(uniq("u"), uniq("room")).split(".")
        self.assert_rejected(a[0] + "." + a[1] + "." + b[2])

    def test_expired_beyond_leeway_is_401(self):
        self.assert_rejected(mint(uniq("u"), uniq("room"), ttl=-120))
        self.assert_rejected(mint(uniq("u"), uniq("room"), ttl=-3600))

    def test_expired_within_leeway_is_accepted(self):
        sub, room = uniq("u"), uniq("room")
        self.assert_accepted(mint(sub, room, ttl=-5), sub, room)

    def test_nbf_in_the_future_is_401(self):
        self.assert_rejected(mint(uniq("u"), uniq("room"), nbf=int(time.time()) + 300))

    def test_nbf_within_leeway_is_accepted(self):
        sub, room = uniq("u"), uniq("room")
        self.assert_accepted(mint(sub, room, nbf=int(time.time()) + 5), sub, room)

    def test_alg_none_and_other_algs_are_401(self):
        c = claims_for(uniq("u"), uniq("room"))
        self.assert_rejected(jwt({"alg": "none", "typ": "JWT"}, c, signature=""))
        self.assert_rejected(jwt({"alg": "none"}, c, signature=""))
        self.assert_rejected(jwt({"alg": "None", "typ": "JWT"}, c, signature=""))
        # Signed correctly with the secret, but not HS256 / not a configured key.
        self.assert_rejected(jwt({"alg": "HS512", "typ": "JWT"}, c, digest=hashlib.sha512))
        self.assert_rejected(jwt({"alg": "EdDSA", "typ": "JWT"}, c))
        self.assert_rejected(jwt({"typ": "JWT"}, c))

    def test_missing_required_claims_are_401(self):
        for missing in ("sub", "room", "exp"):
            with self.subTest(missing=missing):
                c = claims_for(uniq("u"), uniq("room"))
                del c[missing]
                self.assert_rejected(jwt({"alg": "HS256", "typ": "JWT"}, c))

    def test_same_claims_well_formed_are_accepted(self):
        # The control for the claim tests above: the same construction works.
        sub, room = uniq("u"), uniq("room")
        self.assert_accepted(jwt({"alg": "HS256", "typ": "JWT"}, claims_for(sub, room)), sub, room)

    def test_token_longer_than_4096_bytes_is_401(self):
        t = mint(uniq("u"), uniq("room"), pad="x" * 3300)  # validly signed, only too long
        self.assertGreater(len(t), 4096)
        self.assert_rejected(t)
        self.assert_rejected(None, headers={"Authorization": "Bearer " + t})

    def test_token_just_under_4096_bytes_is_accepted(self):
        sub, room = uniq("u"), uniq("room")
        n = 3200
        t = mint(sub, room, pad="x" * n)
        while len(t) > 4096:
            n -= 8
            t = mint(sub, room, pad="x" * n)
        self.assertGreater(len(t), 3900)
        self.assert_accepted(t, sub, room)

    def test_token_in_authorization_bearer_header(self):
        sub, room = uniq("u"), uniq("room")
        self.assert_accepted(None, sub, room,
                             headers={"Authorization": "Bearer " + mint(sub, room)})
        self.assert_rejected(None, headers={"Authorization": "Bearer garbage"})
        self.assert_rejected(None, headers={"Authorization": "Bearer " + mint(
            uniq("u"), uniq("room"), ttl=-120)})

    def test_token_in_query(self):
        sub, room = uniq("u"), uniq("room")
        self.assert_accepted(mint(sub, room), sub, room)

    def test_wrong_path_is_404(self):
        self.assert_rejected(mint(uniq("u"), uniq("room")), status=404, path="/v1/nope")
        self.assert_rejected(mint(uniq("u"), uniq("room")), status=404, path="/v1/audio/x")
        self.assert_rejected(None, status=404, path="/")


class TokenNotLogged(unittest.TestCase):
    def test_token_never_appears_in_the_log(self):
        # Debug level: the token must not be logged at any level.
        with Daemon(log_level="debug") as d:
            tokens = []

            def attempt(token, **kw):
                tokens.append(token)
                try:
                    ws = WS(d.port, token=kw.pop("query", token), timeout=T, **kw)
                except HandshakeError:
                    return
                try:
                    ws.recv_json(timeout=T)
                finally:
                    bye(ws)

            attempt(mint(uniq("u"), uniq("room")))
            t = mint(uniq("u"), uniq("room"))
            attempt(t, query=None, headers={"Authorization": "Bearer " + t})
            attempt(mint(uniq("u"), uniq("room"), secret=b"another-secret-that-is-long-enough-012"))
            attempt(mint(uniq("u"), uniq("room"), ttl=-120))
            attempt(mint(uniq("u"), uniq("room"), nbf=int(time.time()) + 300))
            attempt(mint(uniq("u"), uniq("room"), pad="y" * 3300))
            attempt(jwt({"alg": "none"}, claims_for(uniq("u"), uniq("room")), signature=""))
            attempt(mint(uniq("u"), uniq("room")), path="/v1/elsewhere")
            time.sleep(0.5)
            log = d.log_text()
            self.assertTrue(log.strip(), "the daemon logged nothing at all")
            for t in tokens:
                parts = t.split(".")
                self.assertNotIn(t, log)
                self.assertNotIn(parts[1], log, "a token's claims part is in the log")
                if len(parts[2]) >= 16:
                    self.assertNotIn(parts[2], log, "a token's signature is in the log")


class Welcome(Base):
    """SPEC 4.2: the welcome message; members across workers; joined/left."""

    def test_welcome_fields(self):
        sub, room = uniq("alice"), uniq("room")
        c = self.connect(sub, room)
        w = c.welcome
        self.assertEqual(w["type"], "welcome")
        self.assertIsInstance(w.get("session"), str, w)
        self.assertTrue(w["session"], w)
        self.assertEqual(w.get("user"), sub)
        self.assertEqual(w.get("room"), room)
        self.assertIs(type(w.get("ssrc")), int, w)
        self.assertNotEqual(w["ssrc"], 0, w)
        self.assertTrue(0 < w["ssrc"] < 2 ** 32, w)
        self.assertIs(type(w.get("worker")), int, w)
        self.assertIn(w["worker"], (0, 1), w)
        self.assertEqual(w.get("heartbeat_s"), 20, w)
        self.assertIsInstance(w.get("resume"), str, w)
        self.assertTrue(w["resume"], w)
        self.assertEqual(w.get("members"), [], "a fresh room has no other members: %r" % (w,))

    def test_ssrc_and_session_unique_across_workers(self):
        clients = []
        for _ in range(3):
            got = self.spread(uniq("room"), {0: 3, 1: 3})
            clients += got[0] + got[1]
        ssrcs = [c.ssrc for c in clients]
        self.assertEqual(len(set(ssrcs)), len(ssrcs), "duplicate ssrc: %r" % ssrcs)
        self.assertNotIn(0, ssrcs)
        sessions = [c.welcome["session"] for c in clients]
        self.assertEqual(len(set(sessions)), len(sessions), "duplicate session: %r" % sessions)
        self.assertEqual({c.worker for c in clients}, {0, 1})

    def test_members_from_both_workers_in_welcome_and_joined_events(self):
        room = uniq("room")
        got = self.spread(room, {0: 2, 1: 2})
        old = got[0] + got[1]
        expected = {(c.user, c.ssrc) for c in old}
        # The extras closed by spread() must be gone from both workers'
        # view: retry briefly if a leave is still on the bus.
        deadline = time.monotonic() + T
        while True:
            time.sleep(SETTLE)
            n = self.connect(uniq("new"), room)
            members = n.welcome.get("members")
            self.assertIsInstance(members, list, n.welcome)
            seen = {(m.get("user"), m.get("ssrc")) for m in members}
            if seen == expected or time.monotonic() > deadline:
                break
            self.clients.remove(n)
            bye(n)
        self.assertEqual(seen, expected, "welcome.members: %r" % (members,))
        self.assertEqual(len(members), len(expected), members)
        self.assertNotIn(n.user, {m.get("user") for m in members}, "the joiner is listed")
        for m in members:
            self.assertIs(m.get("muted"), False, m)
        for c in old:
            j = next_json(c, member_event("joined", n.user), what="joined of " + n.user)
            self.assertEqual(j.get("ssrc"), n.ssrc, j)

    def test_burst_of_joins_and_a_welcome_larger_than_one_write(self):
        """250 members with long names: an early member gets every joined
        event even though they outnumber its control queue (32) within a few
        loop turns, and the last joiner's welcome (~40 KB, more than the 32
        KiB a worker gathers per write) arrives whole."""
        room = uniq("big")
        first = self.connect(uniq("first"), room)
        names = []
        for i in range(250):
            name = uniq("m" * 100)
            names.append(name)
            self.connect(name, room)
        last = self.connect(uniq("last"), room)
        members = {m["user"] for m in last.welcome["members"]}
        self.assertEqual(members, set(names) | {first.user})
        # members on the other worker come over the bus: any order
        want = set(names) | {last.user}
        while want:
            j = next_json(first, lambda j: j.get("type") == "member" and j.get("event") == "joined",
                          what="joined of %d more, e.g. %s" % (len(want), min(want)))
            want.discard(j["user"])

    def test_left_when_a_member_closes(self):
        room = uniq("room")
        got = self.spread(room, {0: 2, 1: 2})
        leaver = got[0][0]
        others = got[0][1:] + got[1]
        self.clients.remove(leaver)
        bye(leaver)
        for c in others:
            j = next_json(c, member_event("left", leaver.user), what="left of " + leaver.user)
            self.assertEqual(j.get("ssrc"), leaver.ssrc, j)
        n = self.connect(uniq("new"), room)
        self.assertNotIn(leaver.user, {m.get("user") for m in n.welcome["members"]},
                         n.welcome)
        # The same from the other worker.
        leaver = got[1][0]
        self.clients.remove(leaver)
        bye(leaver)
        for c in [got[0][1], got[1][1], n]:
            j = next_json(c, member_event("left", leaver.user), what="left of " + leaver.user)
            self.assertEqual(j.get("ssrc"), leaver.ssrc, j)


class Configured(Base):
    """Settings that change what clients see. resume_window is short so that a
    vanished client's `left` (SPEC 4.6: after the window) comes quickly."""
    daemon_kw = dict(server_extra="resume_window = 1s",
                     heartbeat_extra="interval = 7s\ntimeout = 30s",
                     limits_extra="max_frame_bytes = 200\nwrite_coalesce = 30ms")

    def test_write_coalesce_keeps_every_frame_in_order(self):
        room = uniq("room")
        got = self.spread(room, {0: 2, 1: 1})
        s, l0, l1 = got[0][0], got[0][1], got[1][0]
        time.sleep(SETTLE)
        frames = make_frames("c", 40)
        for f in frames:
            s.send_binary(f)
        want = [relayed(f, s.ssrc) for f in frames]
        for l in (l0, l1):
            self.assertEqual(collect_until(l, want[-1]), want)

    def test_heartbeat_s_follows_the_config(self):
        self.assertEqual(self.connect().welcome.get("heartbeat_s"), 7)

    def test_left_when_a_client_vanishes(self):
        room = uniq("room")
        got = self.spread(room, {0: 2, 1: 2})
        gone = got[1][0]
        self.clients.remove(gone)
        gone.abort()
        for c in got[0] + got[1][1:]:
            j = next_json(c, member_event("left", gone.user), timeout=20,
                          what="left of vanished " + gone.user)
            self.assertEqual(j.get("ssrc"), gone.ssrc, j)

    def test_max_frame_bytes_from_config(self):
        room = uniq("room")
        got = self.spread(room, {0: 2, 1: 1})
        s, l0, l1 = got[0][0], got[0][1], got[1][0]
        time.sleep(SETTLE)
        ok = rtp(1, b"o" * 188)
        self.assertEqual(len(ok), 200)
        s.send_binary(ok)
        for l in (l0, l1):
            self.assertEqual(collect_until(l, relayed(ok, s.ssrc)), [relayed(ok, s.ssrc)])
        s.send_binary(rtp(2, b"b" * 189))
        self.assertEqual(s.recv_close(timeout=T), 1009)
        self.clients.remove(s)
        s.sock.close()


class Audio(Base):
    """SPEC 4.3: binary RTP frames relayed to every other member once."""

    def test_every_frame_reaches_every_other_member_once(self):
        base = uniq("room")
        room = base + "ab"
        got = self.spread(room, {0: 2, 1: 2})
        # Other rooms, on both workers, one of them a prefix of the room's name.
        others = []
        for r in (base + "a", base + "abc", base):
            o = self.spread(r, {0: 1, 1: 1})
            others += o[0] + o[1]
        a, b = got[0]
        c, d = got[1]
        time.sleep(SETTLE)
        fa, fc = make_frames(uniq("A"), 50), make_frames(uniq("C"), 50)
        send_all(a, fa)
        send_all(c, fc)
        ea = [relayed(f, a.ssrc) for f in fa]
        ec = [relayed(f, c.ssrc) for f in fc]
        self.assert_frames(a, collect_binary(a, len(ec)), ec)
        self.assert_frames(b, collect_binary(b, len(ea + ec)), ea + ec)
        self.assert_frames(c, collect_binary(c, len(ea)), ea)
        self.assert_frames(d, collect_binary(d, len(ea + ec)), ea + ec)
        for o in others:
            bins = read_for(o, 0.2)[1]
            self.assertEqual(bins, [], "%s in room %s got %d frames of another room"
                             % (o.user, o.room, len(bins)))

    def test_header_variants_relayed_unchanged_but_ssrc(self):
        room = uniq("room")
        got = self.spread(room, {0: 2, 1: 1})
        s, l0, l1 = got[0][0], got[0][1], got[1][0]
        time.sleep(SETTLE)
        ext = struct.pack("!HH", 0xBEDE, 1) + b"\x10\xaa\x00\x00"   # one-byte header extension
        frames = [
            rtp(10),                                             # header only: 12 bytes
            rtp(11, b"m" * 50, marker=True),
            rtp(12, b"pcmu" * 20, pt=0),
            rtp(13, b"pcma" * 20, pt=8),
            rtp(14, b"l16!" * 20, pt=96),
            rtp(15, ext + b"x" * 30, b0=0x90),                   # X=1
            rtp(0xFFFF, b"wrap", ts=0xFFFFFFFF),
            rtp(16, b"z" * (1500 - 12)),                         # exactly max_frame_bytes
        ]
        send_all(s, frames)
        exp = [relayed(f, s.ssrc) for f in frames]
        for l in (l0, l1):
            self.assert_frames(l, collect_binary(l, len(exp)), exp)
        self.assertEqual(read_for(s, 0.2)[1], [], "the sender got its own frames back")

    def test_back_to_back_frames_are_all_relayed(self):
        # Frames written without a pause reach the gateway in one TCP read,
        # a frame straddling its read boundary arrives in pieces: still one
        # message each. 20 frames stay under the burst and the queue sizes.
        room = uniq("room")
        got = self.spread(room, {0: 2, 1: 1})
        s, l0, l1 = got[0][0], got[0][1], got[1][0]
        time.sleep(SETTLE)
        fs = make_frames(uniq("B"), 20, size=600)
        s.sock.sendall(b"".join(self.masked_binary(f) for f in fs))
        exp = [relayed(f, s.ssrc) for f in fs]
        for l in (l0, l1):
            self.assert_frames(l, collect_binary(l, len(exp)), exp)

    @staticmethod
    def masked_binary(payload):
        m = os.urandom(4)
        head = bytes([0x82]) + (bytes([0x80 | len(payload)]) if len(payload) < 126
                                else bytes([0x80 | 126]) + struct.pack("!H", len(payload)))
        return head + m + bytes(b ^ m[i % 4] for i, b in enumerate(payload))

    def test_sender_never_receives_its_own_frames(self):
        room = uniq("room")
        got = self.spread(room, {0: 1, 1: 1})
        s, l = got[0][0], got[1][0]
        time.sleep(SETTLE)
        fs = make_frames(uniq("S"), 20)
        send_all(s, fs)
        exp = [relayed(f, s.ssrc) for f in fs]
        self.assert_frames(l, collect_binary(l, len(exp)), exp)
        self.assertEqual(read_for(s, 0.5)[1], [], "echoed to the sender")

    def test_invalid_frames_are_dropped_and_the_connection_stays(self):
        room = uniq("room")
        got = self.spread(room, {0: 2, 1: 1})
        s, l0, l1 = got[0][0], got[0][1], got[1][0]
        time.sleep(SETTLE)
        good = rtp(7, b"after-the-garbage")
        invalid = [
            b"",
            b"\x80",
            rtp(1)[:11],                        # shorter than 12
            rtp(2, b"v0", b0=0x00),             # version 0
            rtp(3, b"v1", b0=0x40),             # version 1
            rtp(4, b"v3", b0=0xC0),             # version 3
            rtp(5, b"cc1" + b"\0" * 8, b0=0x81),   # CC = 1
            rtp(6, b"cc15" + b"\0" * 64, b0=0x8F),  # CC = 15
            # longer than lws's receive buffer: gathered from pieces, then refused
            rtp(8, b"v0-long" * 60, b0=0x00),
            rtp(9, b"cc2-long" * 50, b0=0x82),
        ]
        send_all(s, invalid)
        s.send_binary(good)
        for l in (l0, l1):
            self.assertEqual(collect_until(l, relayed(good, s.ssrc)), [relayed(good, s.ssrc)],
                             "%s received invalid frames" % l.user)
            self.assertEqual(read_for(l, 0.3)[1], [])
        self.assertEqual(ping(s, 1)["id"], 1)

    def test_listen_permission_frames_are_not_relayed(self):
        room = uniq("room")
        got = self.spread(room, {0: 1, 1: 1})
        speaker, other = got[1][0], got[0][0]
        listener = self.connect(uniq("listener"), room, claims={"perm": "listen"})
        time.sleep(SETTLE)
        send_all(listener, make_frames(uniq("L"), 10))
        time.sleep(SETTLE)
        marker = rtp(99, b"speaker-marker")
        speaker.send_binary(marker)
        exp = relayed(marker, speaker.ssrc)
        self.assertEqual(collect_until(other, exp), [exp], "frames of a listen session relayed")
        self.assertEqual(collect_until(listener, exp), [exp], "a listener receives audio")
        self.assertEqual(read_for(speaker, 0.3)[1], [], "frames of a listen session relayed")
        self.assertEqual(ping(listener, 2)["id"], 2)

    def test_muted_session_frames_are_not_relayed(self):
        room = uniq("room")
        got = self.spread(room, {0: 2, 1: 1})
        s, l0, l1 = got[0][0], got[0][1], got[1][0]
        time.sleep(SETTLE)
        s.send_json({"type": "mute"})
        for l in (l0, l1):
            next_json(l, member_event("muted", s.user), what="muted of " + s.user)
        send_all(s, make_frames(uniq("M"), 10))
        s.send_json({"type": "unmute"})
        for l in (l0, l1):
            next_json(l, member_event("unmuted", s.user), what="unmuted of " + s.user)
        after = make_frames(uniq("U"), 5, seq0=2000)
        send_all(s, after)
        exp = [relayed(f, s.ssrc) for f in after]
        for l in (l0, l1):
            self.assert_frames(l, collect_binary(l, len(exp), linger=0.5), exp)

    def test_oversized_frame_closes_1009(self):
        room = uniq("room")
        got = self.spread(room, {0: 1, 1: 1})
        s, l = got[0][0], got[1][0]
        time.sleep(SETTLE)
        s.send_binary(rtp(1, b"o" * (1501 - 12)))
        self.assertEqual(s.recv_close(timeout=T), 1009)
        self.clients.remove(s)
        s.sock.close()
        self.assertEqual(read_for(l, 0.5)[1], [], "a part of the oversized frame was relayed")

    def test_oversized_frame_is_not_buffered_whole(self):
        # The header announces 1 MB; only 4 KiB follow. The gateway must
        # close 1009 without waiting for the rest.
        s = self.connect()
        s.send_frame(0x2, rtp(1, b"p" * 4084), declared_len=1000000)
        self.assertEqual(s.recv_close(timeout=T), 1009)
        self.clients.remove(s)
        s.sock.close()

    def test_oversized_fragmented_message_closes_1009(self):
        s = self.connect()
        s.send_frame(0x2, rtp(1, b"f" * 988), fin=False)
        s.send_frame(0x0, b"g" * 1000, fin=True)
        self.assertEqual(s.recv_close(timeout=T), 1009)
        self.clients.remove(s)
        s.sock.close()


class Control(Base):
    """SPEC 4.2: JSON control messages."""

    def test_ping_pong(self):
        c = self.connect()
        before = time.time() * 1000
        p = ping(c, 7)
        after = time.time() * 1000
        self.assertEqual(p.get("type"), "pong")
        self.assertEqual(p.get("id"), 7)
        self.assertIs(type(p.get("t")), int, p)
        self.assertLess(abs(p["t"] - (before + after) / 2), 5000, "t is not unix ms now: %r" % p)
        self.assertEqual(ping(c, "abc")["id"], "abc")

    def test_bad_request_keeps_the_connection(self):
        c = self.connect()
        garbage = ['{"type":', "[1,2,3]", '{"type":"dance"}', '{"id":1}', '"ping"']
        for i, g in enumerate(garbage):
            with self.subTest(message=g):
                c.send_text(g)
                e = next_json(c, lambda j: isinstance(j, dict) and j.get("type") == "error",
                              what="an error for %r" % g)
                self.assertEqual(e.get("code"), "bad_request", e)
                self.assertEqual(ping(c, 100 + i)["id"], 100 + i)

    def test_more_than_10_errors_in_10s_closes_1008(self):
        c = self.connect()
        for i in range(10):
            c.send_text("{not json %d" % i)
            e = next_json(c, lambda j: j.get("type") == "error", what="error %d" % i)
            self.assertEqual(e.get("code"), "bad_request", e)
        self.assertEqual(ping(c, 1)["id"], 1, "closed after only 10 errors")
        c.send_text("{not json 11")
        self.assertEqual(c.recv_close(timeout=T), 1008)

    def test_mute_and_unmute_events(self):
        room = uniq("room")
        got = self.spread(room, {0: 2, 1: 1})
        m, l0, l1 = got[0][0], got[0][1], got[1][0]
        m.send_json({"type": "mute"})
        for l in (l0, l1):
            j = next_json(l, member_event("muted", m.user), what="muted of " + m.user)
            self.assertEqual(j.get("ssrc"), m.ssrc, j)
        n = self.connect(uniq("late"), room)
        by_user = {x.get("user"): x for x in n.welcome["members"]}
        self.assertIs(by_user.get(m.user, {}).get("muted"), True, n.welcome)
        self.assertIs(by_user.get(l0.user, {}).get("muted"), False, n.welcome)
        self.assertIs(by_user.get(l1.user, {}).get("muted"), False, n.welcome)
        m.send_json({"type": "unmute"})
        for l in (l0, l1, n):
            j = next_json(l, member_event("unmuted", m.user), what="unmuted of " + m.user)
            self.assertEqual(j.get("ssrc"), m.ssrc, j)
        n2 = self.connect(uniq("later"), room)
        by_user = {x.get("user"): x for x in n2.welcome["members"]}
        self.assertIs(by_user.get(m.user, {}).get("muted"), False, n2.welcome)

    def test_join_switches_room(self):
        r1, r2 = uniq("room"), uniq("room")
        a = self.spread(r1, {0: 1, 1: 1})
        b = self.spread(r2, {0: 1, 1: 1})
        a0, a1, b0, b1 = a[0][0], a[1][0], b[0][0], b[1][0]
        j = self.connect(uniq("joiner"), r1, claims={"rooms": [r2]})
        for x in (a0, a1):
            next_json(x, member_event("joined", j.user), what="joined of " + j.user)
        j.send_json({"type": "join", "room": r2})
        ans = next_json(j, lambda m: m.get("type") in ("joined", "error"), what="joined")
        self.assertEqual(ans.get("type"), "joined", ans)
        self.assertEqual(ans.get("room"), r2, ans)
        self.assertIsInstance(ans.get("members"), list, ans)
        self.assertEqual({(m.get("user"), m.get("ssrc")) for m in ans["members"]},
                         {(b0.user, b0.ssrc), (b1.user, b1.ssrc)}, ans)
        for m in ans["members"]:
            self.assertIs(m.get("muted"), False, m)
        for x in (a0, a1):
            e = next_json(x, member_event("left", j.user), what="left of " + j.user)
            self.assertEqual(e.get("ssrc"), j.ssrc, e)
        for x in (b0, b1):
            e = next_json(x, member_event("joined", j.user), what="joined of " + j.user)
            self.assertEqual(e.get("ssrc"), j.ssrc, e)
        time.sleep(SETTLE)
        fj, fa, fb = (make_frames(uniq(t), 20) for t in ("J", "A", "B"))
        send_all(j, fj)
        send_all(a0, fa)
        send_all(b1, fb)
        ej = [relayed(f, j.ssrc) for f in fj]
        ea = [relayed(f, a0.ssrc) for f in fa]
        eb = [relayed(f, b1.ssrc) for f in fb]
        self.assert_frames(b0, collect_binary(b0, 40), ej + eb)
        self.assert_frames(b1, collect_binary(b1, 20), ej)
        self.assert_frames(j, collect_binary(j, 20), eb)
        self.assert_frames(a1, collect_binary(a1, 20), ea)
        self.assert_frames(a0, read_for(a0, 0.3)[1], [])

    def test_join_forbidden(self):
        room = uniq("room")
        allowed = uniq("room")
        speaker = self.spread(room, {0: 1, 1: 1})[1][0]
        cases = [("rooms", {"rooms": [allowed]}), ("no rooms", {})]
        for name, claims in cases:
            with self.subTest(case=name):
                c = self.connect(uniq("j"), room, claims=claims)
                c.send_json({"type": "join", "room": uniq("elsewhere")})
                e = next_json(c, lambda m: m.get("type") in ("joined", "error"), what="an error")
                self.assertEqual(e.get("type"), "error", e)
                self.assertEqual(e.get("code"), "forbidden", e)
                self.assertEqual(ping(c, 5)["id"], 5)
                # Still in the old room: its audio still arrives.
                time.sleep(SETTLE)
                f = rtp(1, ("still-" + c.user).encode())
                speaker.send_binary(f)
                got_frames = collect_until(c, relayed(f, speaker.ssrc))
                self.assertEqual(got_frames, [relayed(f, speaker.ssrc)])

    def test_join_wildcard_allows_any_room(self):
        target = uniq("any")
        t = self.spread(target, {0: 1, 1: 1})
        c = self.connect(uniq("j"), uniq("room"), claims={"rooms": ["*"]})
        c.send_json({"type": "join", "room": target})
        ans = next_json(c, lambda m: m.get("type") in ("joined", "error"), what="joined")
        self.assertEqual(ans.get("type"), "joined", ans)
        self.assertEqual(ans.get("room"), target, ans)
        self.assertEqual({m.get("user") for m in ans["members"]},
                         {t[0][0].user, t[1][0].user}, ans)


if __name__ == "__main__":
    unittest.main(verbosity=2)
