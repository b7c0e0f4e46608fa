"""Smoke runs of every audiogw-bench preset (issue 9) against the real daemon:
small N and a few seconds, only to prove the load generator works end to end
(connects, relays, measures the gateway, acts on it). Benchmarks are not
tests: no figure here is a performance assertion."""
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from agw import Daemon  # noqa: E402

BENCH = os.path.join(os.environ.get("MESON_BUILD_ROOT", "build"), "audiogw-bench")
LIMITS = "max_conns_per_ip = 1000000\nframes_per_second = 1000\nframes_burst = 2000"


class Presets(unittest.TestCase):
    def bench(self, d, preset, *args):
        cmd = [BENCH, "--url", "ws://127.0.0.1:%d/v1/audio" % d.port,
               "--secret-file", os.path.join(d.dir, "secret.key"),
               "--pid", str(d.proc.pid), "--preset", preset, "--json",
               "--user-prefix", "smoke-%s-" % preset,
               # not 127.0.0.1: the daemons of the other tests listen there, on
               # ports picked free, which our source ports must not take
               "--sources", "127.0.0.2-127.0.0.5"] + list(args)
        p = subprocess.run(cmd, capture_output=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        return json.loads(p.stdout)

    def assert_connected(self, r, n):
        self.assertEqual(r["connect"]["ok"], n, r["connect"])
        self.assertEqual(r["connect"]["failed"], 0, r["connect"])
        self.assertTrue(r["gateway"]["measured"], r["gateway"])

    def assert_relayed(self, r, at_least):
        f = r["frames"]
        self.assertGreater(f["expected"], 0, f)
        self.assertGreaterEqual(f["delivery_ratio"], at_least, f)
        self.assertEqual(f["self_echo"], 0, f)
        self.assertEqual(f["wrong_room"], 0, f)
        self.assertEqual(f["bad"], 0, f)
        self.assertGreater(r["latency_ms"]["samples"], 0, r["latency_ms"])

    def assert_audited(self, d, r):
        """Every handshake answered 101 has its connect row, every connect
        its disconnect (read by the tool from the journal after the run)."""
        a = r["audit"]
        self.assertTrue(a["checked"], a)
        self.assertEqual(a["connects"], r["connect"]["handshakes_ok"], a)
        self.assertEqual(a["disconnects"], a["connects"], a)
        self.assertEqual(a["unpaired"], 0, a)

    def audit_db(self, d):
        return ["--audit-db", os.path.join(d.dir, "run", "audit.db")]

    def test_capacity(self):
        with Daemon(workers=2, limits_extra=LIMITS) as d:
            r = self.bench(d, "capacity", "-n", "300", "--ramp", "1000",
                           "--warmup", "0", "--duration", "1")
            self.assert_connected(r, 300)
            self.assertGreater(r["connect"]["handshakes_per_s"], 0)
            self.assertGreater(r["gateway"]["rss_bytes_per_connection"], 0)
            self.assertGreater(r["gateway"]["cpu_us_per_handshake"], 0)

    def test_seed(self):
        with Daemon(workers=2, limits_extra=LIMITS) as d:
            r = self.bench(d, "seed", "-n", "100", "--ramp", "1000",
                           "--warmup", "1", "--duration", "2")
            self.assert_connected(r, 100)
            self.assert_relayed(r, 0.95)
            self.assertGreater(r["gateway"]["cpu_us_per_delivered_frame"], 0)

    def test_fanout(self):
        with Daemon(workers=2, limits_extra=LIMITS) as d:
            r = self.bench(d, "fanout", "-n", "200", "--ramp", "1000", "--rate", "10",
                           "--warmup", "1", "--duration", "2")
            self.assert_connected(r, 200)
            self.assertEqual(r["setup"]["room_size"], 100)
            self.assert_relayed(r, 0.95)

    def test_reload(self):
        with Daemon(workers=2, limits_extra=LIMITS, drain_extra="reconnect_spread = 500ms") as d:
            old = set(d.worker_pids())
            r = self.bench(d, "reload", "-n", "100", "--ramp", "1000",
                           "--warmup", "1", "--duration", "4", "--action-at", "1",
                           *self.audit_db(d))
            self.assertTrue(r["action"]["done"], r["action"])
            self.assertEqual(r["closes"]["refused_in_window"], 0, r["closes"])
            self.assertGreater(r["closes"]["drain_messages"], 0, r["closes"])
            self.assertGreater(r["closes"]["reconnects"], 0, r["closes"])
            self.assertFalse(old & set(d.worker_pids()), "the old generation is gone")
            self.assert_audited(d, r)

    def test_crash(self):
        with Daemon(workers=2, limits_extra=LIMITS) as d:
            r = self.bench(d, "crash", "-n", "100", "--ramp", "1000",
                           "--warmup", "1", "--duration", "4", "--action-at", "1",
                           *self.audit_db(d))
            a = r["action"]
            self.assertTrue(a["done"], a)
            self.assertNotIn(a["pid"], d.worker_pids(), "the killed worker is gone")
            dropped = {w["worker"]: w["dropped_in_window"] for w in r["closes"]["workers"]}
            self.assertGreater(dropped.get(a["slot"], 0), 0, r["closes"]["workers"])
            others = [n for w, n in dropped.items() if w != a["slot"]]
            self.assertEqual(sum(others), 0, r["closes"]["workers"])
            self.assert_audited(d, r)
            self.assertGreater(r["closes"]["reconnects"], 0, r["closes"])

    def test_audit_db_that_is_not_a_journal(self):
        with Daemon(workers=1) as d:
            p = subprocess.run([BENCH, "--url", "ws://127.0.0.1:%d/v1/audio" % d.port,
                                "--secret-file", os.path.join(d.dir, "secret.key"),
                                "--audit-db", os.path.join(d.dir, "secret.key")],
                               capture_output=True, timeout=30)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn(b"--audit-db", p.stderr)
            self.assertIn(b"not a database", p.stderr)


if __name__ == "__main__":
    unittest.main()
