#!/usr/bin/env python3
"""snapshot.py - artifacts without a checksum: revalidated with ETag /
If-Modified-Since per KPAR_CACHE_REVALIDATE, updated in place when the
origin changes, served stale (with a warning) when the origin is down."""
import os
import sys

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cachetest import Scratch, Server, check_consistent, fails, main, ok, rows, sha256, test  # noqa: E402


def read(path):
    with open(path, "rb") as f:
        return f.read()


@test
def etag_revalidation_and_change():
    s = Scratch("etag")
    try:
        s.put("nightly.txt", b"build 1\n")
        with Server(s.www, s.dir) as srv:
            url = srv.url("nightly.txt")
            path = ok(s.fetch(url))
            assert "/snapshots/" in path and path.endswith("/nightly.txt")
            assert read(path) == b"build 1\n"
            mtime1 = os.stat(path).st_mtime
            etag1 = rows(s.cache)[0]["etag"]
            assert etag1
            # Unchanged: a conditional request, a 304, no body, same file.
            assert ok(s.fetch(url)) == path
            last = srv.gets()[-1]
            assert last["if_none_match"] == etag1 and last["status"] == 304, last
            assert os.stat(path).st_mtime == mtime1
            # The origin changes: the new ETag's content replaces the old.
            s.put("nightly.txt", b"build 2, bigger\n")
            assert ok(s.fetch(url)) == path
            assert read(path) == b"build 2, bigger\n"
            assert srv.gets()[-1]["status"] == 200
            r = rows(s.cache)
            assert len(r) == 1 and r[0]["etag"] != etag1 and r[0]["digest"] == "sha256:" + sha256(b"build 2, bigger\n")
            # The old content went with it (nothing else used it).
            assert not os.path.exists(os.path.join(s.cache, "blobs", "sha256", sha256(b"build 1\n")))
        check_consistent(s.cache, allow_partials=False)
    finally:
        s.cleanup()


@test
def if_modified_since_without_etag():
    s = Scratch("ims")
    try:
        s.put("plain.txt", b"v1\n")
        os.utime(os.path.join(s.www, "plain.txt"), (1_600_000_000, 1_600_000_000))
        with Server(s.www, s.dir) as srv:
            url = srv.url("plain.txt", "etag=none")
            ok(s.fetch(url))
            assert rows(s.cache)[0]["etag"] is None
            ok(s.fetch(url))
            last = srv.gets()[-1]
            assert last["if_none_match"] is None
            assert last["if_modified_since"] == "Sun, 13 Sep 2020 12:26:40 GMT", last
            assert last["status"] == 304
    finally:
        s.cleanup()


@test
def revalidation_policies():
    s = Scratch("policy")
    try:
        s.put("p.txt", b"one\n")
        with Server(s.www, s.dir) as srv:
            url = srv.url("p.txt")
            ok(s.fetch(url))
            n = len(srv.gets())
            # never / a long period: no request at all.
            path = ok(s.fetch(url, None, "--revalidate", "never"))
            ok(s.fetch(url, env=s.env(KPAR_CACHE_REVALIDATE="1h")))
            assert len(srv.gets()) == n
            # Even when the origin changed: the policy says not to look.
            s.put("p.txt", b"two\n")
            assert read(ok(s.fetch(url, None, "--revalidate", "3600"))) == b"one\n"
            # Once the period is over (the index says checked long ago), it looks.
            import sqlite3
            db = sqlite3.connect(os.path.join(s.cache, "index.db"))
            db.execute("UPDATE entries SET checked = checked - 7200")
            db.commit()
            db.close()
            assert read(ok(s.fetch(url, None, "--revalidate", "3600"))) == b"two\n"
            assert len(srv.gets()) == n + 1
            # always: every fetch asks.
            ok(s.fetch(url, None, "--revalidate", "always"))
            assert len(srv.gets()) == n + 2
    finally:
        s.cleanup()


@test
def origin_down_serves_stale_but_404_fails():
    s = Scratch("stale")
    try:
        s.put("s.txt", b"cached\n")
        with Server(s.www, s.dir) as srv:
            url = srv.url("s.txt")
            path = ok(s.fetch(url))
            # 5xx (retried, then given up): the cached copy, with a warning.
            url500 = url  # same entry, the server now fails
            srv.stop()
        r = s.fetch(url500, None, "--retries", "0")
        assert ok(r) == path and "warning" in r.stderr and "cached copy" in r.stderr, r.stderr
        with Server(s.www, s.dir) as srv2:
            # A new port is a new URL; make the old entry's origin say "gone".
            url2 = srv2.url("s.txt")
            ok(s.fetch(url2))
            os.unlink(os.path.join(s.www, "s.txt"))
            fails(s.fetch(url2), url2, "HTTP 404")
    finally:
        s.cleanup()


@test
def snapshot_names_and_shared_blob():
    s = Scratch("names")
    try:
        sha = s.put("lib.tar.gz", b"library bytes")
        with Server(s.www, s.dir) as srv:
            url = srv.url("lib.tar.gz", "x=1")
            p1 = ok(s.fetch(url))
            assert p1.endswith("/lib.tar.gz")
            p2 = ok(s.fetch(url, None, "--name", "lib-latest.tgz"))
            assert os.path.dirname(p1) == os.path.dirname(p2) and p2.endswith("/lib-latest.tgz")
            # The same bytes pinned: one blob, two entries.
            p3 = ok(s.fetch(srv.url("lib.tar.gz"), sha))
            assert read(p1) == read(p2) == read(p3)
            st = ok(s.kpar("cache", "stats", "--json"))
            import json
            j = json.loads(st)
            assert j["entries"] == 2 and j["blobs"] == 1 and j["snapshots"] == 1, j
            # The snapshot moves on; the pinned entry keeps the old bytes.
            s.put("lib.tar.gz", b"library bytes v2")
            ok(s.fetch(url))
            assert read(p1) == read(p2) == b"library bytes v2"
            assert read(p3) == b"library bytes"
        check_consistent(s.cache, allow_partials=False)
    finally:
        s.cleanup()


@test
def snapshot_resume_needs_validator():
    s = Scratch("snapresume")
    try:
        data = os.urandom(80_000)
        s.put("big.bin", data)
        with Server(s.www, s.dir) as srv:
            url = srv.url("big.bin", "truncate=30000&times=1")
            fails(s.fetch(url, None, "--retries", "0"), "truncated")
            path = ok(s.fetch(url))
            assert read(path) == data
            last = srv.gets()[-1]
            assert last["range"] == "bytes=30000-" and last["if_range"], last
            # Content changed between the two attempts: If-Range sends it whole.
            s.put("big2.bin", data)
            url2 = srv.url("big2.bin", "truncate=30000&times=1")
            fails(s.fetch(url2, None, "--retries", "0"), "truncated")
            new = os.urandom(60_000)
            s.put("big2.bin", new)
            path2 = ok(s.fetch(url2))
            assert read(path2) == new
            last = srv.gets()[-1]
            assert last["range"] == "bytes=30000-" and last["status"] == 200, last
            # No validator at all: no resume, a clean restart.
            s.put("big3.bin", data)
            url3 = srv.url("big3.bin", "truncate=30000&times=1&etag=none&nolm=1")
            fails(s.fetch(url3, None, "--retries", "0"), "truncated")
            assert read(ok(s.fetch(url3))) == data
            assert srv.gets()[-1]["range"] is None
        check_consistent(s.cache, allow_partials=False)
    finally:
        s.cleanup()


if __name__ == "__main__":
    main()
