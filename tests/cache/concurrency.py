#!/usr/bin/env python3
"""concurrency.py - several processes fetching the same and different
artifacts at once (each downloaded once, no corrupt or duplicated entry),
and kill -9 in the middle of downloads (the index stays consistent, the next
fetch resumes and succeeds)."""
import os
import random
import signal
import sqlite3
import sys

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cachetest import (Scratch, Server, check_consistent, main, ok, rows, sha256_file,  # noqa: E402
                       test, wait_for)


def collect(procs):
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=120)
        assert p.returncode == 0, "fetch failed (%d): %s" % (p.returncode, stderr)
        out.append(stdout.strip())
    return out


@test
def same_and_different_artifacts_at_once():
    s = Scratch("conc")
    try:
        files = {}
        for name in ("shared.bin", "b.bin", "c.bin", "d.bin"):
            files[name] = s.put(name, os.urandom(120_000))
        with Server(s.www, s.dir) as srv:
            # Slow enough that all start while the first is still downloading.
            q = "rate=400000"
            procs = [s.popen_fetch(srv.url("shared.bin", q), files["shared.bin"])
                     for _ in range(5)]
            procs += [s.popen_fetch(srv.url(n, q), files[n]) for n in ("b.bin", "c.bin", "d.bin")]
            # The same artifact through two URLs and two names, too.
            procs += [s.popen_fetch(srv.url("shared.bin", q + "&id=other"), files["shared.bin"],
                                    "--name", "shared-%d.bin" % i) for i in range(2)]
            paths = collect(procs)
            assert len(set(paths[:5])) == 1
            for p, n in zip(paths[5:8], ("b.bin", "c.bin", "d.bin")):
                assert sha256_file(p) == files[n]
            for p in paths:
                assert sha256_file(p) == sha256_file(paths[0]) or p in paths[5:8]
            by_path = {}
            for e in srv.gets():
                by_path[e["path"]] = by_path.get(e["path"], 0) + 1
            assert by_path == {"/shared.bin": 1, "/b.bin": 1, "/c.bin": 1, "/d.bin": 1}, by_path
        r = check_consistent(s.cache, allow_partials=False)
        assert len(r) == 4 and len({x["key"] for x in r}) == 4
        j = __import__("json").loads(ok(s.kpar("cache", "stats", "--json")))
        assert j["misses"] == 4 and j["hits"] == 6, j
    finally:
        s.cleanup()


@test
def snapshot_fetched_once_by_concurrent_processes():
    s = Scratch("concsnap")
    try:
        s.put("nightly.bin", os.urandom(100_000))
        with Server(s.www, s.dir) as srv:
            url = srv.url("nightly.bin", "rate=300000")
            paths = collect([s.popen_fetch(url) for _ in range(4)])
            assert len(set(paths)) == 1
            full = [e for e in srv.gets() if e["status"] == 200]
            assert len(full) == 1, srv.gets()
        check_consistent(s.cache, allow_partials=False)
        assert len(rows(s.cache)) == 1
    finally:
        s.cleanup()


def part_size(s, sha):
    try:
        return os.path.getsize(os.path.join(s.cache, "tmp", "sha256-%s.part" % sha))
    except OSError:
        return 0


@test
def kill_9_during_download():
    s = Scratch("kill")
    try:
        data = os.urandom(400_000)
        sha = s.put("big.bin", data)
        with Server(s.www, s.dir) as srv:
            url = srv.url("big.bin", "rate=200000")
            p = s.popen_fetch(url, sha)
            wait_for(lambda: part_size(s, sha) > 50_000, what="the download to start")
            p.send_signal(signal.SIGKILL)
            p.wait(30)
            # The index is sound and knows nothing of the artifact; the bytes
            # so far wait in tmp/ for a resume.
            check_consistent(s.cache)
            assert rows(s.cache) == []
            assert os.listdir(os.path.join(s.cache, "blobs", "sha256")) == []
            got = part_size(s, sha)
            assert got > 0
            path = ok(s.fetch(srv.url("big.bin"), sha))
            assert sha256_file(path) == sha
            # (entries are logged as requests end: the killed one may end last)
            resumed = [e for e in srv.gets() if e["range"]]
            assert [(e["range"], e["status"]) for e in resumed] == [("bytes=%d-" % got, 206)], \
                (srv.gets(), got)
        check_consistent(s.cache, allow_partials=False)
    finally:
        s.cleanup()


@test
def kill_9_repeatedly_at_random_points():
    s = Scratch("killmany")
    rnd = random.Random(4)
    try:
        arts = {}
        for i in range(3):
            arts["a%d.bin" % i] = s.put("a%d.bin" % i, os.urandom(150_000))
        with Server(s.www, s.dir) as srv:
            for rnd_i in range(6):
                procs = [s.popen_fetch(srv.url(n, "rate=500000"), h) for n, h in arts.items()]
                procs.append(s.popen_fetch(srv.url("a0.bin", "rate=500000&id=snap")))
                # Die somewhere between start and the end of the transfers.
                wait_for(lambda: os.path.isdir(os.path.join(s.cache, "tmp")), what="a cache")
                delay = rnd.uniform(0.0, 0.35)
                try:
                    procs[0].wait(delay)
                except Exception:
                    pass
                for p in procs:
                    if p.poll() is None:
                        p.send_signal(signal.SIGKILL)
                for p in procs:
                    p.communicate(timeout=30)
                check_consistent(s.cache)
            # Whatever state that left, the next fetches (of the same URLs:
            # partials are resumed per URL for snapshots) succeed.
            for n, h in arts.items():
                assert sha256_file(ok(s.fetch(srv.url(n, "rate=500000"), h))) == h
            ok(s.fetch(srv.url("a0.bin", "rate=500000&id=snap")))
        r = check_consistent(s.cache, allow_partials=False)
        assert len(r) == 4
        db = sqlite3.connect(os.path.join(s.cache, "index.db"))
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        db.close()
        ok(s.kpar("cache", "verify"))
    finally:
        s.cleanup()


if __name__ == "__main__":
    main()
