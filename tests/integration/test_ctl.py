"""audiogwctl against the real daemon (SPEC 6.1): tables, --json shapes,
exit codes 0/1/2/3, token minting that the daemon accepts."""
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from agw import AUDIOGWCTL, WS, Daemon, wait_for  # noqa: E402


def ctl(d, *args, json_out=False):
    cmd = [AUDIOGWCTL, "-c", d.config] + (["--json"] if json_out else []) + list(args)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd=d.dir)
    return r.returncode, r.stdout, r.stderr


class Ctl(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(workers=2).start()

    @classmethod
    def tearDownClass(cls):
        cls.d.kill()
        cls.d.tmp.cleanup()

    def test_token_is_accepted_by_the_daemon(self):
        rc, out, err = ctl(self.d, "token", "--user", "carol", "--room", "lobby", "--ttl", "10m")
        self.assertEqual(rc, 0, err)
        c = WS(self.d.port, token=out.strip())
        w = c.recv_json()
        self.assertEqual((w["type"], w["user"], w["room"]), ("welcome", "carol", "lobby"))
        c.close()

    def test_status_table_and_json(self):
        rc, out, err = ctl(self.d, "status")
        self.assertEqual(rc, 0, err)
        self.assertIn("generation", out)
        rc, out, err = ctl(self.d, "status", json_out=True)
        j = json.loads(out)
        for k in ("version", "pid", "generation", "uptime_s", "workers", "connections", "rooms",
                  "draining"):
            self.assertIn(k, j)
        self.assertEqual(j["pid"], self.d.proc.pid)
        self.assertEqual(j["workers"], 2)

    def test_workers_rooms_sessions(self):
        c = self.d.ws("dave", "ctlroom")
        c.recv_json()
        wait_for(lambda: json.loads(ctl(self.d, "rooms", json_out=True)[1]), what="a room")
        rc, out, _ = ctl(self.d, "workers")
        self.assertEqual(rc, 0)
        self.assertRegex(out.splitlines()[0], r"SLOT\s+PID")
        self.assertEqual(len(json.loads(ctl(self.d, "workers", json_out=True)[1])), 2)
        rooms = json.loads(ctl(self.d, "rooms", json_out=True)[1])
        self.assertIn({"room": "ctlroom", "members": 1, "speakers": 0}, rooms)
        room = json.loads(ctl(self.d, "room", "ctlroom", json_out=True)[1])
        self.assertEqual(room["members"][0]["user"], "dave")
        sess = json.loads(ctl(self.d, "sessions", "--user", "dave", json_out=True)[1])
        self.assertEqual([s["user"] for s in sess], ["dave"])
        rc, _, err = ctl(self.d, "room", "no-such-room")
        self.assertEqual(rc, 1)
        self.assertIn("no such room", err.splitlines()[0])
        c.close()

    def test_kick_mute_broadcast_send(self):
        c = self.d.ws("erin", "r9")
        c.recv_json()
        rc, out, _ = ctl(self.d, "broadcast", "r9", "hello", json_out=True)
        self.assertEqual((rc, json.loads(out)), (0, {"ok": True, "connections": 1}))
        self.assertEqual(c.recv_json(skip=("member",)), {"type": "system", "text": "hello"})
        rc, out, _ = ctl(self.d, "send", "erin", '{"k":[1,2]}', json_out=True)
        self.assertEqual(rc, 0)
        self.assertEqual(c.recv_json(skip=("member",))["data"], {"k": [1, 2]})
        rc, _, _ = ctl(self.d, "mute", "erin")
        self.assertEqual(rc, 0)
        self.assertEqual(c.recv_json(skip=("member",)), {"type": "muted", "by": "admin"})
        rc, out, _ = ctl(self.d, "kick", "erin", "--reason", "bye")
        self.assertEqual(rc, 0)
        self.assertIn("1", out)
        self.assertEqual(c.recv_json(skip=("member",)), {"type": "kicked", "reason": "bye"})
        self.assertEqual(c.recv_close(), 4001)

    def test_exit_codes(self):
        self.assertEqual(ctl(self.d, "kick", "nobody-here")[0], 1)
        self.assertEqual(ctl(self.d, "no-such-command")[0], 2)
        self.assertEqual(ctl(self.d, "kick")[0], 2)
        self.assertEqual(ctl(self.d, "kick", "x", "--ban", "forever")[0], 2)
        self.assertEqual(ctl(self.d, "send", "x", "{not json")[0], 2)
        r = subprocess.run([AUDIOGWCTL, "-s", os.path.join(self.d.dir, "nope.ipc"), "status"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 3)
        self.assertTrue(r.stderr.strip())

    def test_audit_and_metrics(self):
        def rows():
            rc, out, _ = ctl(self.d, "audit", "--event", "worker_start", "--limit", "5",
                             json_out=True)
            self.assertEqual(rc, 0)
            return json.loads(out)
        got = wait_for(rows, timeout=10, what="worker_start rows (durable within a second)")
        self.assertTrue(all(r["event"] == "worker_start" for r in got))
        rc, out, _ = ctl(self.d, "metrics")
        self.assertEqual(rc, 0)
        self.assertIn("audiogw_connections", out)

    def test_help(self):
        r = subprocess.run([AUDIOGWCTL, "help"], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 0)
        self.assertIn("kick", r.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
