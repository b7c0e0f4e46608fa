"""The audit journal (SPEC 6.4, 4.1, 4.6, 6.2): every connect has exactly
one disconnect with the right reason after normal use, a kick, a killed
worker and SIGTERM; auth failures are recorded without the token; the
journal process can be killed under load and restarted without losing an
event; rows are readable through GET /v1/audit within a second or so; a
database the daemon cannot use stops it at startup with a clear message.

The database is read directly (read-only) at d.dir/run/audit.db. Most tests
set resume_window = 0s so that one session is one connection; one test
checks the rows of a resumed connection. Every test starts its own daemon."""
import collections
import json
import os
import re
import signal
import sqlite3
import struct
import subprocess
import sys
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import agw  # noqa: E402
from agw import AUDIOGWD, WS, HandshakeError, http_request, mint, wait_for  # noqa: E402
from test_limits import on_each_worker  # noqa: E402

T = 15.0                      # generous: the machine is slow and shared
NO_RESUME = "resume_window = 0s"
FAST_DRAIN = "timeout = 5s\nreconnect_spread = 200ms"
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
FIELDS = {"ts", "event", "worker", "session", "user", "room", "ip", "reason", "detail"}
SPEC_EVENTS = {"connect", "disconnect", "auth_fail", "rejected", "join", "leave", "mute",
               "unmute", "kick", "broadcast", "message", "reload", "config_error", "drain",
               "worker_start", "worker_exit"}
SPEC_DISCONNECT_REASONS = {"client", "lost", "kicked", "slow_consumer", "replaced", "rate_limit",
                           "heartbeat", "drain", "shutdown", "worker_crash", "error"}
COLUMNS = "id, ts_us, event, worker, session, user_id, room, ip, reason, detail"


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


# ---------------------------------------------------------------- helpers

def db_path(d):
    return os.path.join(d.dir, "run", "audit.db")


def rows(d, where="1", args=()):
    """The audit rows (dicts keyed by column) matching where, oldest first."""
    uri = "file:%s?mode=ro" % urllib.parse.quote(db_path(d))
    con = sqlite3.connect(uri, uri=True, timeout=10)
    try:
        con.row_factory = sqlite3.Row
        return [dict(r) for r in con.execute(
            "SELECT %s FROM audit WHERE %s ORDER BY id" % (COLUMNS, where), args)]
    finally:
        con.close()


def events(rs, event):
    return [r for r in rs if r["event"] == event]


def detail(r):
    return json.loads(r["detail"]) if r["detail"] else None


def wait_rows(d, where, args=(), n=1, timeout=T, what=None):
    """Polls the live database until at least n rows match."""
    def got():
        try:
            rs = rows(d, where, args)
        except sqlite3.Error:
            return None
        return rs if len(rs) >= n else None
    return wait_for(got, timeout=timeout, step=0.05, what=what or "audit rows where " + where)


def session_rows(d, sessions, event):
    """Rows of one event for the given sessions, once they all have one."""
    sessions = list(sessions)
    q = "event = ? AND session IN (%s)" % ",".join("?" * len(sessions))
    return wait_rows(d, q, [event] + sessions, n=len(sessions),
                     what="%s rows of %d sessions" % (event, len(sessions)))


def api(d, path, method="GET", body=None):
    data = b"" if body is None else json.dumps(body).encode()
    hdrs = {"Content-Type": "application/json"} if data else {}
    status, _, b, _ = http_request(d.admin_port, path, method=method, headers=hdrs, body=data,
                                   timeout=T)
    try:
        return status, json.loads(b.decode()) if b else None
    except ValueError:
        return status, b.decode("utf-8", "replace")


def rtp(seq, payload=b"x" * 100):
    return struct.pack("!BBHII", 0x80, 111, seq & 0xffff, seq * 960, 0) + payload


def metric(d, name):
    """The sum of a metric's samples in GET /metrics (None when absent)."""
    _, _, body, _ = http_request(d.admin_port, "/metrics", timeout=T)
    vals = [float(l.split()[-1]) for l in body.decode().splitlines()
            if l.startswith(name) and (l[len(name):len(name) + 1] in (" ", "{"))]
    return sum(vals) if vals else None


def welcome(c):
    j = c.recv_json(timeout=T)
    assert j["type"] == "welcome", j
    return j


def close_cleanly(c):
    """A client close with the closing handshake: close frame, the server's
    echo, then the socket (nothing left unread, so FIN rather than RST)."""
    c.close()
    try:
        c.recv_close(timeout=T)
    except (OSError, ConnectionError):
        pass
    c.sock.close()


def sigterm(test, d, clients=()):
    """SIGTERM; the clients still connected read their drain and close frame
    and answer it like real clients; the daemon must exit 0."""
    d.proc.send_signal(signal.SIGTERM)
    for c in clients:
        try:
            c.recv_close(timeout=T)
            c.close()
        except (OSError, ConnectionError):
            pass
    rc = d.proc.wait(60)
    for c in clients:
        c.sock.close()
    test.assertEqual(rc, 0, "audiogwd did not exit 0 after SIGTERM:\n" + d.log_text()[-4000:])


class AuditCase(unittest.TestCase):
    def assertPaired(self, rs, once=True):
        """Every session with a connect row has as many disconnect rows
        (exactly one each when once: no resumes), each after its connect."""
        count = collections.defaultdict(lambda: [0, 0])
        for r in rs:
            if r["event"] == "connect":
                self.assertTrue(r["session"], r)
                count[r["session"]][0] += 1
            elif r["event"] == "disconnect":
                self.assertTrue(r["session"], r)
                self.assertIn(r["reason"], SPEC_DISCONNECT_REASONS, r)
                count[r["session"]][1] += 1
        unpaired = {s: tuple(c) for s, c in count.items() if c[0] != c[1] or (once and c[0] != 1)}
        self.assertEqual(unpaired, {}, "sessions whose (connects, disconnects) do not pair up")
        # per session, in id order, connect and disconnect alternate
        seq = collections.defaultdict(list)
        for r in rs:
            if r["event"] in ("connect", "disconnect"):
                seq[r["session"]].append(r["event"])
        for s, evs in seq.items():
            self.assertEqual(evs, ["connect", "disconnect"] * (len(evs) // 2), s)
        self.assertEqual(len(events(rs, "connect")), len(events(rs, "disconnect")))

    def assertOnlySpecEvents(self, rs):
        self.assertEqual({r["event"] for r in rs} - SPEC_EVENTS, set())

    def one(self, rs, **match):
        got = [r for r in rs if all(r[k] == v for k, v in match.items())]
        self.assertEqual(len(got), 1, "rows matching %r: %r" % (match, got))
        return got[0]


# ---------------------------------------------------------------- pairing

class Pairing(AuditCase):
    def test_normal_use_then_sigterm(self):
        with Daemon(workers=2, server_extra=NO_RESUME, drain_extra=FAST_DRAIN) as d:
            alice = d.ws("alice", "r1")
            wa = welcome(alice)
            bob = d.ws("bob", "r3")  # alone: nothing is being sent to him when he vanishes
            wb = welcome(bob)
            carol = d.ws("carol", "r1", claims={"rooms": ["r1", "r2"]})
            wc = welcome(carol)
            dave = d.ws("dave", "r2")
            wd = welcome(dave)
            extra = {}
            for i in range(10):
                c = d.ws("u%d" % i, "bulk")
                extra[welcome(c)["session"]] = (i, c)
            # carol switches room and mutes herself
            carol.send_json({"type": "join", "room": "r2"})
            self.assertEqual(carol.recv_json(timeout=T, skip=("member",))["type"], "joined")
            carol.send_json({"type": "mute"})
            # alice closes, bob vanishes, the extras do one or the other
            close_cleanly(alice)
            bob.abort()
            for s, (i, c) in extra.items():
                if i % 2:
                    c.abort()
                else:
                    close_cleanly(c)
            gone = [wa["session"], wb["session"]] + list(extra)
            session_rows(d, gone, "disconnect")
            wait_rows(d, "event = 'mute' AND user_id = 'carol'")
            sigterm(self, d, [carol, dave])

            rs = rows(d)
            self.assertOnlySpecEvents(rs)
            self.assertPaired(rs)
            reason = {r["session"]: r["reason"] for r in events(rs, "disconnect")}
            self.assertEqual(reason[wa["session"]], "client")
            self.assertEqual(reason[wb["session"]], "lost")
            self.assertEqual(reason[wc["session"]], "shutdown")
            self.assertEqual(reason[wd["session"]], "shutdown")
            self.assertEqual(len(events(rs, "connect")), 14)
            # the connect rows say who, where, from where
            for w, user in ((wa, "alice"), (wb, "bob"), (wc, "carol"), (wd, "dave")):
                r = self.one(events(rs, "connect"), session=w["session"])
                self.assertEqual((r["user_id"], r["room"], r["ip"], r["worker"]),
                                 (user, w["room"], "127.0.0.1", w["worker"]))
                self.assertEqual(detail(r)["ssrc"], w["ssrc"])
                self.assertGreater(r["ts_us"], 1.5e15)
            self.assertEqual(detail(self.one(rs, event="disconnect", session=wa["session"]))["code"], 1000)
            # carol: connect, leave r1, join r2, mute, disconnect (in that order)
            cs = [r for r in rs if r["session"] == wc["session"]]
            self.assertEqual([(r["event"], r["room"]) for r in cs],
                             [("connect", "r1"), ("leave", "r1"), ("join", "r2"), ("mute", "r2"),
                              ("disconnect", "r2")])
            self.assertEqual(cs[3]["reason"], "self")
            # the workers' exits are in too (among the supervisor's last events)
            exits = events(rs, "worker_exit")
            self.assertEqual(sorted(r["worker"] for r in exits), [0, 1])
            self.assertEqual({r["reason"] for r in exits}, {"exit"})
            # last: vanished clients are "lost" even when a room event was being sent to them
            got = {"u%d" % i: reason[s] for s, (i, _) in extra.items()}
            self.assertEqual(got, {"u%d" % i: "lost" if i % 2 else "client" for i in range(10)})

    def test_listener_vanishing_while_audio_flows_is_lost(self):
        """A client that drops without a close frame is "lost" (SPEC 4.6), even
        when the server was writing to it at that moment."""
        with Daemon(workers=1, server_extra=NO_RESUME, drain_extra=FAST_DRAIN,
                    limits_extra="frames_per_second = 1000\nframes_burst = 1000") as d:
            speaker = d.ws("speaker", "r")
            welcome(speaker)
            listeners = []
            for i in range(6):
                c = d.ws("l%d" % i, "r")
                listeners.append((c, welcome(c)))
            stop = [False]

            def speak():
                seq = 0
                while not stop[0]:
                    speaker.send_binary(rtp(seq))
                    seq += 1
                    time.sleep(0.002)
            th = threading.Thread(target=speak, daemon=True)
            th.start()
            try:
                for c, _ in listeners:
                    while c.recv(timeout=T)[0] != "binary":
                        pass
                    c.abort()
                    time.sleep(0.05)
                rs = session_rows(d, [w["session"] for _, w in listeners], "disconnect")
            finally:
                stop[0] = True
                th.join(10)
            reasons = {r["user_id"]: (r["reason"], detail(r).get("code")) for r in rs}
            self.assertEqual(reasons, {"l%d" % i: ("lost", 1006) for i in range(6)})
            sigterm(self, d, [speaker])
            self.assertPaired(rows(d))

    def test_kick(self):
        with Daemon(workers=2, server_extra=NO_RESUME, drain_extra=FAST_DRAIN) as d:
            alice = d.ws("alice", "r")
            wa = welcome(alice)
            bob = d.ws("bob", "r")
            wb = welcome(bob)
            session_rows(d, [wa["session"], wb["session"]], "connect")
            st, body = api(d, "/v1/users/alice/kick", "POST", {"reason": "too loud"})
            self.assertEqual((st, body), (200, {"ok": True, "connections": 1}))
            self.assertEqual(alice.recv_json(timeout=T, skip=("member",))["type"], "kicked")
            self.assertEqual(alice.recv_close(timeout=T), 4001)
            alice.close()
            alice.sock.close()
            session_rows(d, [wa["session"]], "disconnect")
            sigterm(self, d, [bob])

            rs = rows(d)
            self.assertPaired(rs)
            k = self.one(rs, event="kick")
            self.assertIsNone(k["worker"])  # the supervisor
            self.assertEqual((k["user_id"], k["reason"]), ("alice", "too loud"))
            self.assertEqual(detail(k)["connections"], 1)
            da = self.one(rs, event="disconnect", session=wa["session"])
            self.assertEqual(da["reason"], "kicked")
            self.assertEqual(detail(da)["code"], 4001)
            self.assertGreater(da["id"], self.one(rs, event="connect", session=wa["session"])["id"])
            self.assertEqual(self.one(rs, event="disconnect", session=wb["session"])["reason"],
                             "shutdown")

    def test_sigkill_of_a_worker(self):
        with Daemon(workers=2, server_extra=NO_RESUME, drain_extra=FAST_DRAIN) as d:
            placed = on_each_worker(d, "r", ["alice", "bob", "carol", "dan"])
            (alice, wa), (bob, wb), (carol, wc), (dan, wd) = placed
            victims = [wa["session"], wc["session"]]
            survivors = [wb["session"], wd["session"]]
            # what the worker recorded must be in before it is killed
            session_rows(d, victims + survivors, "connect")
            workers = api(d, "/v1/workers")[1]
            pid0 = [w["pid"] for w in workers if w["slot"] == 0][0]
            self.assertIn(pid0, d.worker_pids())
            os.kill(pid0, signal.SIGKILL)
            for c in (alice, carol):
                with self.assertRaises((ConnectionError, OSError)):
                    while c.recv(timeout=T)[0] != "close":
                        pass
                    raise ConnectionError("closed")
                c.sock.close()
            wait_for(lambda: len(d.worker_pids()) == 2 and pid0 not in d.worker_pids(),
                     timeout=T, what="slot 0 to restart")
            new0 = wait_for(lambda: [w["pid"] for w in api(d, "/v1/workers")[1]
                                     if w["slot"] == 0 and w["pid"] != pid0], timeout=T,
                            what="the new worker in /v1/workers")[0]
            # the other worker's clients did not notice
            for c in (bob, dan):
                c.send_json({"type": "ping", "id": 7})
                self.assertEqual(c.recv_json(timeout=T, skip=("member",))["type"], "pong")
            crash = session_rows(d, victims, "disconnect")
            self.assertEqual({r["reason"] for r in crash}, {"worker_crash"})
            sigterm(self, d, [bob, dan])

            rs = rows(d)
            self.assertOnlySpecEvents(rs)
            self.assertPaired(rs)
            for s, w in ((wa["session"], wa), (wc["session"], wc)):
                r = self.one(rs, event="disconnect", session=s)
                self.assertEqual((r["reason"], r["worker"], r["user_id"], r["room"]),
                                 ("worker_crash", 0, w["user"], "r"))
            for s in survivors:
                self.assertEqual(self.one(rs, event="disconnect", session=s)["reason"], "shutdown")
            ex = [r for r in events(rs, "worker_exit") if detail(r).get("pid") == pid0]
            self.assertEqual(len(ex), 1, events(rs, "worker_exit"))
            self.assertEqual((ex[0]["worker"], ex[0]["reason"]), (0, "crash"))
            self.assertEqual(detail(ex[0]).get("signal"), signal.SIGKILL)
            starts = {detail(r)["pid"]: r for r in events(rs, "worker_start") if r["worker"] == 0}
            self.assertIn(pid0, starts)
            self.assertIn(new0, starts)
            self.assertGreater(starts[new0]["id"], ex[0]["id"])
            self.assertEqual(len([r for r in events(rs, "worker_start") if r["worker"] == 1]), 1)

    def test_resumed_connection_has_its_own_rows(self):
        with Daemon(workers=1, server_extra="resume_window = 10s", drain_extra=FAST_DRAIN) as d:
            a = d.ws("alice", "r")
            wa = welcome(a)
            b = d.ws("bob", "r")
            wb = welcome(b)
            session_rows(d, [wa["session"], wb["session"]], "connect")
            a.abort()
            b.abort()  # bob never comes back: his session is still parked at SIGTERM
            session_rows(d, [wa["session"], wb["session"]], "disconnect")
            a2 = WS(d.port, token=mint("alice", "r"), query="resume=" + wa["resume"], timeout=T)
            w2 = welcome(a2)
            self.assertEqual(w2["session"], wa["session"])
            close_cleanly(a2)
            wait_rows(d, "event = 'disconnect' AND session = ?", [wa["session"]], n=2)
            sigterm(self, d)

            rs = rows(d)
            self.assertPaired(rs, once=False)
            seq = [(r["event"], r["reason"], bool((detail(r) or {}).get("resumed")))
                   for r in rs if r["session"] == wa["session"]]
            self.assertEqual(seq, [("connect", None, False), ("disconnect", "lost", False),
                                   ("connect", None, True), ("disconnect", "client", False)])
            seq = [(r["event"], r["reason"]) for r in rs if r["session"] == wb["session"]]
            self.assertEqual(seq, [("connect", None), ("disconnect", "lost")])


# ---------------------------------------------------------------- auth failures

class AuthFailures(AuditCase):
    def test_recorded_with_the_reason_never_the_token(self):
        garbage = "garbageTOKEN" + os.urandom(12).hex()
        garbage_hdr = "bearerGARBAGE" + os.urandom(12).hex()
        forged = mint("mallory", "r1", secret=b"a-completely-different-secret-0123456789")
        expired = mint("eve", "r1", ttl=-7200)
        with Daemon(workers=1, log_level="debug") as d:
            for tok, code in ((garbage, "malformed_token"), (forged, "bad_signature"),
                              (expired, "expired")):
                with self.assertRaises(HandshakeError) as cm:
                    WS(d.port, token=tok, timeout=T)
                self.assertEqual(cm.exception.status, 401)
                self.assertIn(code, cm.exception.body)
            with self.assertRaises(HandshakeError) as cm:
                WS(d.port, headers={"Authorization": "Bearer " + garbage_hdr}, timeout=T)
            self.assertEqual(cm.exception.status, 401)
            fails = wait_rows(d, "event = 'auth_fail'", n=4)
            sigterm(self, d)

            rs = rows(d)
            fails = events(rs, "auth_fail")
            self.assertEqual(sorted(r["reason"] for r in fails),
                             ["bad_signature", "expired", "malformed_token", "malformed_token"])
            for r in fails:
                self.assertEqual(r["ip"], "127.0.0.1")
                self.assertEqual(r["worker"], 0)
                self.assertIsNone(r["session"])
                self.assertEqual(detail(r), {"status": 401})
            self.assertEqual(events(rs, "connect"), [])
            secrets = [garbage, garbage_hdr]
            for tok in (forged, expired):
                secrets.append(tok)
                secrets += tok.split(".")[1:]  # the claims and the signature
            # nowhere in any column of any row, nor in the database files, nor in the log
            for r in rs:
                for col, v in r.items():
                    for s in secrets:
                        self.assertNotIn(s, str(v), "a token part in column %s: %r" % (col, r))
            raw = b""
            for suffix in ("", "-wal"):
                if os.path.exists(db_path(d) + suffix):
                    with open(db_path(d) + suffix, "rb") as f:
                        raw += f.read()
            log = d.log_text()
            self.assertIn("auth_fail", log)  # debug level: the rejections were logged
            for s in secrets:
                self.assertNotIn(s.encode(), raw, "a token part in the database file")
                self.assertNotIn(s, log, "a token part in the log")


# ---------------------------------------------------------------- the journal process

class JournalRestart(AuditCase):
    def test_journal_killed_under_load_loses_nothing(self):
        with Daemon(workers=2, server_extra=NO_RESUME, drain_extra=FAST_DRAIN) as d:
            total, pace = 300, 0.01
            ok, failed, done = [], [], [0]

            def load():
                t0 = time.monotonic()
                for i in range(total):
                    try:
                        c = WS(d.port, token=mint("load%d" % i, "lr%d" % i), timeout=T)
                    except (HandshakeError, OSError) as e:
                        failed.append(repr(e))
                        continue
                    try:
                        ok.append((i, welcome(c)["session"]))
                    except (OSError, ConnectionError, AssertionError, ValueError) as e:
                        failed.append("after the upgrade: %r" % e)
                    if i % 2:
                        c.abort()
                    else:
                        close_cleanly(c)
                    done[0] += 1
                    late = t0 + (i + 1) * pace - time.monotonic()
                    if late > 0:
                        time.sleep(late)

            th = threading.Thread(target=load, daemon=True)
            th.start()
            wait_for(lambda: done[0] >= 100 or not th.is_alive(), timeout=60, what="the load to start")
            old = d.journal_pid()
            self.assertIsNotNone(old)
            os.kill(old, signal.SIGKILL)
            killed_at = done[0]
            new = wait_for(lambda: (d.journal_pid() or old) != old and d.journal_pid(), timeout=T,
                           what="the journal to be restarted")
            th.join(180)
            self.assertFalse(th.is_alive(), "the load did not finish")
            self.assertLess(killed_at, total - 20, "the journal was not killed under load")
            self.assertGreater(done[0], killed_at + 20, "no load after the journal was killed")
            self.assertNotEqual(new, old)
            self.assertEqual(failed, [])
            dropped = metric(d, "audiogw_audit_dropped_total")
            sigterm(self, d)

            rs = rows(d)
            load_connects = {r["session"] for r in events(rs, "connect")
                             if (r["user_id"] or "").startswith("load")}
            missing = sorted(i for i, s in ok if s not in load_connects)
            self.assertEqual(missing, [], "%d of %d connect rows lost: those of the connects "
                             "numbered %s (the journal was killed after %d connects; "
                             "audiogw_audit_dropped_total %s)"
                             % (len(missing), len(ok), missing, killed_at, dropped))
            self.assertEqual(len(events(rs, "connect")), len(ok))
            self.assertPaired(rs)
            self.assertTrue(any(j.get("event") == "journal_exit" for j in d.log_lines()))


# ---------------------------------------------------------------- the admin API

class AuditAPI(AuditCase):
    def test_connect_row_visible_within_2s(self):
        with Daemon(workers=1) as d:
            time.sleep(0.5)
            c = d.ws("prompt", "r")
            w = welcome(c)
            t0 = time.monotonic()

            def seen():
                st, body = api(d, "/v1/audit?user=prompt&event=connect")
                return st == 200 and body
            got = wait_for(seen, timeout=T, step=0.05, what="the connect row in GET /v1/audit")
            self.assertLess(time.monotonic() - t0, 2.0, "the connect row took too long")
            self.assertEqual(got[0]["session"], w["session"])
            close_cleanly(c)
            t0 = time.monotonic()
            wait_for(lambda: api(d, "/v1/audit?user=prompt&event=disconnect")[1], timeout=T,
                     step=0.05, what="the disconnect row")
            self.assertLess(time.monotonic() - t0, 2.0, "the disconnect row took too long")

    def test_supervisor_rows_visible_within_2s(self):
        """The supervisor's own events (kick here) do not wait for the next one."""
        with Daemon(workers=1) as d:
            clients = [d.ws(u, "r") for u in ("k1", "k2", "k3")]
            for c in clients:
                welcome(c)
            for u in ("k1", "k2", "k3"):
                time.sleep(0.3)
                st, _ = api(d, "/v1/users/%s/kick" % u, "POST", {"reason": "test"})
                self.assertEqual(st, 200)
                t0 = time.monotonic()
                wait_for(lambda: api(d, "/v1/audit?event=kick&user=" + u)[1], timeout=T, step=0.05,
                         what="the kick row of " + u)
                self.assertLess(time.monotonic() - t0, 2.0, "the kick row of %s took too long" % u)
            for c in clients:
                c.sock.close()

    def test_filters_order_and_fields(self):
        with Daemon(workers=1, server_extra=NO_RESUME) as d:
            alice = d.ws("alice", "r1")
            wa = welcome(alice)
            bob = d.ws("bob", "r2")
            wb = welcome(bob)
            close_cleanly(alice)
            st, body = api(d, "/v1/users/bob/kick", "POST", {})
            self.assertEqual(st, 200)
            self.assertEqual(bob.recv_close(timeout=T), 4001)
            bob.close()
            bob.sock.close()
            wait_for(lambda: api(d, "/v1/audit?user=bob&event=disconnect")[1] and
                     api(d, "/v1/audit?user=alice&event=disconnect")[1] and
                     api(d, "/v1/audit?event=kick")[1], timeout=T, what="the rows")

            st, every = api(d, "/v1/audit?limit=10000")
            self.assertEqual(st, 200)
            self.assertIsInstance(every, list)
            for r in every:
                self.assertEqual(set(r), FIELDS, r)
                self.assertRegex(r["ts"], RFC3339)
            ts = [r["ts"] for r in every]
            self.assertEqual(ts, sorted(ts, reverse=True), "not newest first")
            self.assertEqual(len(every), len(rows(d)))

            st, a = api(d, "/v1/audit?user=alice")
            self.assertEqual(st, 200)
            self.assertEqual([(r["event"], r["reason"]) for r in a],
                             [("disconnect", "client"), ("connect", None)])
            con = a[1]
            self.assertEqual((con["session"], con["user"], con["room"], con["ip"], con["worker"]),
                             (wa["session"], "alice", "r1", "127.0.0.1", 0))
            self.assertEqual(con["detail"]["ssrc"], wa["ssrc"])  # parsed back to JSON

            st, c = api(d, "/v1/audit?event=connect")
            self.assertEqual({r["event"] for r in c}, {"connect"})
            self.assertEqual({r["session"] for r in c}, {wa["session"], wb["session"]})
            st, r2 = api(d, "/v1/audit?room=r2")
            self.assertTrue(r2)
            self.assertEqual({r["room"] for r in r2}, {"r2"})
            self.assertEqual({r["user"] for r in r2}, {"bob"})
            st, both = api(d, "/v1/audit?user=bob&event=disconnect")
            self.assertEqual([(r["session"], r["reason"]) for r in both], [(wb["session"], "kicked")])
            st, k = api(d, "/v1/audit?event=kick")
            self.assertEqual(len(k), 1)
            self.assertEqual((k[0]["worker"], k[0]["user"]), (None, "bob"))
            st, starts = api(d, "/v1/audit?event=worker_start")
            self.assertEqual([r["worker"] for r in starts], [0])

            st, two = api(d, "/v1/audit?limit=2")
            self.assertEqual(two, every[:2])
            st, one = api(d, "/v1/audit?limit=1&event=connect")
            self.assertEqual([r["session"] for r in one], [wb["session"]])

            st, hour = api(d, "/v1/audit?since=1h")
            self.assertEqual((st, len(hour)), (200, len(every)))
            time.sleep(1.5)
            for since in ("1ms", "500ms"):
                st, none = api(d, "/v1/audit?since=" + since)
                self.assertEqual((st, none), (200, []), since)
            st, body = api(d, "/v1/audit?since=yesterday")
            self.assertEqual(st, 400, body)
            st, body = api(d, "/v1/audit?user=nobody")
            self.assertEqual((st, body), (200, []))


# ---------------------------------------------------------------- unusable databases

class BadDatabase(unittest.TestCase):
    def start_with_database(self, d, path):
        """Runs audiogwd -f with audit.database = path: (exit code, stderr, seconds)."""
        with open(d.config) as f:
            text = f.read()
        line = "database = %s/run/audit.db" % d.dir
        self.assertIn(line, text)
        with open(d.config, "w") as f:
            f.write(text.replace(line, "database = " + path))
        t0 = time.monotonic()
        try:
            p = subprocess.run([AUDIOGWD, "-f", "-c", d.config], cwd=d.dir, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        except subprocess.TimeoutExpired:
            self.fail("audiogwd kept running with audit.database = %s" % path)
        err = (p.stdout + p.stderr).decode("utf-8", "replace")
        self.assertEqual(p.returncode, 1, "exit code %d (negative: a signal):\n%s" % (p.returncode, err))
        self.assertLess(time.monotonic() - t0, 10)
        self.assertIn(path, p.stderr.decode("utf-8", "replace"), "stderr does not name the database")
        for bad in ("AddressSanitizer", "Segmentation", "core dumped", "Aborted"):
            self.assertNotIn(bad, err)
        return err

    def daemon(self):
        d = Daemon(workers=1)
        self.addCleanup(d.tmp.cleanup)
        return d

    def test_path_under_a_regular_file(self):
        d = self.daemon()
        afile = os.path.join(d.dir, "afile")
        with open(afile, "w") as f:
            f.write("not a directory\n")
        err = self.start_with_database(d, afile + "/audit.db")
        self.assertIn("audit", err.lower())

    def test_read_only_directory(self):
        if os.geteuid() == 0:
            self.skipTest("root ignores directory permissions (see test_path_under_a_regular_file)")
        d = self.daemon()
        ro = os.path.join(d.dir, "ro")
        os.mkdir(ro)
        os.chmod(ro, 0o555)
        self.addCleanup(os.chmod, ro, 0o755)
        path = os.path.join(ro, "audit.db")
        self.start_with_database(d, path)
        self.assertFalse(os.path.exists(path))

    def test_corrupt_database(self):
        d = self.daemon()
        path = os.path.join(d.dir, "corrupt.db")
        garbage = bytes((i * 131 + 7) % 251 for i in range(4096))
        with open(path, "wb") as f:
            f.write(garbage)
        err = self.start_with_database(d, path)
        self.assertRegex(err.lower(), "not a database|corrupt|malformed")
        with open(path, "rb") as f:
            self.assertEqual(f.read(), garbage, "the daemon changed the corrupt file")

    def test_foreign_schema(self):
        d = self.daemon()
        path = os.path.join(d.dir, "foreign.db")
        con = sqlite3.connect(path)
        con.execute("CREATE TABLE audit (id INTEGER PRIMARY KEY, who TEXT, what TEXT)")
        con.execute("INSERT INTO audit (who, what) VALUES ('someone', 'something')")
        con.commit()
        con.close()
        err = self.start_with_database(d, path)
        self.assertIn("schema", err.lower())
        con = sqlite3.connect(path)
        try:
            self.assertEqual(con.execute("SELECT who, what FROM audit").fetchall(),
                             [("someone", "something")])
            self.assertEqual([r[1] for r in con.execute("PRAGMA table_info(audit)")],
                             ["id", "who", "what"])
        finally:
            con.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
