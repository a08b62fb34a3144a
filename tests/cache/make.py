#!/usr/bin/env python3
"""make.py - $(kpar-fetch URL,SHA256[,NAME]) in real makefiles: nothing is
downloaded at parse time or under `make -n`; misses are fetched by recipes
(once, also by two makes at once); hits run no recipe; snapshots are
revalidated without remaking dependents unless they changed; the used-list,
GC and export targets of mk/cache.mk.in; errors stop make with the location.

Uses a plugin holding only the function (tests/cache/kpar_cachefn.la) and
mk/cache.mk.in directly; the example project runs through kpar.mk when the
main plugin registers the function."""
import os
import subprocess
import sys

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cachetest import (KPAR, TOP_BUILDDIR, Scratch, Server, Skip, check_consistent, main,  # noqa: E402
                       rows, sha256_file, test)

HERE = os.path.dirname(os.path.abspath(__file__))
TOP_SRCDIR = os.environ.get("KPAR_TOP_SRCDIR", os.path.abspath(os.path.join(HERE, "..", "..")))
MODULE = os.path.join(TOP_BUILDDIR, "tests", "cache", ".libs", "kpar_cachefn.so")
CACHE_MK = os.path.join(TOP_SRCDIR, "mk", "cache.mk.in")


def make_env(s, **extra):
    env = s.env(**extra)
    env.pop("MAKEFLAGS", None)
    env.pop("MFLAGS", None)
    env.pop("MAKELEVEL", None)
    # A sanitizer build of the module needs its runtime loaded first into
    # make, which is not built with it.
    ldd = subprocess.run(["ldd", MODULE], capture_output=True, text=True).stdout
    for line in ldd.splitlines():
        if "libasan" in line and "=>" in line:
            env["LD_PRELOAD"] = line.split("=>")[1].split()[0]
    return env


def run_make(s, proj, *args, env=None, timeout=180):
    return subprocess.run(["make", "--no-print-directory", "-C", proj] + list(args),
                          env=env or make_env(s), text=True, capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=timeout)


def made(r):
    assert r.returncode == 0, "make failed (%d):\n%s%s" % (r.returncode, r.stdout, r.stderr)
    return r.stdout


def project(s, name, body):
    proj = os.path.join(s.dir, name)
    os.makedirs(proj, exist_ok=True)
    with open(os.path.join(proj, "Makefile"), "w") as f:
        f.write("load %s\nKPAR := %s\nKPAR_STATE_DIR := .kpar\ninclude %s\n%s" % (
            MODULE, KPAR, CACHE_MK, body))
    return proj


def need_module():
    if not os.path.exists(MODULE):
        raise Skip("the test plugin is not built: " + MODULE)


def read(path):
    with open(path, "rb") as f:
        return f.read()


BODY = """
DATA := $(kpar-fetch {u1},{h1})
NAMED := $(kpar-fetch {u2},{h2},data-2.0.txt)
SNAP := $(kpar-fetch {u3})
all: out1 out2 out3
out1: $(DATA)
\t@echo BUILD $@; cp $< $@
out2: $(NAMED)
\t@echo BUILD $@; cp $< $@
out3: $(SNAP)
\t@echo BUILD $@; cp $< $@
show:
\t@echo DATA=$(DATA)
\t@echo NAMED=$(NAMED)
\t@echo USED=$(sort $(KPAR_CACHE_USED))
"""


@test
def function_fetches_in_recipes_only():
    need_module()
    s = Scratch("make")
    try:
        h1 = s.put("one.txt", b"first artifact\n")
        h2 = s.put("two.txt", b"second artifact\n")
        s.put("snap.txt", b"snapshot v1\n")
        with Server(s.www, s.dir) as srv:
            proj = project(s, "p", BODY.format(u1=srv.url("one.txt"), h1=h1,
                                               u2=srv.url("two.txt"), h2=h2,
                                               u3=srv.url("snap.txt")))
            # Parse time and -n: paths known, nothing downloaded.
            out = made(run_make(s, proj, "show"))
            assert "DATA=%s/blobs/sha256/%s" % (s.cache, h1) in out, out
            assert "NAMED=%s/named/%s/data-2.0.txt" % (s.cache, h2) in out, out
            assert "sha256:" + h1 in out and "url:" in out
            out = made(run_make(s, proj, "-n"))
            assert "fetch" in out and srv.url("one.txt") in out, out
            assert srv.log() == [] and not os.path.exists(os.path.join(proj, "out1"))
            assert not os.path.exists(os.path.join(s.cache, "blobs", "sha256", h1))

            # The build: each artifact fetched once, by a recipe.
            out = made(run_make(s, proj, "-j4"))
            assert read(os.path.join(proj, "out1")) == b"first artifact\n"
            assert read(os.path.join(proj, "out2")) == b"second artifact\n"
            assert read(os.path.join(proj, "out3")) == b"snapshot v1\n"
            assert sorted(e["path"] for e in srv.gets()) == ["/one.txt", "/snap.txt", "/two.txt"]

            # Again: pinned hits run nothing; the snapshot is revalidated
            # (304) and its dependent is not remade.
            srv.clear_log()
            out = made(run_make(s, proj))
            assert "BUILD" not in out, out
            assert [(e["path"], e["status"]) for e in srv.gets()] == [("/snap.txt", 304)]
            # The snapshot changes: only its dependent is remade.
            s.put("snap.txt", b"snapshot v2, new\n")
            out = made(run_make(s, proj))
            assert "BUILD out3" in out and "BUILD out1" not in out, out
            assert read(os.path.join(proj, "out3")) == b"snapshot v2, new\n"

            # The function's hits are counted (once per make run and key).
            import json
            st = json.loads(subprocess.run([KPAR, "cache", "stats", "--json"], env=s.env(),
                                           capture_output=True, text=True).stdout)
            # 3 first downloads + the snapshot's new version; hits: the
            # function's (2 pinned per run) and the snapshot's 304.
            assert st["misses"] == 4 and st["hits"] >= 5, st
            # make -n once everything is cached records nothing.
            made(run_make(s, proj, "-n"))
            st2 = json.loads(subprocess.run([KPAR, "cache", "stats", "--json"], env=s.env(),
                                            capture_output=True, text=True).stdout)
            assert st2["hits"] == st["hits"], (st, st2)
        check_consistent(s.cache, allow_partials=False)
    finally:
        s.cleanup()


@test
def function_in_a_prerequisite_list():
    need_module()
    s = Scratch("prereq")
    try:
        h = s.put("d.txt", b"direct\n")
        with Server(s.www, s.dir) as srv:
            proj = project(s, "p", "out: $(kpar-fetch %s,%s) $(kpar-fetch %s)\n"
                           "\tcat $^ > $@\nother:\n\t@echo other\n"
                           % (srv.url("d.txt"), h, srv.url("d.txt")))
            made(run_make(s, proj))
            assert read(os.path.join(proj, "out")) == b"direct\ndirect\n"
            assert "other" in made(run_make(s, proj, "other"))
            assert "cat" not in made(run_make(s, proj))
            # In a recipe: the path when cached; a warning (not a broken
            # makefile) when not, since a recipe cannot fetch.
            proj2 = project(s, "q", "out:\n\tcat $(kpar-fetch %s,%s) > $@\n"
                            "miss:\n\t@echo $(kpar-fetch %s,%s)\n"
                            % (srv.url("d.txt"), h, srv.url("e.txt"), "e" * 64))
            made(run_make(s, proj2, "out"))
            assert read(os.path.join(proj2, "out")) == b"direct\n"
            r = run_make(s, proj2, "miss")
            assert r.returncode == 0 and "a recipe cannot fetch it" in r.stderr, r.stderr
            assert "/blobs/sha256/" + "e" * 64 in r.stdout
    finally:
        s.cleanup()


@test
def two_makes_download_once():
    need_module()
    s = Scratch("twomakes")
    try:
        h = s.put("big.bin", os.urandom(200_000))
        with Server(s.www, s.dir) as srv:
            body = ("A := $(kpar-fetch %s,%s)\nall: $(A)\n\t@test -s $< && echo OK\n"
                    % (srv.url("big.bin", "rate=400000"), h))
            p1, p2 = project(s, "p1", body), project(s, "p2", body)
            procs = [subprocess.Popen(["make", "--no-print-directory", "-C", p], env=make_env(s),
                                      text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                     for p in (p1, p2)]
            for p in procs:
                out, err = p.communicate(timeout=120)
                assert p.returncode == 0 and "OK" in out, out + err
            assert len(srv.gets()) == 1, srv.gets()
        check_consistent(s.cache, allow_partials=False)
    finally:
        s.cleanup()


@test
def used_list_gc_and_layer_targets():
    need_module()
    s = Scratch("targets")
    try:
        h1 = s.put("one.txt", b"one\n")
        h2 = s.put("two.txt", b"two\n")
        h3 = s.put("other.txt", b"another project's\n")
        with Server(s.www, s.dir) as srv:
            proj = project(s, "p", "A := $(kpar-fetch %s,%s,one.txt)\nB := $(kpar-fetch %s,%s)\n"
                           "all: $(A) $(B)\n" % (srv.url("one.txt"), h1, srv.url("two.txt"), h2))
            ok_other = subprocess.run([KPAR, "fetch", "--sha256", h3, srv.url("other.txt")],
                                      env=s.env(), capture_output=True, text=True)
            assert ok_other.returncode == 0, ok_other.stderr
            # The layer target fetches what is missing, writes the used-list
            # and exports exactly this build's entries.
            made(run_make(s, proj, "kpar-cache-layer"))
            used = read(os.path.join(proj, ".kpar", "cache-used")).decode().split()
            assert used == sorted(["sha256:" + h1, "sha256:" + h2]), used
            layer = os.path.join(proj, ".kpar", "cache-layer")
            assert sorted(os.listdir(os.path.join(layer, "blobs", "sha256"))) == sorted([h1, h2])
            assert os.path.islink(os.path.join(layer, "named", h1, "one.txt"))
            stamp = os.path.join(proj, ".kpar", "cache-layer.stamp")
            mtime = os.stat(os.path.join(layer, "index.db")).st_mtime_ns
            smtime = os.stat(stamp).st_mtime_ns
            made(run_make(s, proj, "kpar-cache-layer"))
            # Nothing changed: neither the layer nor its stamp moved (the
            # image that depends on the stamp is not remade).
            assert os.stat(os.path.join(layer, "index.db")).st_mtime_ns == mtime
            assert os.stat(stamp).st_mtime_ns == smtime
            # GC keeps this build's entries, whatever the limits.
            out = made(run_make(s, proj, "kpar-cache-gc", "KPAR_CACHE_MAX_SIZE=1",
                                "KPAR_CACHE_GC_GRACE=0"))
            assert "removed 1 entries" in out and "kept 2 in use" in out, out
            assert {r["digest"][7:] for r in rows(s.cache)} == {h1, h2}
            assert "entries:" in made(run_make(s, proj, "kpar-cache-stats"))
    finally:
        s.cleanup()


@test
def touch_mode_does_not_poison_the_cache():
    need_module()
    s = Scratch("touch")
    try:
        h = s.put("t.txt", b"real content\n")
        with Server(s.www, s.dir) as srv:
            proj = project(s, "p", "A := $(kpar-fetch %s,%s)\nout: $(A)\n\tcp $< $@\n"
                           % (srv.url("t.txt"), h))
            subprocess.run([KPAR, "cache", "stats"], env=s.env(), capture_output=True)
            made(run_make(s, proj, "-t"))      # creates an empty file at the blob's path
            assert os.path.getsize(os.path.join(s.cache, "blobs", "sha256", h)) == 0
            made(run_make(s, proj, "-B"))
            assert read(os.path.join(proj, "out")) == b"real content\n"
            assert sha256_file(os.path.join(s.cache, "blobs", "sha256", h)) == h
    finally:
        s.cleanup()


@test
def errors_stop_make_with_the_location():
    need_module()
    s = Scratch("errors")
    try:
        h = s.put("x.txt", b"x\n")
        with Server(s.www, s.dir) as srv:
            proj = project(s, "bad", "A := $(kpar-fetch %s,nothex)\nall: ; @echo $(A)\n"
                           % srv.url("x.txt"))
            r = run_make(s, proj)
            assert r.returncode != 0 and "Makefile:5: *** kpar-fetch:" in r.stderr, r.stderr
            assert "'nothex' is not a SHA-256" in r.stderr
            proj = project(s, "badname", "A := $(kpar-fetch %s,%s,a/b)\nall: ; @echo $(A)\n"
                           % (srv.url("x.txt"), h))
            r = run_make(s, proj)
            assert r.returncode != 0 and "artifact name 'a/b'" in r.stderr, r.stderr
            proj = project(s, "baddir", "A := $(kpar-fetch %s,%s)\nall: ; @echo $(A)\n"
                           % (srv.url("x.txt"), h))
            r = run_make(s, proj, env=make_env(s, KPAR_CACHE_DIR=s.dir + "/a b"))
            assert r.returncode != 0 and "cannot be used in a make target" in r.stderr, r.stderr
            # A download failure fails the recipe, naming the URL and status.
            proj = project(s, "missing", "A := $(kpar-fetch %s,%s)\nall: $(A)\n"
                           % (srv.url("nope.txt"), h))
            r = run_make(s, proj)
            assert r.returncode != 0 and srv.url("nope.txt") in r.stderr and "HTTP 404" in r.stderr, \
                r.stderr
            # And the wrong checksum: the recipe fails, nothing is stored.
            proj = project(s, "wrongsum", "A := $(kpar-fetch %s,%s)\nall: $(A)\n"
                           % (srv.url("x.txt"), "0" * 64))
            r = run_make(s, proj)
            assert r.returncode != 0 and "checksum mismatch" in r.stderr, r.stderr
            assert not os.path.exists(os.path.join(s.cache, "blobs", "sha256", "0" * 64))
    finally:
        s.cleanup()


@test
def example_fixture_with_cache_mk():
    """examples/hello-c/fixture.mk: `make check` fetches the fixture once
    (none under -n), the fixture test passes, a wrong checksum stops it."""
    need_module()
    s = Scratch("fixture")
    try:
        ex = os.path.join(s.dir, "hello-c")
        subprocess.run(["cp", "-rL", os.path.join(TOP_SRCDIR, "examples", "hello-c"), ex], check=True)
        subprocess.run(["chmod", "-R", "u+w", ex], check=True)      # distcheck: srcdir is read-only
        shim = os.path.join(s.dir, "kpar-shim.mk")
        with open(shim, "w") as f:
            # What kpar.mk provides for the fixture: the function and cache.mk.
            f.write("load %s\nKPAR := %s\ninclude %s\ninclude %s\n" % (
                MODULE, KPAR, CACHE_MK, os.path.join(ex, "fixture.mk")))
        with Server(os.path.join(ex, "fixtures"), s.dir) as srv:
            args = ["KPAR_MK=" + shim, "HELLO_FIXTURE_URL=" + srv.url("greetings-1.0.txt")]
            made(run_make(s, ex, "-n", "check", *args))
            assert srv.log() == []
            out = made(run_make(s, ex, "check", *args))
            assert "PASS: tests/greet_fixture" in out, out
            out = made(run_make(s, ex, "check", *args))
            assert "PASS: tests/greet_fixture" in out, out
            assert len(srv.gets()) == 1, srv.gets()
            # The default URL (a file:// beside the example) works offline.
            subprocess.run(["rm", "-rf", s.cache], check=True)
            out = made(run_make(s, ex, "check", "KPAR_MK=" + shim))
            assert "PASS: tests/greet_fixture" in out, out
            r = run_make(s, ex, "check", "KPAR_MK=" + shim, "HELLO_FIXTURE_SHA256=" + "1" * 64)
            assert r.returncode != 0 and "checksum mismatch" in r.stderr, r.stdout + r.stderr
    finally:
        s.cleanup()


@test
def example_fixture_through_kpar_mk():
    """examples/hello-c with its fixture.mk, through the installed-style
    kpar.mk and kpar.so (skipped until the main plugin registers kpar-fetch)."""
    kpar_mk = os.environ.get("KPAR_MK", os.path.join(TOP_BUILDDIR, "mk", "kpar.mk"))
    if not os.path.exists(kpar_mk):
        raise Skip("kpar.mk is not built")
    s = Scratch("example")
    try:
        probe = os.path.join(s.dir, "probe.mk")
        with open(probe, "w") as f:
            f.write("KPAR := %s\ninclude %s\nprobe: ; @echo 'FN=$(origin KPAR_FETCH):"
                    "$(kpar-fetch http://x/y,%s)'\n" % (KPAR, kpar_mk, "0" * 64))
        plugin = os.environ.get("KPAR_PLUGIN", os.path.join(TOP_BUILDDIR, ".libs", "kpar.so"))
        r = subprocess.run(["make", "-f", probe, "KPAR_PLUGIN=" + plugin, "probe"], env=make_env(s),
                           capture_output=True, text=True)
        if "/blobs/sha256/" not in r.stdout:
            raise Skip("kpar.so does not provide $(kpar-fetch ...) yet: " + (r.stdout + r.stderr)[-300:])
        src = os.path.join(TOP_SRCDIR, "examples", "hello-c")
        ex = os.path.join(s.dir, "hello-c")
        subprocess.run(["cp", "-rL", src, ex], check=True)
        subprocess.run(["chmod", "-R", "u+w", ex], check=True)
        for junk in (".kpar",):
            subprocess.run(["rm", "-rf", os.path.join(ex, junk)], check=True)
        fixture = os.path.join(ex, "fixtures", "greetings-1.0.txt")
        with Server(os.path.join(ex, "fixtures"), s.dir) as srv:
            env = make_env(s, KPAR_MK=kpar_mk)
            args = ["KPAR=" + KPAR, "KPAR_PLUGIN=" + plugin,
                    "HELLO_FIXTURE_URL=" + srv.url("greetings-1.0.txt")]
            with open(os.path.join(ex, "Makefile")) as f:
                if "fixture.mk" not in f.read():
                    raise Skip("the example's Makefile does not include fixture.mk yet")
            r = run_make(s, ex, "-n", "check", *args, env=env)
            assert srv.log() == [], srv.log()
            out = made(run_make(s, ex, "check", *args, env=env))
            assert "PASS: tests/greet_fixture" in out, out
            out = made(run_make(s, ex, "check", *args, env=env))
            assert len(srv.gets()) == 1
            assert sha256_file(fixture) == os.popen("sha256sum %s" % fixture).read().split()[0]
    finally:
        s.cleanup()


if __name__ == "__main__":
    main()
