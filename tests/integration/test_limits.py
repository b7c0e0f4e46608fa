"""Back-pressure, limits and liveness (SPEC 4.4, 4.5, section 3 limits):
slow consumers, rate limits, oversized frames, connection caps, heartbeat,
garbage control messages."""
import os
import socket
import struct
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from agw import WS, Daemon, HandshakeError, mint, wait_for  # noqa: E402


def rtp(seq, payload=b"x" * 100, pt=111):
    return struct.pack("!BBHII", 0x80, pt, seq & 0xffff, seq * 960, 0) + payload


def welcome(c):
    j = c.recv_json()
    assert j["type"] == "welcome", j
    return j


def on_each_worker(d, room, users, workers=2, **kw):
    """Connects users[i] so that the clients end up on different workers
    (SO_REUSEPORT spreads by hash: retry until the wanted worker answers)."""
    out = []
    for i, u in enumerate(users):
        want = i % workers
        for _ in range(80):
            c = d.ws(u, room, **kw)
            w = welcome(c)
            if w["worker"] == want:
                out.append((c, w))
                break
            c.close()
            c.sock.close()
        else:
            raise AssertionError("could not place %s on worker %d" % (u, want))
    return out


def drain_text(c, seconds):
    """Reads for a while; returns (texts, binaries, close code or None)."""
    texts, bins = [], []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            m = c.recv(timeout=max(0.05, end - time.monotonic()))
        except socket.timeout:
            break
        if m[0] == "close":
            return texts, bins, m[1]
        (texts if m[0] == "text" else bins).append(m[1])
    return texts, bins, None


class SlowConsumer(unittest.TestCase):
    def test_listener_that_never_reads_is_closed_4002_and_others_see_no_gap(self):
        with Daemon(workers=1, log_level="debug",
                    limits_extra="slow_consumer_timeout = 1s\noutbound_queue_frames = 16\n"
                                 "frames_per_second = 1000\nframes_burst = 1000\n"
                                 "send_buffer = 4k") as d:
            speaker = d.ws("speaker", "r")
            welcome(speaker)
            good = d.ws("good", "r")
            welcome(good)
            stuck = WS(d.port, token=mint("stuck", "r"))
            stuck.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            welcome(stuck)
            sent, got = {}, {}
            done = threading.Event()

            def read_good():
                while not done.is_set():
                    try:
                        m = good.recv(timeout=0.2)
                    except (socket.timeout, OSError):
                        continue
                    if m[0] == "binary":
                        got[struct.unpack("!H", m[1][2:4])[0]] = time.monotonic()

            reader = threading.Thread(target=read_good, daemon=True)
            reader.start()
            start = time.monotonic()
            seq = 0
            while time.monotonic() - start < 4:
                sent[seq] = time.monotonic()
                speaker.send_binary(rtp(seq, b"y" * 1000))
                seq += 1
                time.sleep(0.005)
            time.sleep(0.5)
            done.set()
            reader.join(5)
            # the good listener got (nearly) everything, each frame promptly:
            # what it waited beyond the speaker's own cadence is the relay delay
            self.assertGreater(len(got), seq * 0.98)
            delays = sorted(got[k] - sent[k] for k in got)
            self.assertLess(delays[int(len(delays) * 0.99) - 1], 0.2,
                            "a listener was delayed while another was stuck")
            # the stuck client: whatever it has buffered, then the end of the connection
            wait_for(lambda: "slow_consumer" in d.log_text(), timeout=10,
                     what="the slow consumer to be closed")
            stuck.sock.settimeout(5)
            code = None
            try:
                while True:
                    m = stuck.recv()
                    if m[0] == "close":
                        code = m[1]
                        break
            except (ConnectionError, OSError):
                pass
            self.assertIn(code, (4002, None))
            disc = [j for j in d.log_lines("disconnect") if j.get("user") == "stuck"]
            self.assertEqual(disc[0]["reason"], "slow_consumer")
            self.assertIn("4002", disc[0]["msg"])


class RateLimit(unittest.TestCase):
    def test_frames_over_the_rate_are_dropped_and_reported(self):
        with Daemon(workers=1, limits_extra="frames_per_second = 20\nframes_burst = 10") as d:
            a = d.ws("a", "r")
            welcome(a)
            b = d.ws("b", "r")
            welcome(b)
            a.recv_json()  # b joined
            for i in range(60):
                a.send_binary(rtp(i))
            texts, _, _ = drain_text(a, 1.0)
            self.assertTrue(any('"rate_limited"' in t for t in texts), texts)
            _, bins, _ = drain_text(b, 1.0)
            self.assertGreaterEqual(len(bins), 10)
            self.assertLess(len(bins), 40)

    def test_sustained_abuse_is_closed_4004(self):
        with Daemon(workers=1, limits_extra="frames_per_second = 10\nframes_burst = 10") as d:
            a = d.ws("a", "r")
            welcome(a)
            start = time.monotonic()
            seq, code = 0, None
            a.sock.settimeout(0.001)
            while time.monotonic() - start < 12 and code is None:
                try:
                    a.send_binary(rtp(seq))
                except OSError:
                    break
                seq += 1
                time.sleep(0.01)  # ~100 frames/s: 10x the limit
                try:
                    m = a.recv(timeout=0.001)
                    if m[0] == "close":
                        code = m[1]
                except (socket.timeout, BlockingIOError):
                    pass
            if code is None:
                code = a.recv_close(timeout=5)
            self.assertEqual(code, 4004)
            self.assertGreater(time.monotonic() - start, 4.5)


class FrameSize(unittest.TestCase):
    def test_oversized_binary_closes_1009(self):
        with Daemon(workers=1, limits_extra="max_frame_bytes = 200") as d:
            a = d.ws("a", "r")
            welcome(a)
            a.send_binary(rtp(1, b"z" * 200))
            self.assertEqual(a.recv_close(), 1009)

    def test_oversized_header_alone_closes_1009_without_the_payload(self):
        with Daemon(workers=1) as d:
            a = d.ws("a", "r")
            welcome(a)
            # announce 1 MiB, send only its start: the server must not wait for the rest
            a.send_frame(0x2, rtp(1), declared_len=1 << 20)
            self.assertEqual(a.recv_close(), 1009)

    def test_frame_at_the_limit_is_relayed(self):
        with Daemon(workers=1, limits_extra="max_frame_bytes = 200") as d:
            a = d.ws("a", "r")
            welcome(a)
            b = d.ws("b", "r")
            welcome(b)
            a.recv_json()
            a.send_binary(rtp(1, b"z" * 188))
            m = b.recv(timeout=5)
            self.assertEqual(m[0], "binary")
            self.assertEqual(len(m[1]), 200)


class ConnectionCaps(unittest.TestCase):
    def test_per_ip_cap_answers_429(self):
        with Daemon(workers=2, limits_extra="max_conns_per_ip = 3") as d:
            held = [d.ws("u%d" % i) for i in range(3)]
            for c in held:
                welcome(c)
            with self.assertRaises(HandshakeError) as cm:
                d.ws("u9")
            self.assertEqual(cm.exception.status, 429)
            self.assertIn("too_many_connections", cm.exception.body)
            other = WS(d.port, token=mint("u10", "r1"), source="127.0.0.2")
            welcome(other)
            held[0].close()
            held[0].recv_close()
            wait_for(lambda: self._try(d), what="a freed slot")

    def _try(self, d):
        try:
            d.ws("again")
            return True
        except HandshakeError:
            return False

    def test_max_connections_answers_503(self):
        with Daemon(workers=2, server_extra="max_connections = 3") as d:
            held = [d.ws("u%d" % i) for i in range(3)]
            for c in held:
                welcome(c)
            with self.assertRaises(HandshakeError) as cm:
                d.ws("u9")
            self.assertEqual(cm.exception.status, 503)

    def test_handshake_rate_answers_429(self):
        with Daemon(workers=1, limits_extra="handshakes_per_second = 3") as d:
            statuses = []
            for i in range(12):
                try:
                    c = d.ws("u%d" % i)
                    statuses.append(101)
                    c.sock.close()
                except HandshakeError as e:
                    statuses.append(e.status)
            self.assertIn(429, statuses)
            self.assertIn(101, statuses)

    def test_user_cap_replaces_the_oldest_on_the_other_worker(self):
        with Daemon(workers=2, limits_extra="max_conns_per_user = 1") as d:
            (old, w0), = on_each_worker(d, "r", ["alice"])
            self.assertEqual(w0["worker"], 0)
            newer = None
            for _ in range(80):
                c = d.ws("alice", "r")
                w = welcome(c)
                if w["worker"] == 1:
                    newer = c
                    break
                # landed on worker 0: it replaced the old one there; start over
                self.assertEqual(old.recv_close(), 4003)
                old = c
            self.assertIsNotNone(newer, "could not land on worker 1")
            self.assertEqual(old.recv_close(), 4003)
            newer.send_json({"type": "ping", "id": 1})
            self.assertEqual(newer.recv_json(skip=("member",))["type"], "pong")


class Heartbeat(unittest.TestCase):
    def test_silent_client_is_closed_4008_and_a_live_one_stays(self):
        with Daemon(workers=1, heartbeat_extra="interval = 1s\ntimeout = 3s") as d:
            silent = WS(d.port, token=mint("silent", "r"), auto_pong=False)
            welcome(silent)
            live = d.ws("live", "r")
            welcome(live)
            pings = []
            start = time.monotonic()
            code = None
            while code is None and time.monotonic() - start < 15:
                try:
                    op, payload = silent.recv_frame_timeout(0.2)
                    if op == 0x9:
                        pings.append(time.monotonic())
                    elif op == 0x8:
                        code = struct.unpack("!H", payload[:2])[0]
                except socket.timeout:
                    pass
                # the other client reads (and so answers pings) all along
                texts, _, close = drain_text(live, 0.05)
                self.assertIsNone(close)
            self.assertEqual(code, 4008)
            self.assertGreaterEqual(len(pings), 1)
            self.assertGreater(time.monotonic() - start, 2.5)
            texts, _, close = drain_text(live, 1.5)
            self.assertIsNone(close)
            live.send_json({"type": "ping", "id": 2})
            self.assertEqual(live.recv_json(skip=("member",))["type"], "pong")


class GarbageControl(unittest.TestCase):
    def test_ten_bad_messages_are_tolerated_the_eleventh_closes_1008(self):
        with Daemon(workers=1) as d:
            a = d.ws("a", "r")
            welcome(a)
            for i in range(10):
                a.send_text("{not json" if i % 2 else '{"type":"dance"}')
                self.assertEqual(a.recv_json()["code"], "bad_request")
            a.send_json({"type": "ping", "id": 1})
            self.assertEqual(a.recv_json()["type"], "pong")
            a.send_text("[]")
            self.assertEqual(a.recv_close(), 1008)


if __name__ == "__main__":
    unittest.main(verbosity=2)
