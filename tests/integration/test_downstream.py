"""Audio to downstream (audiogwd-downstream(7)): recording rooms into Ogg Opus
and WAV files, RTP forward over UDP with its allowlist, the tap, the
downstream process's restarts, and audiogw-play streaming files into rooms.
The files are checked by parsing them here (Ogg pages, RIFF headers) and,
when ffprobe is installed, with ffprobe too."""
import json
import math
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import unittest
import wave

sys.path.insert(0, os.path.dirname(__file__))
from agw import AUDIOGWCTL, AUDIOGWD, Daemon, http_request, mint, wait_for  # noqa: E402

AUDIOGW_PLAY = os.environ.get("AUDIOGW_PLAY", os.path.join(os.path.dirname(AUDIOGWD), "audiogw-play"))
TAP_PROBE = os.environ.get("AGW_TAP_PROBE", os.path.join(os.path.dirname(AUDIOGWD), "tests", "tap_probe"))
FFPROBE = shutil.which("ffprobe")
NAME_RE = r"^%s_%s_%d_\d{8}T\d{6}Z\.%s$"


def rtp(pt, seq, ts, payload, marker=False):
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, seq & 0xffff,
                       ts & 0xffffffff, 0) + payload


def opus_payload(i):
    # TOC 0xf8: CELT fullband 20 ms mono, one frame; the rest any bytes
    return bytes([0xf8]) + bytes((i * 7 + k) & 0xff for k in range(40))


def ctl(d, *args):
    p = subprocess.run([AUDIOGWCTL, "-s", "ipc://%s/run/ctl.ipc" % d.dir] + list(args),
                       capture_output=True, text=True, timeout=20)
    return p.returncode, p.stdout, p.stderr


def ctl_json(d, *args):
    rc, out, err = ctl(d, "--json", *args)
    assert rc == 0, (args, rc, out, err)
    return json.loads(out)


def api(d, method, path, body=None):
    st, hdrs, data, _ = http_request(d.admin_port, path, method,
                                     body=json.dumps(body).encode() if body is not None else b"")
    return st, hdrs, data


def api_json(d, method, path, body=None):
    st, _, data = api(d, method, path, body)
    return st, json.loads(data) if data else None


def ogg_pages(data):
    """Ogg pages: header type, granule, serial and the packets completed on each."""
    pages, off, carry = [], 0, b""
    while off < len(data):
        assert data[off:off + 4] == b"OggS", "no capture pattern at %d" % off
        ver, htype, granule, serial, seq, crc, nseg = struct.unpack_from("<BBqIIIB", data, off + 4)
        segs = data[off + 27:off + 27 + nseg]
        body = data[off + 27 + nseg:off + 27 + nseg + sum(segs)]
        packets, p = [], 0
        for s in segs:
            carry += body[p:p + s]
            p += s
            if s < 255:
                packets.append(carry)
                carry = b""
        pages.append({"type": htype, "granule": granule, "serial": serial, "seq": seq,
                      "packets": packets})
        off += 27 + nseg + len(body)
    return pages


def opus_samples(pkt):
    toc = pkt[0]
    config = toc >> 3
    size = ([480, 960, 1920, 2880][config & 3] if config < 12 else
            [480, 960][config & 1] if config < 16 else [120, 240, 480, 960][config & 3])
    frames = {0: 1, 1: 2, 2: 2}.get(toc & 3) or (pkt[1] & 0x3f)
    return size * frames


def wav_header(path):
    with open(path, "rb") as f:
        data = f.read()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE", data[:12]
    chunks, off = {}, 12
    while off + 8 <= len(data):
        cid, clen = data[off:off + 4], struct.unpack_from("<I", data, off + 4)[0]
        chunks[cid] = data[off + 8:off + 8 + clen]
        off += 8 + clen + (clen & 1)
    tag, channels, rate, byte_rate, align, bits = struct.unpack_from("<HHIIHH", chunks[b"fmt "])
    riff_size = struct.unpack_from("<I", data, 4)[0]
    return {"tag": tag, "channels": channels, "rate": rate, "bits": bits, "data": chunks[b"data"],
            "riff_size": riff_size, "file_size": len(data), "fact": chunks.get(b"fact")}


def ffprobe(path):
    p = subprocess.run([FFPROBE, "-v", "error", "-show_format", "-show_streams", "-of", "json", path],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def speaker(d, user, room):
    ws = d.ws(user, room)
    welcome = ws.recv_json()
    assert welcome["type"] == "welcome", welcome
    return ws, welcome["ssrc"]


def listing(d, what):
    """record list / forward list, [] while the downstream process is away."""
    rc, out, _ = ctl(d, "--json", what, "list")
    return json.loads(out) if rc == 0 else []


def recording_frames(d, room):
    for r in ctl_json(d, "record", "list"):
        if r["room"] == room:
            return r["frames"]
    return -1


def audit_events(d, event):
    st, rows = api_json(d, "GET", "/v1/audit?event=%s" % event)
    assert st == 200, rows
    return rows


class Recording(unittest.TestCase):
    def test_two_opus_speakers_one_file_each_with_the_gap_kept(self):
        with Daemon(workers=2) as d:
            started = ctl_json(d, "record", "start", "r1")
            self.assertEqual(started["room"], "r1")
            self.assertEqual(started["dir"], os.path.join(d.dir, "run", "recordings"))
            rc, out, err = ctl(d, "record", "start", "r1")
            self.assertEqual(rc, 1, out)
            self.assertIn("being recorded already", err)
            alice, alice_ssrc = speaker(d, "alice", "r1")
            bob, bob_ssrc = speaker(d, "bob", "r1")
            ts_a, ts_b = 123456, 0xffffffff - 960 * 30   # bob's timestamps wrap
            for i in range(100):
                if i == 50:
                    ts_a += 48000        # a 1 s pause in alice's timestamps
                alice.send_binary(rtp(111, 1000 + i, ts_a, opus_payload(i)))
                bob.send_binary(rtp(111, 65500 + i, ts_b, opus_payload(i)))
                ts_a += 960
                ts_b += 960
                time.sleep(0.004)
            wait_for(lambda: recording_frames(d, "r1") == 200, timeout=10, what="200 frames recorded")
            listing = ctl_json(d, "record", "list")
            self.assertEqual(len(listing), 1)
            self.assertEqual(listing[0]["speakers"], 2)
            self.assertEqual(listing[0]["dropped"], 0)
            rc, out, _ = ctl(d, "record", "list")
            self.assertEqual(rc, 0)
            self.assertIn("r1", out)
            stopped = ctl_json(d, "record", "stop", "r1")
            self.assertFalse(stopped["finalizing"])
            self.assertEqual(stopped["frames"], 200)
            files = {f["user"]: f for f in stopped["files"]}
            self.assertEqual(set(files), {"alice", "bob"})
            for user, ssrc in (("alice", alice_ssrc), ("bob", bob_ssrc)):
                f = files[user]
                self.assertEqual(f["ssrc"], ssrc)
                self.assertEqual(f["codec"], "opus")
                self.assertFalse(f["open"])
                self.assertEqual(f["frames"], 100)
                self.assertRegex(os.path.basename(f["file"]), NAME_RE % ("r1", user, ssrc, "opus"))
                self.assertTrue(os.path.isfile(f["file"]))
            expected_end = {"alice": (100 + 50) * 960, "bob": 100 * 960}
            for user, f in files.items():
                with open(f["file"], "rb") as fh:
                    pages = ogg_pages(fh.read())
                self.assertTrue(pages[0]["type"] & 2, "BOS")
                self.assertEqual(pages[0]["packets"][0][:8], b"OpusHead")
                head = pages[0]["packets"][0]
                self.assertEqual(head[8], 1)                          # version
                self.assertEqual(head[9], 1)                          # mono
                self.assertEqual(struct.unpack_from("<I", head, 12)[0], 48000)
                self.assertEqual(pages[1]["packets"][0][:8], b"OpusTags")
                self.assertIn(b"ROOM=r1", pages[1]["packets"][0])
                self.assertIn(("USER=%s" % user).encode(), pages[1]["packets"][0])
                self.assertTrue(pages[-1]["type"] & 4, "EOS")
                audio = pages[2:]
                granules = [p["granule"] for p in audio]
                self.assertEqual(granules, sorted(granules))
                self.assertEqual(len(set(granules)), len(granules), "granules increase")
                total, fillers = 0, 0
                for p in audio:
                    for pkt in p["packets"]:
                        total += opus_samples(pkt)
                        fillers += len(pkt) == 1
                    self.assertEqual(total, p["granule"])             # durations add up
                self.assertEqual(granules[-1], expected_end[user])
                self.assertEqual(fillers, 50 if user == "alice" else 0)
                if FFPROBE:
                    info = ffprobe(f["file"])
                    self.assertEqual(info["streams"][0]["codec_name"], "opus")
                    self.assertAlmostEqual(float(info["format"]["duration"]),
                                           expected_end[user] / 48000, places=2)
            # audited, and counted
            wait_for(lambda: audit_events(d, "record_stop"), what="record_stop in the audit")
            start_rows = audit_events(d, "record_start")
            self.assertEqual(len(start_rows), 1)
            self.assertEqual(start_rows[0]["room"], "r1")
            stop_row = audit_events(d, "record_stop")[0]
            self.assertEqual(stop_row["room"], "r1")
            self.assertEqual(stop_row["reason"], "operator")
            detail = stop_row["detail"]
            detail = json.loads(detail) if isinstance(detail, str) else detail
            self.assertEqual(sorted(detail["files"]), sorted(f["file"] for f in files.values()))
            rc, metrics, _ = ctl(d, "metrics")
            self.assertIn('audiogw_downstream_frames_total{kind="record"} 200', metrics)
            self.assertIn("audiogw_downstream_dropped_total 0", metrics)
            self.assertEqual(ctl_json(d, "record", "list"), [])
            rc, _, err = ctl(d, "record", "stop", "r1")
            self.assertEqual(rc, 1)
            self.assertIn("not being recorded", err)

    def test_g711_and_l16_into_wav_through_the_admin_api(self):
        with Daemon(workers=1) as d:
            st, rec = api_json(d, "POST", "/v1/rooms/w1/record", {"dir": "sub/dir"})
            self.assertEqual(st, 200, rec)
            self.assertEqual(rec["dir"], os.path.join(d.dir, "run", "recordings", "sub/dir"))
            st, _ = api_json(d, "POST", "/v1/rooms/w1/record", {})
            self.assertEqual(st, 409)
            mu, mu_ssrc = speaker(d, "mu", "w1")
            al, _ = speaker(d, "al", "w1")
            pcm, _ = speaker(d, "pcm", "w1")
            # not a recordable payload type; sent first, so that once the 60
            # frames after it are recorded it has been counted too
            mu.send_binary(rtp(13, 99, 0, b"x"))
            for i in range(20):
                mu.send_binary(rtp(0, i, 160 * i, bytes([i]) * 160))
                al.send_binary(rtp(8, i, 160 * i + (8000 if i >= 10 else 0), bytes([0x55]) * 160))
                pcm.send_binary(rtp(96, i, 480 * i, struct.pack(">h", 0x1234) * 480))
                time.sleep(0.004)
            wait_for(lambda: api_json(d, "GET", "/v1/recordings")[1][0]["frames"] == 60,
                     what="60 frames recorded")
            st, stopped = api_json(d, "DELETE", "/v1/rooms/w1/record")
            self.assertEqual(st, 200, stopped)
            self.assertEqual(stopped["unsupported"], 1)
            files = {f["user"]: f for f in stopped["files"]}
            self.assertRegex(os.path.basename(files["mu"]["file"]), NAME_RE % ("w1", "mu", mu_ssrc, "wav"))
            self.assertEqual(files["mu"]["codec"], "PCMU")
            h = wav_header(files["mu"]["file"])
            self.assertEqual((h["tag"], h["channels"], h["rate"], h["bits"]), (7, 1, 8000, 8))
            self.assertEqual(h["data"], b"".join(bytes([i]) * 160 for i in range(20)))
            self.assertEqual(h["riff_size"], h["file_size"] - 8)
            self.assertEqual(struct.unpack("<I", h["fact"])[0], 3200)
            h = wav_header(files["al"]["file"])
            self.assertEqual((h["tag"], h["rate"], h["bits"]), (6, 8000, 8))
            # a 1 s gap of A-law silence (0xd5) after the 10th packet
            self.assertEqual(len(h["data"]), 20 * 160 + 8000 - 160 * 0)
            self.assertEqual(h["data"][1600:1600 + 8000], bytes([0xd5]) * 8000)
            h = wav_header(files["pcm"]["file"])
            self.assertEqual((h["tag"], h["channels"], h["rate"], h["bits"]), (1, 1, 48000, 16))
            self.assertEqual(len(h["data"]), 20 * 960)
            self.assertEqual(h["data"][:4], b"\x34\x12\x34\x12")  # big-endian RTP, little-endian WAV
            if FFPROBE:
                for user, codec in (("mu", "pcm_mulaw"), ("al", "pcm_alaw"), ("pcm", "pcm_s16le")):
                    info = ffprobe(files[user]["file"])
                    self.assertEqual(info["streams"][0]["codec_name"], codec)
            st, body = api_json(d, "POST", "/v1/rooms/w1/record/stop")
            self.assertEqual(st, 404, body)
            st, body = api_json(d, "POST", "/v1/rooms/%01/record", {})
            self.assertEqual(st, 400, body)

    def test_usage_errors(self):
        with Daemon(workers=1) as d:
            for args in (("record",), ("record", "start"), ("record", "begin", "r"),
                         ("record", "stop", "r", "--dir", "x"), ("forward", "start", "r"),
                         ("forward", "start", "r", "udp://127.0.0.1:9", "--ssrc", "0"),
                         ("forward", "list", "r"), ("forward", "sdp")):
                rc, _, err = ctl(d, *args)
                self.assertEqual(rc, 2, (args, err))


class Forward(unittest.TestCase):
    def test_forward_to_udp_with_the_sdp_and_one_speaker_filter(self):
        with Daemon(workers=2) as d, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx, \
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx_one:
            rx.bind(("127.0.0.1", 0))
            rx_one.bind(("127.0.0.1", 0))
            rx.settimeout(2)
            rx_one.settimeout(2)
            url = "udp://127.0.0.1:%d" % rx.getsockname()[1]
            url_one = "udp://127.0.0.1:%d" % rx_one.getsockname()[1]
            alice, alice_ssrc = speaker(d, "alice", "f1")
            bob, bob_ssrc = speaker(d, "bob", "f1")
            fwd = ctl_json(d, "forward", "start", "f1", url)
            self.assertEqual(fwd["url"], url)
            self.assertIsNone(fwd["ssrc"])
            rc, out, _ = ctl(d, "forward", "start", "f1", url_one, "--ssrc", str(bob_ssrc))
            self.assertEqual(rc, 0, out)
            rc, _, err = ctl(d, "forward", "start", "f1", url)
            self.assertEqual(rc, 1)
            self.assertIn("already", err)
            sent = {}
            for i in range(30):
                for ws, ssrc, tag in ((alice, alice_ssrc, b"A"), (bob, bob_ssrc, b"B")):
                    pkt = rtp(111, i, 960 * i, tag + bytes([i]) * 20)
                    ws.send_binary(pkt)
                    sent[(ssrc, i)] = pkt
                time.sleep(0.003)
            got = []
            while len(got) < 60:
                got.append(rx.recv(2048))
            for pkt in got:
                ssrc = struct.unpack_from("!I", pkt, 8)[0]
                seq = struct.unpack_from("!H", pkt, 2)[0]
                self.assertIn(ssrc, (alice_ssrc, bob_ssrc))          # rewritten by the gateway
                self.assertEqual(pkt[12:], sent[(ssrc, seq)][12:])     # payload unchanged
                self.assertEqual(pkt[:8], sent[(ssrc, seq)][:8])
            one = [rx_one.recv(2048) for _ in range(30)]
            self.assertEqual({struct.unpack_from("!I", p, 8)[0] for p in one}, {bob_ssrc})
            rx_one.settimeout(0.3)
            self.assertRaises(socket.timeout, rx_one.recv, 2048)
            wait_for(lambda: {f["url"]: f["frames"] for f in ctl_json(d, "forward", "list")}
                     == {url: 60, url_one: 30}, what="forward counts")
            # the SDP, from audiogwctl and from the admin API
            rc, sdp, _ = ctl(d, "forward", "sdp", "f1", url)
            self.assertEqual(rc, 0)
            lines = sdp.splitlines()
            self.assertEqual(lines[0], "v=0")
            self.assertIn("m=audio %d RTP/AVP 111" % rx.getsockname()[1], lines)
            self.assertIn("c=IN IP4 127.0.0.1", lines)
            self.assertIn("a=rtpmap:111 opus/48000/2", lines)
            st, hdrs, body = api(d, "GET", "/v1/rooms/f1/sdp?url=" + url_one)
            self.assertEqual(st, 200)
            self.assertEqual(hdrs["content-type"], "application/sdp")
            self.assertIn(b"m=audio %d RTP/AVP" % rx_one.getsockname()[1], body)
            self.assertIn(b"a=ssrc:%d" % bob_ssrc, body)
            # stop one, then the rest
            stopped = ctl_json(d, "forward", "stop", "f1", url_one)
            self.assertEqual([f["url"] for f in stopped["stopped"]], [url_one])
            st, body = api_json(d, "POST", "/v1/rooms/f1/forward/stop", {})
            self.assertEqual(st, 200, body)
            self.assertEqual([f["url"] for f in body["stopped"]], [url])
            self.assertEqual(ctl_json(d, "forward", "list"), [])
            rc, _, err = ctl(d, "forward", "stop", "f1")
            self.assertEqual(rc, 1)
            rc, _, err = ctl(d, "forward", "sdp", "f1")
            self.assertEqual(rc, 1)
            wait_for(lambda: len(audit_events(d, "forward_stop")) == 2, what="forward_stop rows")
            starts = audit_events(d, "forward_start")
            self.assertEqual(len(starts), 2)
            self.assertEqual({r["room"] for r in starts}, {"f1"})
            rc, metrics, _ = ctl(d, "metrics")
            self.assertIn('audiogw_downstream_frames_total{kind="forward"} 90', metrics)

    def test_destinations_outside_allow_are_refused_before_any_packet(self):
        # nothing is ever sent to 192.0.2.1: the check refuses before a socket exists
        with Daemon(workers=1, downstream_extra="allow = 127.0.0.0/8") as d:
            rc, _, err = ctl(d, "forward", "start", "r", "udp://192.0.2.1:5000")
            self.assertEqual(rc, 1)
            self.assertIn("not allowed", err)
            st, body = api_json(d, "POST", "/v1/rooms/r/forward", {"url": "udp://192.0.2.1:5000"})
            self.assertEqual(st, 403, body)
            st, body = api_json(d, "POST", "/v1/rooms/r/forward", {"url": "udp://[::1]:5000"})
            self.assertEqual(st, 403, body)
            st, body = api_json(d, "POST", "/v1/rooms/r/forward", {"url": "udp://[::ffff:192.0.2.1]:5000"})
            self.assertEqual(st, 403, body)
            for bad in ("udp://localhost:5000", "tcp://127.0.0.1:5000", "udp://127.0.0.1:0"):
                st, body = api_json(d, "POST", "/v1/rooms/r/forward", {"url": bad})
                self.assertEqual(st, 400, (bad, body))
            st, body = api_json(d, "POST", "/v1/rooms/r/forward", {})
            self.assertEqual(st, 400, body)
            self.assertEqual(ctl_json(d, "forward", "list"), [])
            self.assertEqual(audit_events(d, "forward_start"), [])
        with Daemon(workers=1, downstream_extra="allow =") as d:
            st, body = api_json(d, "POST", "/v1/rooms/r/forward", {"url": "udp://127.0.0.1:5000"})
            self.assertEqual(st, 403, body)

    def test_a_reload_applies_the_new_allowlist(self):
        with Daemon(workers=1, downstream_extra="allow = 127.0.0.0/8") as d:
            port = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            port.bind(("127.0.0.1", 0))
            url = "udp://127.0.0.1:%d" % port.getsockname()[1]
            ctl_json(d, "forward", "start", "a1", url)
            with open(d.config) as f:
                text = f.read()
            with open(d.config, "w") as f:
                f.write(text.replace("allow = 127.0.0.0/8", "allow = ::1/128"))
            rc, out, err = ctl(d, "reload")
            self.assertEqual(rc, 0, err)
            self.assertEqual(ctl_json(d, "forward", "list"), [])
            rows = wait_for(lambda: audit_events(d, "forward_stop"), what="forward_stop")
            self.assertEqual(rows[0]["reason"], "not_allowed")
            st, body = api_json(d, "POST", "/v1/rooms/a1/forward", {"url": url})
            self.assertEqual(st, 403, body)
            port.close()


class Restart(unittest.TestCase):
    def test_a_killed_downstream_process_comes_back_with_its_work(self):
        with Daemon(workers=1) as d, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
            rx.bind(("127.0.0.1", 0))
            rx.settimeout(3)
            url = "udp://127.0.0.1:%d" % rx.getsockname()[1]
            ctl_json(d, "record", "start", "k1")
            ctl_json(d, "forward", "start", "k1", url)
            alice, _ = speaker(d, "alice", "k1")
            alice.send_binary(rtp(111, 1, 0, opus_payload(1)))
            rx.recv(2048)
            old = d.downstream_pid()
            os.kill(old, signal.SIGKILL)
            wait_for(lambda: d.downstream_pid() not in (None, old), what="a new downstream process")
            wait_for(lambda: listing(d, "forward"), what="the forward restored")
            self.assertEqual([r["room"] for r in ctl_json(d, "record", "list")], ["k1"])
            for i in range(2, 10):
                alice.send_binary(rtp(111, i, 960 * i, opus_payload(i)))
            rx.recv(2048)
            wait_for(lambda: recording_frames(d, "k1") == 8, what="recording again")
            stopped = ctl_json(d, "record", "stop", "k1")
            self.assertEqual(len(stopped["files"]), 1)   # a new file since the restart
            rc, metrics, _ = ctl(d, "metrics")
            self.assertIn("audiogw_downstream_restarts_total 1", metrics)
            # a clean stop removes the saved state
            ctl_json(d, "forward", "stop", "k1")
            alice.close()
            alice.recv_close()
            self.assertEqual(d.stop(), 0)
            self.assertFalse(os.path.exists(os.path.join(d.dir, "run", "downstream.state")))


class Tap(unittest.TestCase):
    @unittest.skipUnless(os.path.exists(TAP_PROBE), "tap_probe helper not built")
    def test_tap_publishes_every_rooms_frames_with_the_room_as_topic(self):
        with Daemon(workers=2, downstream_extra="tap = ipc://./run/tap.ipc") as d:
            url = "ipc://%s/run/tap.ipc" % d.dir
            wait_for(lambda: os.path.exists(url[6:]), what="the tap socket")
            # the tap gets what the downstream process hears: wait until it
            # hears the supervisor and both workers
            wait_for(lambda: any(l.get("msg", "").startswith("connected to 3 ")
                                 for l in d.log_lines("bus_pipes")), what="downstream on the bus")
            probe = subprocess.Popen([TAP_PROBE, url, "t1", "20", "3000"], stdout=subprocess.PIPE, text=True)
            self.assertEqual(probe.stdout.readline().strip(), "connected")
            a, a_ssrc = speaker(d, "alice", "t1")
            b, b_ssrc = speaker(d, "bob", "t2")
            time.sleep(0.2)
            for i in range(10):
                a.send_binary(rtp(111, i, 960 * i, opus_payload(i)))
                b.send_binary(rtp(111, i, 960 * i, opus_payload(i)))
                time.sleep(0.005)
            out, _ = probe.communicate(timeout=10)
            frames = [l.split() for l in out.splitlines() if l.split()[1] == "1"]
            self.assertEqual(len(frames), 10, out)
            self.assertEqual({f[0] for f in frames}, {"t1"})           # subscribed to t1 only
            self.assertEqual({int(f[2]) for f in frames}, {a_ssrc})
            self.assertEqual({int(f[3]) for f in frames}, {12 + 41})
            rc, metrics, _ = ctl(d, "metrics")
            self.assertRegex(metrics, r'audiogw_downstream_frames_total\{kind="tap"\} (2\d|[3-9]\d)')


class Play(unittest.TestCase):
    def play(self, d, room, path, *extra):
        return subprocess.run([AUDIOGW_PLAY, "--url", "ws://127.0.0.1:%d/v1/audio" % d.port,
                               "--token", mint("player", room)] + list(extra) + [path],
                              capture_output=True, text=True, timeout=60)

    def listen(self, ws, until):
        got = []
        while True:
            try:
                m = ws.recv(timeout=max(0.05, until - time.monotonic()))
            except socket.timeout:
                return got
            if m[0] == "binary":
                got.append((time.monotonic(), m[1]))

    def test_play_a_wav_file_in_real_time(self):
        with Daemon(workers=2) as d:
            path = os.path.join(d.dir, "tone.wav")
            with wave.open(path, "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(48000)
                w.writeframes(b"".join(struct.pack("<h", int(9000 * math.sin(i / 8)))
                                       for i in range(48000)))
            bob, _ = speaker(d, "bob", "p1")
            t0 = time.monotonic()
            p = subprocess.Popen([AUDIOGW_PLAY, "--url", "ws://127.0.0.1:%d/v1/audio" % d.port,
                                  "--token", mint("player", "p1"), path],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            got = self.listen(bob, t0 + 4)
            _, err = p.communicate(timeout=30)
            self.assertEqual(p.returncode, 0, err)
            self.assertIn('"event":"done"', err)
            self.assertEqual(len(got), 100)                  # 1 s in 10 ms packets
            pkts = [g[1] for g in got]
            self.assertEqual({pk[1] & 0x7f for pk in pkts}, {96})
            seqs = [struct.unpack_from("!H", pk, 2)[0] for pk in pkts]
            self.assertEqual([(b - a) & 0xffff for a, b in zip(seqs, seqs[1:])], [1] * 99)
            tss = [struct.unpack_from("!I", pk, 4)[0] for pk in pkts]
            self.assertEqual([(b - a) & 0xffffffff for a, b in zip(tss, tss[1:])], [480] * 99)
            self.assertEqual(len(pkts[0]), 12 + 960)
            self.assertEqual(pkts[0][12:14], struct.pack(">h", 0))
            self.assertEqual(pkts[0][14:16], struct.pack(">h", int(9000 * math.sin(1 / 8))))
            span = got[-1][0] - got[0][0]
            self.assertGreater(span, 0.9)                    # paced, not a burst
            self.assertLess(span, 2.0)
            # mu-law at 8 kHz: PT 0 in 160-byte packets
            mu = os.path.join(d.dir, "mu.wav")
            with open(mu, "wb") as f:
                data = bytes(range(256)) * 25                  # 6400 samples: 0.8 s
                fmt = struct.pack("<HHIIHHH", 7, 1, 8000, 8000, 1, 8, 0)
                f.write(b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data)) + b"WAVE" +
                        b"fmt " + struct.pack("<I", len(fmt)) + fmt +
                        b"data" + struct.pack("<I", len(data)) + data)
            t0 = time.monotonic()
            p = subprocess.Popen([AUDIOGW_PLAY, "--url", "ws://127.0.0.1:%d/v1/audio" % d.port,
                                  "--token", mint("player", "p1"), mu],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            got = self.listen(bob, t0 + 3)
            _, err = p.communicate(timeout=30)
            self.assertEqual(p.returncode, 0, err)
            self.assertEqual(len(got), 40)
            self.assertEqual({g[1][1] & 0x7f for g in got}, {0})
            self.assertEqual(b"".join(g[1][12:] for g in got), data)
            # files it cannot play
            bad = os.path.join(d.dir, "bad.wav")
            with wave.open(bad, "wb") as w:
                w.setnchannels(2)
                w.setsampwidth(2)
                w.setframerate(44100)
                w.writeframes(bytes(400))
            self.assertEqual(self.play(d, "p1", bad).returncode, 2)
            self.assertEqual(self.play(d, "p1", os.path.join(d.dir, "missing.opus")).returncode, 2)

    def test_a_recording_played_back_keeps_its_pause(self):
        with Daemon(workers=1) as d:
            ctl_json(d, "record", "start", "src")
            alice, _ = speaker(d, "alice", "src")
            ts = 5000
            for i in range(20):
                if i == 10:
                    ts += 48000                      # 1 s of silence in the timestamps
                alice.send_binary(rtp(111, i, ts, opus_payload(i)))
                ts += 960
                time.sleep(0.004)
            wait_for(lambda: recording_frames(d, "src") == 20, what="20 frames recorded")
            path = ctl_json(d, "record", "stop", "src")["files"][0]["file"]
            bob, _ = speaker(d, "bob", "dst")
            t0 = time.monotonic()
            p = subprocess.Popen([AUDIOGW_PLAY, "--url", "ws://127.0.0.1:%d/v1/audio" % d.port,
                                  "--token", mint("player", "dst"), path],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            got = self.listen(bob, t0 + 4)
            _, err = p.communicate(timeout=30)
            self.assertEqual(p.returncode, 0, err)
            self.assertEqual(len(got), 20)                   # the concealment packets are not sent
            pkts = [g[1] for g in got]
            self.assertEqual([pk[12:] for pk in pkts], [opus_payload(i) for i in range(20)])
            tss = [struct.unpack_from("!I", pk, 4)[0] for pk in pkts]
            steps = [(b - a) & 0xffffffff for a, b in zip(tss, tss[1:])]
            self.assertEqual(steps, [960] * 9 + [960 + 48000] + [960] * 9)
            self.assertTrue(pkts[10][1] & 0x80, "marker after the pause")
            self.assertGreater(got[10][0] - got[9][0], 0.8)  # the pause, in real time


if __name__ == "__main__":
    unittest.main(verbosity=2)
