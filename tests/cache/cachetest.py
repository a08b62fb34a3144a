"""cachetest.py - what the artifact cache's integration tests share: the
loopback fault server (httpd.py) as a context manager, a scratch directory,
running `kpar`, and consistency checks of a cache directory.

Each test file lists functions decorated with @test and ends with
`main()`, which runs them with tests/lib/testlib.py's runner.
"""
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP_BUILDDIR = os.environ.get("KPAR_TOP_BUILDDIR", os.path.abspath(os.path.join(HERE, "..", "..")))
KPAR = os.environ.get("KPAR_BIN") or os.path.join(TOP_BUILDDIR, "kpar")
RUN_TIMEOUT = 120


sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from testlib import Skip, run_tests  # noqa: E402,F401


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def sha256_file(path):
    with open(path, "rb") as f:
        return sha256(f.read())


def wait_for(pred, timeout=20.0, what="condition"):
    """Polls pred() until true; bounded (a hung fault must fail, not hang)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


class Server:
    """httpd.py on 127.0.0.1, serving root; .url(path) for its URLs."""

    def __init__(self, root, workdir, tls=None, stall_seconds=30):
        self.root = root
        self.log_path = os.path.join(workdir, "httpd-%d.log" % id(self))
        port_file = os.path.join(workdir, "httpd-%d.port" % id(self))
        cmd = [sys.executable, os.path.join(HERE, "httpd.py"), "--root", root,
               "--port-file", port_file, "--log", self.log_path, "--lifetime", "900",
               "--stall-seconds", str(stall_seconds)]
        if tls:
            cmd += ["--tls-cert", tls[0], "--tls-key", tls[1]]
        self.scheme = "https" if tls else "http"
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
        try:
            wait_for(lambda: os.path.exists(port_file) or self.proc.poll() is not None,
                     what="the test HTTP server")
            if self.proc.poll() is not None:
                raise RuntimeError("httpd.py exited with %s" % self.proc.returncode)
            with open(port_file) as f:
                self.port = int(f.read())
        except Exception:
            self.stop()
            raise

    def url(self, path, query=None):
        u = "%s://127.0.0.1:%d/%s" % (self.scheme, self.port, path.lstrip("/"))
        return u + ("?" + query if query else "")

    def _read(self):
        if not os.path.exists(self.log_path):
            return []
        with open(self.log_path) as f:
            return [json.loads(line) for line in f if line.strip()]

    def log(self, settle=5.0):
        """Finished requests, in the order they arrived.  Waits (a little) for
        those in flight, since a handler logs after its client may already
        have everything; a request still in flight after settle seconds (a
        stalled one) is left out.  The file holds them in the order their
        handlers finished, which is not the order they came in: the client
        may send its next request (on another connection, so to another
        handler thread) before the thread that answered the previous one has
        logged it.  Ids are given as requests begin."""
        end = time.monotonic() + settle
        while True:
            entries = self._read()
            begun = {e["begin"] for e in entries if "begin" in e}
            done = [e for e in entries if "begin" not in e]
            if begun <= {e["id"] for e in done} or time.monotonic() > end:
                return sorted(done, key=lambda e: e["id"])
            time.sleep(0.02)

    def gets(self, path=None):
        """GET requests (to path, if given) that were answered with a body."""
        return [e for e in self.log() if e.get("method") == "GET" and
                (path is None or e["path"] == "/" + path.lstrip("/"))]

    def clear_log(self):
        open(self.log_path, "w").close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class Scratch:
    """A temporary directory with www/ (served) and cache/ (KPAR_CACHE_DIR)."""

    def __init__(self, name):
        self.dir = tempfile.mkdtemp(prefix="kpar-cache-%s-" % name)
        self.www = os.path.join(self.dir, "www")
        self.cache = os.path.join(self.dir, "cache")
        os.makedirs(self.www)

    def put(self, name, data):
        """Writes www/name; returns its sha256 hex."""
        path = os.path.join(self.www, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, path)
        return sha256(data)

    def env(self, **extra):
        env = dict(os.environ)
        for k in list(env):
            if k.startswith("KPAR_CACHE_") or k in ("http_proxy", "https_proxy", "HTTP_PROXY",
                                                     "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):
                del env[k]
        env["KPAR_CACHE_DIR"] = self.cache
        env["NO_PROXY"] = "*"
        # Sanitizer builds: leaks are a finding of their own, not of these tests.
        env.setdefault("ASAN_OPTIONS", "detect_leaks=0")
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def kpar(self, *args, env=None, timeout=RUN_TIMEOUT):
        return subprocess.run([KPAR] + list(args), env=env or self.env(), text=True,
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)

    def fetch(self, url, sha=None, *more, env=None):
        args = ["fetch"] + (["--sha256", sha] if sha else []) + list(more) + [url]
        return self.kpar(*args, env=env)

    def popen_fetch(self, url, sha=None, *more, env=None):
        args = [KPAR, "fetch"] + (["--sha256", sha] if sha else []) + list(more) + [url]
        return subprocess.Popen(args, env=env or self.env(), text=True, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def ok(proc, what="kpar"):
    """Asserts a CompletedProcess succeeded; returns its stdout stripped."""
    assert proc.returncode == 0, "%s failed (%d): %s%s" % (what, proc.returncode, proc.stdout,
                                                            proc.stderr)
    return proc.stdout.strip()


def fails(proc, *needles, code=2):
    """Asserts a CompletedProcess failed with code and stderr naming needles."""
    assert proc.returncode == code, "expected exit %d, got %d: %s%s" % (
        code, proc.returncode, proc.stdout, proc.stderr)
    for n in needles:
        assert n in proc.stderr, "%r not in error: %s" % (n, proc.stderr)
    return proc.stderr


def rows(cache):
    """The index's entries as dicts (opened read-only, as an observer)."""
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(cache, "index.db"), uri=True)
    db.row_factory = sqlite3.Row
    try:
        # A kill -9 while the very first process created the schema leaves
        # an index without tables: as empty as it looks (kpar creates them).
        if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'entries'").fetchone():
            return []
        return [dict(r) for r in db.execute("SELECT * FROM entries ORDER BY key")]
    finally:
        db.close()


def check_consistent(cache, allow_partials=True):
    """The cache's invariants: the index is sound, every row's blob exists
    with the recorded size and the content its name says, every blob's name
    is its SHA-256, no temporary file is left in blobs/, and links point at
    blobs.  Returns the rows."""
    db = sqlite3.connect(os.path.join(cache, "index.db"))
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        db.close()
    rs = rows(cache)
    blobs = os.path.join(cache, "blobs", "sha256")
    for r in rs:
        hexd = r["digest"][len("sha256:"):]
        path = os.path.join(blobs, hexd)
        assert os.path.isfile(path), "row %s without blob" % r["key"]
        assert os.path.getsize(path) == r["size"], "size of %s" % r["key"]
    seen = set()
    for name in os.listdir(blobs):
        path = os.path.join(blobs, name)
        assert len(name) == 64 and sha256_file(path) == name, "bad blob %s" % name
        seen.add(name)
    for top in ("named", "snapshots"):
        d = os.path.join(cache, top)
        if not os.path.isdir(d):
            continue
        for key in os.listdir(d):
            for link in os.listdir(os.path.join(d, key)):
                p = os.path.join(d, key, link)
                assert os.path.islink(p), "%s is not a link" % p
                target = os.path.basename(os.readlink(p))
                assert target in seen, "%s points at a missing blob" % p
    tmp = os.path.join(cache, "tmp")
    if not allow_partials and os.path.isdir(tmp):
        assert os.listdir(tmp) == [], "leftovers in tmp/: %s" % os.listdir(tmp)
    return rs


_tests = []


def test(fn):
    _tests.append(fn)
    return fn


def main():
    run_tests(_tests, needs=(KPAR,))
