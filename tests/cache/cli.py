#!/usr/bin/env python3
"""cli.py - `kpar cache` end to end: path, key, stats, list, use, gc (size,
age, the current build kept), verify, and export: the read-only cache the
image ships, which answers lookups with no network and no write."""
import json
import os
import sqlite3
import sys
import time

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cachetest import Scratch, Server, check_consistent, fails, main, ok, rows, sha256_file, test  # noqa: E402


def age(cache, key, seconds):
    db = sqlite3.connect(os.path.join(cache, "index.db"))
    db.execute("UPDATE entries SET last_used = ? WHERE key = ?", (int(time.time()) - seconds, key))
    db.commit()
    db.close()


def tree(root):
    """Every path under root with its size, mtime and mode (to prove nothing changed)."""
    out = {}
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n)
            st = os.lstat(p)
            out[os.path.relpath(p, root)] = (st.st_size, st.st_mtime_ns, st.st_mode)
    return out


@test
def path_key_stats_list():
    s = Scratch("cli")
    try:
        sha = s.put("a.txt", b"aaa\n")
        with Server(s.www, s.dir) as srv:
            url = srv.url("a.txt")
            assert ok(s.kpar("cache", "path")) == s.cache
            will = ok(s.kpar("cache", "path", url, "--sha256", sha))
            assert will == os.path.join(s.cache, "blobs", "sha256", sha)
            r = s.kpar("cache", "path", url, "--sha256", sha, "--check")
            assert r.returncode == 1
            assert ok(s.fetch(url, sha)) == will
            ok(s.kpar("cache", "path", url, "--sha256", sha, "--check"))
            assert ok(s.kpar("cache", "key", url, "--sha256", sha)) == "sha256:" + sha
            assert ok(s.kpar("cache", "key", url)).startswith("url:")
            ok(s.fetch(url, sha))
            ok(s.fetch(url))
            j = json.loads(ok(s.kpar("cache", "stats", "--json")))
            assert j["entries"] == 2 and j["pinned"] == 1 and j["snapshots"] == 1, j
            assert j["blobs"] == 1 and j["bytes"] == 4, j
            assert j["hits"] == 1 and j["misses"] == 2 and abs(j["hit_rate"] - 1 / 3) < 1e-9, j
            text = ok(s.kpar("cache", "stats"))
            assert "hit rate:     33.3%" in text and "entries:      2" in text, text
            lst = json.loads(ok(s.kpar("cache", "list", "--json")))
            assert {e["pinned"] for e in lst} == {True, False}
            assert url in ok(s.kpar("cache", "list"))
        fails(s.kpar("cache", "frobnicate"), "unknown command 'frobnicate'")
        fails(s.kpar("cache", "gc", "--max-size", "lots"), "--max-size", "'lots'")
    finally:
        s.cleanup()


@test
def gc_by_size_and_age_keeps_current_build():
    s = Scratch("gc")
    try:
        shas = {n: s.put(n, os.urandom(size)) for n, size in
                (("old.bin", 10_000), ("mid.bin", 20_000), ("new.bin", 30_000), ("used.bin", 40_000))}
        with Server(s.www, s.dir) as srv:
            for n, h in shas.items():
                ok(s.fetch(srv.url(n), h, "--name", n))
        for n, ago in (("old.bin", 400 * 86400), ("mid.bin", 3 * 86400), ("new.bin", 2 * 86400),
                       ("used.bin", 500 * 86400)):
            age(s.cache, "sha256:" + shas[n], ago)
        used = os.path.join(s.dir, "cache-used")
        ok(s.kpar("cache", "use", "--used-list", used, "sha256:" + shas["used.bin"]))
        assert open(used).read() == "sha256:%s\n" % shas["used.bin"]
        # `use` marked it used now, so age it again: the list alone must keep it.
        age(s.cache, "sha256:" + shas["used.bin"], 500 * 86400)
        dry = ok(s.kpar("cache", "gc", "--max-age", "90d", "--grace", "0", "--keep-list", used,
                        "--dry-run"))
        assert dry.startswith("would remove 1 entries"), dry
        assert len(rows(s.cache)) == 4
        out = ok(s.kpar("cache", "gc", "--max-age", "90d", "--max-size", "75000", "--grace", "0",
                        "--keep-list", used))
        # old.bin by age, then mid.bin (least recently used) for size.
        assert out.startswith("removed 2 entries"), out
        left = {r["digest"][7:] for r in rows(s.cache)}
        assert left == {shas["new.bin"], shas["used.bin"]}, left
        assert not os.path.exists(os.path.join(s.cache, "named", shas["old.bin"]))
        check_consistent(s.cache, allow_partials=False)
        # The default grace period (1h) protects what another build just used:
        # new.bin is used now (a hit: no server needed for a pinned artifact).
        ok(s.fetch("http://127.0.0.1:1/new.bin", shas["new.bin"]))
        out = ok(s.kpar("cache", "gc", "--max-size", "1"))
        assert out.startswith("removed 1 entries") and "kept 1 in use" in out, out
        # With nothing in use, everything can go.
        out = ok(s.kpar("cache", "gc", "--max-size", "1", "--grace", "0"))
        assert out.startswith("removed 1 entries") and "now 0 entries" in out, out
        assert os.listdir(os.path.join(s.cache, "blobs", "sha256")) == []
    finally:
        s.cleanup()


@test
def verify_finds_damage():
    s = Scratch("verify")
    try:
        sha = s.put("v.bin", b"good content")
        with Server(s.www, s.dir) as srv:
            path = ok(s.fetch(srv.url("v.bin"), sha))
            assert "0 damaged" in ok(s.kpar("cache", "verify"))
            os.chmod(path, 0o644)
            with open(path, "wb") as f:
                f.write(b"bad content!")
            r = s.kpar("cache", "verify")
            assert r.returncode == 1 and "1 damaged" in r.stdout, r.stdout
            assert rows(s.cache) == []
            # Gone from the index and the store: the next fetch downloads again.
            assert sha256_file(ok(s.fetch(srv.url("v.bin"), sha))) == sha
            assert len(srv.gets()) == 2
    finally:
        s.cleanup()


@test
def export_is_a_read_only_offline_cache():
    s = Scratch("export")
    try:
        a = s.put("a.tgz", b"artifact a")
        b = s.put("b.tgz", b"artifact b")
        s.put("snap.txt", b"snapshot content")
        with Server(s.www, s.dir) as srv:
            ua, ub, us = srv.url("a.tgz"), srv.url("b.tgz"), srv.url("snap.txt")
            used = os.path.join(s.dir, "cache-used")
            env = s.env(KPAR_CACHE_USED_LIST=used)
            pa = ok(s.fetch(ua, a, "--name", "a-1.0.tgz", env=env))
            ok(s.fetch(ub, b))                      # not in the build's list
            ok(s.fetch(us, env=env))
        lst = open(used).read().split()
        assert len(lst) == 2 and "sha256:" + a in lst, lst

        layer = os.path.join(s.dir, "layer")
        stamp = os.path.join(s.dir, "layer.stamp")
        ok(s.kpar("cache", "export", "--used-list", used, "--stamp", stamp, layer))
        assert os.path.exists(stamp)
        assert sorted(os.listdir(layer)) == ["READONLY", "blobs", "index.db", "named", "snapshots"]
        assert sorted(os.listdir(os.path.join(layer, "blobs", "sha256"))) == sorted(
            [a, __import__("hashlib").sha256(b"snapshot content").hexdigest()])
        for d, _, files in os.walk(layer):
            for f in files:
                p = os.path.join(d, f)
                if os.path.islink(p):
                    t = os.readlink(p)
                    assert not t.startswith("/") and os.path.exists(p), (p, t)
        before = tree(layer)
        # Exporting again changes nothing (the image layer keeps its digest).
        ok(s.kpar("cache", "export", "--used-list", used, layer))
        assert tree(layer) == before

        # The worker side: KPAR_CACHE_DIR=<layer>, the server gone.  Pinned,
        # named and snapshot lookups hit; nothing is written.
        wenv = s.env(KPAR_CACHE_DIR=layer)
        path = ok(s.kpar("fetch", "--sha256", a, "--name", "a-1.0.tgz", ua, env=wenv))
        assert path == os.path.join(layer, "named", a, "a-1.0.tgz")
        assert open(path, "rb").read() == b"artifact a"
        ps = ok(s.kpar("fetch", us, env=wenv))
        assert ps.startswith(layer) and open(ps, "rb").read() == b"snapshot content"
        fails(s.kpar("fetch", "--sha256", b, ub, env=wenv), "not in the read-only cache")
        st = json.loads(ok(s.kpar("cache", "stats", "--json", env=wenv)))
        assert st["readonly"] and st["entries"] == 2, st
        fails(s.kpar("cache", "gc", env=wenv), "read-only")
        assert tree(layer) == before

        # A smaller used-list prunes the layer.
        with open(used, "w") as f:
            f.write("sha256:%s\n" % a)
        ok(s.kpar("cache", "export", "--used-list", used, layer))
        assert os.listdir(os.path.join(layer, "blobs", "sha256")) == [a]
        assert os.listdir(os.path.join(layer, "snapshots")) == []
        # Something the cache lacks is an error naming it.
        with open(used, "a") as f:
            f.write("sha256:%s\n" % ("9" * 64))
        fails(s.kpar("cache", "export", "--used-list", used, layer), "9999999999", "not in the cache")
        assert pa
    finally:
        s.cleanup()


if __name__ == "__main__":
    main()
