"""Reload, drain and stop (SPEC 2, 5): new generations on the same sockets
without refusing a connection, invalid configs changing nothing, the host
drain, SIGTERM/SIGINT draining the clients."""
import json
import os
import signal
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from agw import Daemon, HandshakeError, WS, http_request, mint, wait_for  # noqa: E402


def status(d):
    st, _, body, _ = http_request(d.admin_port, "/v1/status")
    assert st == 200, (st, body)
    return json.loads(body)


class Connector(threading.Thread):
    """Connects, reads the welcome and closes, in a loop, counting failures."""

    def __init__(self, d):
        super().__init__(daemon=True)
        self.d, self.ok, self.failed, self.errors = d, 0, 0, []
        self.stop = threading.Event()

    def run(self):
        i = 0
        while not self.stop.is_set() and i < 100000:
            i += 1
            try:
                c = WS(self.d.port, token=mint("c%d" % i, "loop"), timeout=10)
                j = c.recv_json(timeout=10)
                assert j["type"] == "welcome", j
                c.close()
                c.sock.close()
                self.ok += 1
            except Exception as e:  # noqa: BLE001 - every failure counts
                self.failed += 1
                self.errors.append(repr(e))


class Reload(unittest.TestCase):
    def test_reload_refuses_no_connection_and_drains_the_old_generation(self):
        with Daemon(workers=2, drain_extra="timeout = 5s\nreconnect_spread = 1s") as d:
            old_pids = set(d.worker_pids())
            held = d.ws("held", "r")
            self.assertEqual(held.recv_json()["type"], "welcome")
            loop = Connector(d)
            loop.start()
            time.sleep(0.5)
            d.proc.send_signal(signal.SIGHUP)
            # the held client is told to reconnect, then closed 1001
            drain = held.recv_json(timeout=15, skip=("member",))
            self.assertEqual(drain["type"], "drain")
            self.assertLessEqual(drain["reconnect_in_ms"], 1000)
            self.assertEqual(held.recv_close(timeout=10), 1001)
            wait_for(lambda: not (old_pids & set(d.worker_pids())), timeout=20,
                     what="the old generation to exit")
            time.sleep(0.5)
            loop.stop.set()
            loop.join(30)
            self.assertGreater(loop.ok, 5)
            self.assertEqual(loop.failed, 0, loop.errors[:5])
            self.assertEqual(status(d)["generation"], 2)
            self.assertEqual(len(d.worker_pids()), 2)
            d.ws("after", "r").recv_json()

    def test_reload_takes_a_new_worker_count(self):
        with Daemon(workers=2) as d:
            with open(d.config) as f:
                text = f.read()
            with open(d.config, "w") as f:
                f.write(text.replace("workers = 2", "workers = 3"))
            st, _, body, _ = http_request(d.admin_port, "/v1/reload", method="POST")
            self.assertEqual(st, 200, body)
            self.assertEqual(json.loads(body)["generation"], 2)
            wait_for(lambda: len(d.worker_pids()) == 3, timeout=20, what="3 workers")
            for i in range(10):
                d.ws("u%d" % i, "r").recv_json()

    def test_invalid_config_changes_nothing(self):
        with Daemon(workers=2) as d:
            pids = set(d.worker_pids())
            with open(d.config, "a") as f:
                f.write("\n[server]\nbogus_key = 1\n")
            d.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: d.log_lines("config_error"), what="a config_error log line")
            st, _, body, _ = http_request(d.admin_port, "/v1/reload", method="POST")
            self.assertEqual(st, 409)
            self.assertIn("bogus_key", json.loads(body)["error"])
            self.assertEqual(set(d.worker_pids()), pids)
            self.assertEqual(status(d)["generation"], 1)
            d.ws("still", "r").recv_json()


class Drain(unittest.TestCase):
    def test_host_drain(self):
        with Daemon(workers=2, drain_extra="timeout = 5s\nreconnect_spread = 1s") as d:
            c = d.ws("a", "r")
            c.recv_json()
            st, _, body, _ = http_request(d.admin_port, "/v1/drain", method="POST")
            self.assertEqual(st, 200, body)
            self.assertEqual(http_request(d.admin_port, "/readyz")[0], 503)
            self.assertEqual(http_request(d.admin_port, "/healthz")[0], 200)
            j = c.recv_json(timeout=10)
            self.assertEqual(j["type"], "drain")
            self.assertEqual(c.recv_close(timeout=10), 1001)
            with self.assertRaises(HandshakeError) as cm:
                d.ws("b", "r")
            self.assertEqual(cm.exception.status, 503)
            self.assertIsNone(d.proc.poll())
            self.assertTrue(status(d)["draining"])

    def test_sigterm_drains_clients_then_exits_0(self):
        d = Daemon(workers=2, drain_extra="timeout = 5s\nreconnect_spread = 1s").start()
        try:
            c = d.ws("a", "r")
            c.recv_json()
            d.proc.send_signal(signal.SIGTERM)
            j = c.recv_json(timeout=10)
            self.assertEqual(j["type"], "drain")
            self.assertEqual(c.recv_close(timeout=10), 1001)
            self.assertEqual(d.proc.wait(30), 0)
        finally:
            d.kill()

    def test_sigint_closes_at_once(self):
        d = Daemon(workers=1, drain_extra="timeout = 30s\nreconnect_spread = 20s").start()
        try:
            c = d.ws("a", "r")
            c.recv_json()
            t0 = time.monotonic()
            d.proc.send_signal(signal.SIGINT)
            self.assertEqual(c.recv_json(timeout=10)["reconnect_in_ms"], 0)
            self.assertEqual(c.recv_close(timeout=10), 1001)
            self.assertEqual(d.proc.wait(30), 0)
            self.assertLess(time.monotonic() - t0, 15)
        finally:
            d.kill()


if __name__ == "__main__":
    unittest.main(verbosity=2)
