"""Session resume (SPEC 4.6) and crash isolation: dropped sessions keep
their ssrc and room for resume_window, members see no left/joined pair for
a resume, and "left" only when the window passes; a killed worker loses
only its own connections."""
import os
import signal
import socket
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from agw import WS, Daemon, mint, wait_for  # noqa: E402
from test_limits import on_each_worker  # noqa: E402


def rtp(seq):
    return struct.pack("!BBHII", 0x80, 111, seq, seq * 960, 0) + b"p" * 40


def texts_for(c, seconds):
    out = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            m = c.recv(timeout=max(0.05, end - time.monotonic()))
        except socket.timeout:
            break
        if m[0] == "text":
            import json
            out.append(json.loads(m[1]))
        elif m[0] == "close":
            break
    return out


class Resume(unittest.TestCase):
    def test_dropped_session_resumes_silently(self):
        with Daemon(workers=2, server_extra="resume_window = 10s") as d:
            (a, wa), (b, wb) = on_each_worker(d, "r", ["alice", "bob"])
            texts_for(a, 0.3)
            texts_for(b, 0.3)
            a.abort()
            time.sleep(0.5)
            a2 = WS(d.port, token=mint("alice", "r"), query="resume=" + wa["resume"])
            w2 = a2.recv_json()
            self.assertEqual(w2["session"], wa["session"])
            self.assertEqual(w2["ssrc"], wa["ssrc"])
            self.assertEqual([m["user"] for m in w2["members"]], ["bob"])
            time.sleep(0.3)
            a2.send_binary(rtp(1))
            m = b.recv(timeout=5)
            self.assertEqual(m[0], "binary")
            self.assertEqual(struct.unpack("!I", m[1][8:12])[0], wa["ssrc"])
            events = texts_for(b, 1.0)
            self.assertEqual([e for e in events if e.get("type") == "member"], [])

    def test_left_when_the_window_passes(self):
        with Daemon(workers=2, server_extra="resume_window = 1s") as d:
            (a, wa), (b, wb) = on_each_worker(d, "r", ["alice", "bob"])
            texts_for(a, 0.3)
            texts_for(b, 0.3)  # events that raced the joins
            a.abort()
            t0 = time.monotonic()
            j = b.recv_json(timeout=10)
            self.assertEqual((j["type"], j["event"], j["ssrc"]), ("member", "left", wa["ssrc"]))
            self.assertGreater(time.monotonic() - t0, 0.7)
            # too late: a new session
            a2 = WS(d.port, token=mint("alice", "r"), query="resume=" + wa["resume"])
            self.assertNotEqual(a2.recv_json()["session"], wa["session"])

    def test_client_close_ends_at_once_and_cannot_resume(self):
        with Daemon(workers=1, server_extra="resume_window = 30s") as d:
            a = d.ws("alice", "r")
            wa = a.recv_json()
            b = d.ws("bob", "r")
            b.recv_json()
            a.close()
            j = b.recv_json(timeout=5)
            self.assertEqual(j["event"], "left")
            a2 = WS(d.port, token=mint("alice", "r"), query="resume=" + wa["resume"])
            self.assertNotEqual(a2.recv_json()["session"], wa["session"])

    def test_resume_token_is_bound_to_the_user(self):
        with Daemon(workers=1, server_extra="resume_window = 30s") as d:
            a = d.ws("alice", "r")
            wa = a.recv_json()
            a.abort()
            time.sleep(0.3)
            m = WS(d.port, token=mint("mallory", "r"), query="resume=" + wa["resume"])
            wm = m.recv_json()
            self.assertNotEqual(wm["session"], wa["session"])
            self.assertNotEqual(wm["ssrc"], wa["ssrc"])
            for bad in ("garbage", wa["resume"] + "x", "a.b.c", ""):
                c = WS(d.port, token=mint("alice2", "r"), query="resume=" + bad)
                self.assertEqual(c.recv_json()["type"], "welcome")

    def test_drained_session_resumes_on_the_new_generation(self):
        with Daemon(workers=2, server_extra="resume_window = 30s",
                    drain_extra="timeout = 5s\nreconnect_spread = 500ms") as d:
            (a, wa), (b, wb) = on_each_worker(d, "r", ["alice", "bob"])
            a.recv_json()
            d.proc.send_signal(signal.SIGHUP)
            self.assertEqual(a.recv_json(timeout=15, skip=("member",))["type"], "drain")
            self.assertEqual(a.recv_close(timeout=10), 1001)
            a2 = None
            for _ in range(50):
                try:
                    a2 = WS(d.port, token=mint("alice", "r"), query="resume=" + wa["resume"])
                    break
                except Exception:  # noqa: BLE001 - the new generation may not be up yet
                    time.sleep(0.1)
            w2 = a2.recv_json()
            self.assertEqual((w2["session"], w2["ssrc"]), (wa["session"], wa["ssrc"]))


class CrashIsolation(unittest.TestCase):
    def test_killed_worker_loses_only_its_clients(self):
        with Daemon(workers=2, server_extra="resume_window = 2s") as d:
            (a, wa), (b, wb) = on_each_worker(d, "r", ["alice", "bob"])
            texts_for(a, 0.3)
            texts_for(b, 0.3)
            victim = [p for p in d.worker_pids()]
            pid0 = None
            import json
            from agw import http_request
            for w in json.loads(http_request(d.admin_port, "/v1/workers")[2]):
                if w["slot"] == wa["worker"]:
                    pid0 = w["pid"]
            self.assertIn(pid0, victim)
            os.kill(pid0, signal.SIGKILL)
            # alice's connection is gone; bob's stays and sees alice leave after the window
            with self.assertRaises((ConnectionError, OSError)):
                while True:
                    if a.recv(timeout=5)[0] == "close":
                        raise ConnectionError("closed")
            t0 = time.monotonic()
            j = b.recv_json(timeout=10)
            self.assertEqual((j["event"], j["ssrc"]), ("left", wa["ssrc"]))
            self.assertGreater(time.monotonic() - t0, 1.0)
            b.send_json({"type": "ping", "id": 3})
            self.assertEqual(b.recv_json(timeout=5)["type"], "pong")
            wait_for(lambda: len(d.worker_pids()) == 2, what="the slot to restart")


if __name__ == "__main__":
    unittest.main(verbosity=2)
