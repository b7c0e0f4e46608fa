"""The daemon's life: config check, startup with several workers, upgrades,
404s, worker restart after SIGKILL, clean stop, single instance."""
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from agw import AUDIOGWD, Daemon, HandshakeError, WS, http_request, mint, pid_alive, wait_for  # noqa: E402


class ConfigCheck(unittest.TestCase):
    def test_good_config_prints_ok(self):
        d = Daemon()
        r = subprocess.run([AUDIOGWD, "-t", "-c", d.config], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), "ok")

    def test_every_error_is_reported_with_file_and_line(self):
        d = Daemon(server_extra="bogus = 1\nmax_connections = lots",
                   limits_extra="slow_consumer_timeout = 5x")
        r = subprocess.run([AUDIOGWD, "-t", "-c", d.config], capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        errs = r.stderr.strip().splitlines()
        self.assertEqual(len(errs), 3, r.stderr)
        for e in errs:
            self.assertTrue(e.startswith(d.config + ":"), e)
            self.assertRegex(e, r"^[^:]+:\d+: ")
        self.assertIn("bogus", errs[0])
        self.assertIn("max_connections", errs[1])
        self.assertIn("5x", errs[2])

    def test_missing_secret_file(self):
        d = Daemon()
        os.unlink(os.path.join(d.dir, "secret.key"))
        r = subprocess.run([AUDIOGWD, "-t", "-c", d.config], capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("secret.key", r.stderr)

    def test_missing_config_file(self):
        r = subprocess.run([AUDIOGWD, "-t", "-c", "/nonexistent/a.conf"], capture_output=True,
                           text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("/nonexistent/a.conf", r.stderr)

    def test_invalid_config_refuses_to_start(self):
        d = Daemon(server_extra="workers = many")
        r = subprocess.run([AUDIOGWD, "-f", "-c", d.config], capture_output=True, text=True,
                           timeout=10)
        self.assertEqual(r.returncode, 1)
        self.assertIn("workers", r.stderr)

    def test_version(self):
        r = subprocess.run([AUDIOGWD, "-V"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^audiogwd \d+\.\d+")


class Fleet(unittest.TestCase):
    def test_two_workers_serve_upgrades(self):
        with Daemon(workers=2) as d:
            self.assertEqual(len(d.worker_pids()), 2)
            clients = [d.ws("u%d" % i) for i in range(20)]
            for c in clients:
                c.close()
            logs = d.log_lines()
            self.assertTrue(all("ts" in j and "level" in j and "event" in j for j in logs))

    def test_wrong_path_is_404(self):
        with Daemon(workers=1) as d:
            with self.assertRaises(HandshakeError) as cm:
                WS(d.port, path="/nope")
            self.assertEqual(cm.exception.status, 404)
            self.assertIn('"error"', cm.exception.body)
            status, _, body, _ = http_request(d.port, "/")
            self.assertEqual(status, 404)

    def test_worker_restarts_after_sigkill(self):
        with Daemon(workers=2) as d:
            before = d.worker_pids()
            os.kill(before[0], signal.SIGKILL)
            wait_for(lambda: len(d.worker_pids()) == 2 and before[0] not in d.worker_pids(),
                     what="a replacement worker")
            wait_for(lambda: d.ready_workers() >= 3, what="the replacement to be ready")
            self.assertIn(before[1], d.worker_pids())
            exits = d.log_lines("worker_exit")
            self.assertTrue(any("signal 9" in j.get("msg", "") for j in exits), exits)
            for i in range(10):
                d.ws("after%d" % i).close()

    def test_sigterm_stops_cleanly(self):
        d = Daemon(workers=2).start()
        try:
            pids = d.worker_pids()
            c = d.ws()
            self.assertEqual(d.stop(signal.SIGTERM), 0)
            for p in pids:
                wait_for(lambda: not pid_alive(p), what="worker %d to exit" % p)
            self.assertFalse(os.path.exists(os.path.join(d.dir, "run", "audiogwd.pid")))
            c.sock.close()
        finally:
            d.kill()

    def test_sigint_stops_cleanly(self):
        d = Daemon(workers=2).start()
        try:
            self.assertEqual(d.stop(signal.SIGINT), 0)
        finally:
            d.kill()

    def test_second_instance_on_same_run_dir_refuses(self):
        with Daemon(workers=1) as d:
            r = subprocess.run([AUDIOGWD, "-f", "-c", d.config], capture_output=True, text=True,
                               timeout=10)
            self.assertEqual(r.returncode, 1)
            self.assertIn("another audiogwd", r.stderr)
            self.assertIsNone(d.proc.poll())

    @unittest.skipUnless(shutil.which("openssl"), "needs the openssl command for a test certificate")
    def test_wss_with_tls_cert(self):
        tmp = tempfile.mkdtemp(prefix="audiogwd-tls-")
        cert, key = os.path.join(tmp, "c.pem"), os.path.join(tmp, "k.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                        "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1"],
                       check=True, capture_output=True)
        with Daemon(workers=2, server_extra="tls_cert = %s\ntls_key = %s" % (cert, key)) as d:
            c = WS(d.port, token=mint("tls", "r"), tls=True)
            self.assertEqual(c.recv_json()["type"], "welcome")
            c.send_json({"type": "ping", "id": 1})
            self.assertEqual(c.recv_json()["type"], "pong")
            # audio through TLS: frames gathered into one write arrive whole, in order
            l = WS(d.port, token=mint("tls-listener", "r"), tls=True)
            self.assertEqual(l.recv_json()["type"], "welcome")
            frames = [struct.pack("!BBHII", 0x80, 111, i, i * 960, 0) + bytes([i]) * 80
                      for i in range(30)]
            for f in frames:
                c.send_binary(f)
            got = []
            while len(got) < len(frames):
                m = l.recv(timeout=10)
                self.assertNotEqual(m[0], "close", m)
                if m[0] == "binary":
                    got.append(bytes(m[1]))
            self.assertEqual([g[:8] + g[12:] for g in got], [f[:8] + f[12:] for f in frames])
            with self.assertRaises(Exception):  # plain ws:// is not served on a TLS listener
                WS(d.port, token=mint("plain", "r"), timeout=3).recv_json(timeout=3)
        shutil.rmtree(tmp)

    def test_workers_die_with_the_supervisor(self):
        d = Daemon(workers=2).start()
        try:
            pids = d.worker_pids()
            d.proc.kill()
            d.proc.wait()
            for p in pids:
                wait_for(lambda: not pid_alive(p), what="orphan worker %d to die" % p)
        finally:
            d.kill()


if __name__ == "__main__":
    unittest.main(verbosity=2)
