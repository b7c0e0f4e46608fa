"""`meson install` with DESTDIR (SPEC 7): binaries, man pages, example
config, systemd unit and sysctl file land where they belong, and what was
installed works."""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

BUILD = os.environ.get("MESON_BUILD_ROOT")


@unittest.skipUnless(BUILD and shutil.which("meson"), "needs MESON_BUILD_ROOT (run by meson test)")
class Install(unittest.TestCase):
    def test_installed_tree(self):
        with tempfile.TemporaryDirectory(prefix="audiogwd-install-") as dest:
            r = subprocess.run(["meson", "install", "-C", BUILD, "--destdir", dest, "--no-rebuild",
                                "--quiet"], capture_output=True, text=True, timeout=300)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            files = set()
            for root, _, names in os.walk(dest):
                for n in names:
                    files.add(os.path.relpath(os.path.join(root, n), dest))

            def find(suffix):
                hits = [f for f in files if f.endswith(suffix)]
                self.assertTrue(hits, "%s not installed; got %s" % (suffix, sorted(files)))
                return os.path.join(dest, hits[0])

            daemon = find("sbin/audiogwd")
            for b in ("bin/audiogwctl", "bin/audiogw-client", "bin/audiogw-play"):
                self.assertTrue(os.access(find(b), os.X_OK))
            pages = [find(p) for p in ("man8/audiogwd.8", "man5/audiogwd.conf.5",
                                       "man8/audiogwctl.8", "man1/audiogw-client.1")]
            conf = find("audiogwd/audiogwd.conf")
            find("systemd/system/audiogwd.service")
            find("sysctl.d/90-audiogwd.conf")
            out = subprocess.run([daemon, "-V"], capture_output=True, text=True, timeout=10)
            self.assertEqual(out.returncode, 0)
            self.assertTrue(out.stdout.startswith("audiogwd "))
            with open(conf) as f:
                self.assertIn("[server]", f.read())
            if shutil.which("mandoc"):
                lint = subprocess.run(["mandoc", "-Tlint", "-W", "warning"] + pages,
                                      capture_output=True, text=True)
                self.assertEqual(lint.stdout + lint.stderr, "")


if __name__ == "__main__":
    unittest.main(verbosity=2)
