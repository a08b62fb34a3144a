#!/usr/bin/env python3
"""fetch.py - `kpar fetch` against a real HTTP server with faults: 404, 500,
truncated bodies (resume), wrong checksums, slow and stalled servers,
redirects, servers that ignore Range, mirrors in order, TLS verification."""
import os
import subprocess
import sys

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cachetest import (Scratch, Server, Skip, check_consistent, fails, main, ok,  # noqa: E402
                       rows, sha256, sha256_file, test)

PAYLOAD = bytes((i * 7 + i // 251) % 256 for i in range(200_000))


def setup(name):
    s = Scratch(name)
    sha = s.put("pkg-1.0.tar.gz", PAYLOAD)
    return s, sha


@test
def pinned_downloads_once():
    s, sha = setup("once")
    try:
        with Server(s.www, s.dir) as srv:
            url = srv.url("pkg-1.0.tar.gz")
            path = ok(s.fetch(url, sha))
            assert path == os.path.join(s.cache, "blobs", "sha256", sha)
            assert sha256_file(path) == sha
            assert ok(s.fetch(url, "sha256:" + sha.upper())) == path
            # Pinned means never again, even from another URL or a dead server.
            srv.stop()
            assert ok(s.fetch("http://127.0.0.1:1/elsewhere.tgz", sha)) == path
            assert len(srv.gets()) == 1
            ua = srv.log()[0]["user_agent"]
            assert ua.startswith("kpar/"), ua
        r = check_consistent(s.cache, allow_partials=False)
        assert len(r) == 1 and r[0]["pinned"] == 1 and r[0]["size"] == len(PAYLOAD)
        assert r[0]["url"].endswith("/pkg-1.0.tar.gz")
    finally:
        s.cleanup()


@test
def not_found_404():
    s, sha = setup("404")
    try:
        with Server(s.www, s.dir) as srv:
            url = srv.url("missing.tar.gz")
            err = fails(s.fetch(url, sha), url, "HTTP 404")
            assert "retry" not in err
            assert len(srv.gets()) == 1          # a 404 is not retried
        check_consistent(s.cache, allow_partials=False)
        assert rows(s.cache) == []
    finally:
        s.cleanup()


@test
def server_error_500_retried():
    s, sha = setup("500")
    try:
        with Server(s.www, s.dir) as srv:
            # Fails once, then works: the retry gets it.
            url = srv.url("pkg-1.0.tar.gz", "status=500&times=1")
            path = ok(s.fetch(url, sha))
            assert sha256_file(path) == sha
            assert [e["status"] for e in srv.gets()] == [500, 200]
            # Fails every time: the error names the URL and the status.
            srv.clear_log()
            url = srv.url("pkg-1.0.tar.gz", "status=503")
            fails(s.fetch(url, "0" * 64, "--retries", "1"), url, "HTTP 503")
            assert len(srv.gets()) == 2
        check_consistent(s.cache, allow_partials=False)
    finally:
        s.cleanup()


@test
def wrong_checksum_stores_nothing():
    s, sha = setup("checksum")
    try:
        wrong = sha256(b"something else")
        with Server(s.www, s.dir) as srv:
            url = srv.url("pkg-1.0.tar.gz")
            err = fails(s.fetch(url, wrong), url, "checksum mismatch",
                        "expected sha256:" + wrong, "got sha256:" + sha, "nothing stored")
            assert "200000 bytes" in err
        assert rows(s.cache) == []
        assert os.listdir(os.path.join(s.cache, "blobs", "sha256")) == []
        assert os.listdir(os.path.join(s.cache, "tmp")) == []
    finally:
        s.cleanup()


@test
def truncated_body_resumes():
    s, sha = setup("truncated")
    try:
        with Server(s.www, s.dir) as srv:
            # The connection drops after 60000 bytes; with no retries the
            # fetch fails, keeping what it got for later.
            url = srv.url("pkg-1.0.tar.gz", "truncate=60000&times=1")
            fails(s.fetch(url, sha, "--retries", "0"), url, "truncated")
            assert rows(s.cache) == []
            part = os.path.join(s.cache, "tmp", "sha256-%s.part" % sha)
            assert os.path.getsize(part) == 60000
            # The next fetch asks only for the rest, with If-Range.
            path = ok(s.fetch(url, sha))
            assert sha256_file(path) == sha
            last = srv.gets()[-1]
            assert last["range"] == "bytes=60000-", last
            assert last["if_range"] and last["status"] == 206, last
            assert last["sent"] == len(PAYLOAD) - 60000
            # Within one fetch: truncated twice, resumed by the retries.
            srv.clear_log()
            sha2 = s.put("other.bin", PAYLOAD[::-1])
            url2 = srv.url("other.bin", "truncate=50000&times=2")
            path2 = ok(s.fetch(url2, sha2))
            assert sha256_file(path2) == sha2
            assert [e["range"] for e in srv.gets()] == [None, "bytes=50000-", "bytes=100000-"]
        check_consistent(s.cache, allow_partials=False)
    finally:
        s.cleanup()


@test
def server_ignoring_range_restarts_cleanly():
    s, sha = setup("norange")
    try:
        with Server(s.www, s.dir) as srv:
            url = srv.url("pkg-1.0.tar.gz", "truncate=70000&times=1&norange=1")
            fails(s.fetch(url, sha, "--retries", "0"), url, "truncated")
            path = ok(s.fetch(url, sha))
            assert sha256_file(path) == sha
            last = srv.gets()[-1]
            assert last["range"] == "bytes=70000-" and last["status"] == 200
        check_consistent(s.cache, allow_partials=False)
    finally:
        s.cleanup()


@test
def resumed_prefix_from_other_content_restarts():
    # A partial left by a different version of the file: the resumed result
    # fails the checksum, so kpar starts over once from byte 0.
    s, sha = setup("badprefix")
    try:
        with Server(s.www, s.dir) as srv:
            url = srv.url("pkg-1.0.tar.gz")
            os.makedirs(os.path.join(s.cache, "tmp"), exist_ok=True)
            with open(os.path.join(s.cache, "tmp", "sha256-%s.part" % sha), "wb") as f:
                f.write(b"\xff" * 1000)
            path = ok(s.fetch(url, sha))
            assert sha256_file(path) == sha
            assert [e["range"] for e in srv.gets()] == ["bytes=1000-", None]
        check_consistent(s.cache, allow_partials=False)
    finally:
        s.cleanup()


@test
def slow_server_succeeds():
    s = Scratch("slow")
    try:
        data = os.urandom(30_000)
        sha = s.put("slow.bin", data)
        with Server(s.www, s.dir) as srv:
            # Headers late, then about 40 KB/s: slow, never stalled.
            path = ok(s.fetch(srv.url("slow.bin", "delay=0.5&rate=40000"), sha))
            assert sha256_file(path) == sha
    finally:
        s.cleanup()


@test
def stalled_server_times_out():
    s = Scratch("stall")
    try:
        data = os.urandom(50_000)
        sha = s.put("stall.bin", data)
        # curl judges the speed over a few seconds: the stall must outlast that.
        with Server(s.www, s.dir, stall_seconds=30) as srv:
            url = srv.url("stall.bin", "stall=1000")
            env = s.env(KPAR_CACHE_STALL_TIMEOUT=1, KPAR_CACHE_RETRIES=0)
            fails(s.fetch(url, sha, env=env), url, "timed out")
            assert rows(s.cache) == []
            # What arrived before a stall is kept and resumed: here the first
            # request stalls again (after 1000 more bytes), the retry finishes.
            url_ok = srv.url("stall.bin", "stall=1000&times=1")
            ok(s.fetch(url_ok, sha, env=s.env(KPAR_CACHE_STALL_TIMEOUT=1, KPAR_CACHE_RETRIES=1)))
            # (requests are logged as they end: the stalled ones last)
            done = [(e["range"], e["status"], e.get("truncated", False)) for e in srv.gets()]
            assert ("bytes=2000-", 206, False) in done, done
        check_consistent(s.cache, allow_partials=False)
    finally:
        s.cleanup()


@test
def redirects_limited_and_safe():
    s, sha = setup("redirect")
    try:
        with Server(s.www, s.dir) as srv:
            path = ok(s.fetch(srv.url("pkg-1.0.tar.gz", "redirect=3"), sha))
            assert sha256_file(path) == sha
            assert [e["status"] for e in srv.gets()] == [302, 302, 302, 200]
            url = srv.url("pkg-1.0.tar.gz", "redirect=9")
            fails(s.fetch(url, "1" * 64), url, "more than 5 redirects")
            url = srv.url("pkg-1.0.tar.gz", "location=file:///etc/passwd")
            fails(s.fetch(url, "1" * 64), url, "protocol not allowed")
            url = srv.url("pkg-1.0.tar.gz", "location=" + srv.url("gone.tgz"))
            fails(s.fetch(url, "1" * 64), "HTTP 404", "redirected to")
        check_consistent(s.cache, allow_partials=False)
    finally:
        s.cleanup()


@test
def mirrors_in_order():
    s, sha = setup("mirrors")
    try:
        os.makedirs(os.path.join(s.www, "m2"))
        with open(os.path.join(s.www, "m2", "pkg-1.0.tar.gz"), "wb") as f:
            f.write(b"a corrupt mirror copy")
        s.put("m3/pkg-1.0.tar.gz", PAYLOAD)
        s.put("cas/" + sha, PAYLOAD)
        with Server(s.www, s.dir) as srv:
            origin = srv.url("origin-is-down/pkg-1.0.tar.gz")
            mirrors = " ".join([srv.url("m1"), srv.url("m2"), srv.url("m3")])
            env = s.env(KPAR_CACHE_MIRRORS=mirrors)
            path = ok(s.fetch(origin, sha, env=env))
            assert sha256_file(path) == sha
            assert [e["path"] for e in srv.gets()] == [
                "/m1/pkg-1.0.tar.gz", "/m2/pkg-1.0.tar.gz", "/m3/pkg-1.0.tar.gz"]
            assert rows(s.cache)[0]["url"] == origin
            # Content-addressed mirror form, and --mirror alternates after the URL.
            s2 = Scratch("mirrors2")
            try:
                env2 = s2.env(KPAR_CACHE_MIRRORS=srv.url("cas/{sha256}"))
                srv.clear_log()
                ok(s2.fetch(origin, sha, env=env2))
                assert [e["path"] for e in srv.gets()] == ["/cas/" + sha]
                srv.clear_log()
                shutil_rm(s2.cache)
                ok(s2.fetch(origin, sha, "--mirror", srv.url("m1/x"), "--mirror",
                            srv.url("m3/pkg-1.0.tar.gz"), env=s2.env()))
                assert [e["path"] for e in srv.gets()] == [
                    "/origin-is-down/pkg-1.0.tar.gz", "/m1/x", "/m3/pkg-1.0.tar.gz"]
                # All fail: every URL and its failure is named.
                shutil_rm(s2.cache)
                err = fails(s2.fetch(origin, sha, env=s2.env(KPAR_CACHE_MIRRORS=srv.url("m2"))),
                            "every URL failed", "/m2/pkg-1.0.tar.gz", "checksum mismatch",
                            "/origin-is-down/pkg-1.0.tar.gz", "HTTP 404")
                assert "nothing stored" in err
            finally:
                s2.cleanup()
        check_consistent(s.cache, allow_partials=False)
    finally:
        s.cleanup()


@test
def log_in_request_order():
    # mirrors_in_order once failed under load: the server logged the second
    # mirror's request before the first's, whose handler thread had answered
    # but not yet logged.  The log must give requests in the order they came.
    s, sha = setup("logorder")
    try:
        with Server(s.www, s.dir) as srv:
            first = srv.url("pkg-1.0.tar.gz", "logdelay=1")
            fails(s.fetch(first, "0" * 64), "checksum mismatch")
            ok(s.fetch(srv.url("pkg-1.0.tar.gz", "id=2"), sha))
            assert [e["query"] for e in srv.gets()] == ["logdelay=1", "id=2"], srv.gets()
    finally:
        s.cleanup()


def shutil_rm(path):
    subprocess.run(["rm", "-rf", path], check=True)


@test
def credentials_never_shown():
    s, sha = setup("creds")
    try:
        with Server(s.www, s.dir) as srv:
            url = srv.url("missing.tgz").replace("http://", "http://user:s3cr3t@")
            err = fails(s.fetch(url, sha))
            assert "s3cr3t" not in err and "HTTP 404" in err, err
            url = srv.url("pkg-1.0.tar.gz").replace("http://", "http://user:s3cr3t@")
            ok(s.fetch(url, sha))
            assert "s3cr3t" not in rows(s.cache)[0]["url"]
    finally:
        s.cleanup()


@test
def tls_verified():
    s, sha = setup("tls")
    try:
        cert, key = os.path.join(s.dir, "cert.pem"), os.path.join(s.dir, "key.pem")
        r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                            "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                            "-addext", "subjectAltName=IP:127.0.0.1"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise Skip("openssl cannot make a certificate: " + r.stderr)
        with Server(s.www, s.dir, tls=(cert, key)) as srv:
            url = srv.url("pkg-1.0.tar.gz")
            fails(s.fetch(url, sha), url, "certificate")
            assert rows(s.cache) == []
            path = ok(s.fetch(url, sha, env=s.env(KPAR_CACHE_CA_BUNDLE=cert)))
            assert sha256_file(path) == sha
    finally:
        s.cleanup()


@test
def bad_requests():
    s, sha = setup("bad")
    try:
        fails(s.fetch("http://127.0.0.1:1/x", "abc"), "'abc' is not a SHA-256")
        fails(s.fetch("http://127.0.0.1:1/x", sha, "--name", "../x"), "artifact name '../x'")
        fails(s.kpar("fetch"), "no URL given")
        fails(s.kpar("fetch", "a", "b"), "one URL at a time")
        fails(s.fetch("http://127.0.0.1:1/x", env=s.env(KPAR_CACHE_REVALIDATE="often")),
              "KPAR_CACHE_REVALIDATE", "'often'")
        r = s.kpar("fetch", "--lookup", "--sha256", sha, "http://127.0.0.1:1/x")
        assert r.returncode == 1 and r.stdout == ""
    finally:
        s.cleanup()


if __name__ == "__main__":
    main()
