#!/usr/bin/env python3
"""layout.py - `kpar image build` without a registry: the OCI layout as skopeo
and umoci see it, reproducibility across clones, incremental rebuilds, bad input.
"""
import json
import os
import random
import shutil
import socket
import subprocess

from imagetest import (KPAR, Failure, LONG, blobs, env, build, check, check_in, check_not_in, config, digest,
                       kpar, make_project, manifest, need, read, run, run_tests, tmpdir, unpack,
                       write)


def layout_of(proj):
    return os.path.join(proj, ".kpar", "image")


def test_skopeo_and_umoci_read_it():
    need("skopeo", "umoci")
    proj = make_project(tmpdir())
    build(proj)
    lay = layout_of(proj)
    info = json.loads(run(["skopeo", "inspect", "oci:%s:latest" % lay]).stdout)
    check(info["Digest"] == digest(lay), "skopeo's digest %s != %s" % (info["Digest"], digest(lay)))
    check(len(info["Layers"]) == 5, "payload x2, worker, prep, buckets: %r" % info["Layers"])
    check(info["Architecture"] == "amd64" and info["Os"] == "linux", "platform: %r" % info)
    rootfs, rt = unpack(lay, "latest")
    args = rt["process"]["args"]
    check("/kpar/bin/kpar-worker" in args and "worker" in args, "entrypoint: %r" % args)
    check(args[args.index("--buckets-dir") + 1] == "/kpar/buckets", "buckets dir: %r" % args)
    check(rt["process"]["cwd"] == "/kpar/project", "cwd %r" % rt["process"]["cwd"])
    p = os.path.join(rootfs, "kpar/project")
    check(os.stat(os.path.join(p, "tests/pass.sh")).st_mode & 0o777 == 0o755, "script mode")
    check(os.stat(os.path.join(p, "data/input.txt")).st_mode & 0o777 == 0o644, "data mode")
    check(os.path.isfile(os.path.join(p, "data", LONG)), "190-byte path unpacked")
    check(os.readlink(os.path.join(p, "data/alias.txt")) == "input.txt", "symlink kept")
    check(read(os.path.join(rootfs, "kpar/buckets/test-group-2")).startswith("tests/skip.sh"),
          "bucket files at /kpar/buckets")
    check(os.path.isfile(os.path.join(rootfs, "kpar/prep/tests.list")), "test list in /kpar/prep")
    check(os.stat(os.path.join(rootfs, "tmp")).st_mode & 0o7777 == 0o1777, "/tmp on scratch")
    # a dynamic worker comes with its loader and libraries
    check(os.path.exists(os.path.join(rootfs, "kpar/lib/libc.so.6")), "libc bundled")
    check(args[0] == "/kpar/lib/ld-linux-x86-64.so.2", "started through its loader: %r" % args)
    # oci-image-tool is not packaged for bookworm; umoci's unpack validated the blobs


def test_reproducible_across_clones():
    """Two clones with other mtimes, permissions and paths: identical bytes."""
    a = make_project(os.path.join(tmpdir(), "one"))
    b = make_project(os.path.join(tmpdir(), "elsewhere", "two"))
    rnd = random.Random(7)
    for root, dirs, files in os.walk(b):
        for f in files:
            path = os.path.join(root, f)
            st = os.stat(path)
            os.chmod(path, 0o700 if st.st_mode & 0o100 else 0o600)
            t = rnd.randint(10**8, 2 * 10**9)
            os.utime(path, (t, t))
    os.chmod(os.path.join(b, "data"), 0o700)
    build(a)
    build(b, extra_env={"SOURCE_DATE_EPOCH": "0"})
    check(digest(layout_of(a)) == digest(layout_of(b)),
          "clones differ: %s vs %s" % (digest(layout_of(a)), digest(layout_of(b))))
    check(blobs(layout_of(a)) == blobs(layout_of(b)), "blob sets differ")
    # every blob has the name of its content
    lay = layout_of(a)
    for name in blobs(lay):
        out = run(["sha256sum", os.path.join(lay, "blobs", "sha256", name)]).stdout.split()[0]
        check(out == name, "blob %s has sha256 %s" % (name, out))
    # gzip layers carry neither name nor time, and layers are standard gzip
    for layer in manifest(lay)["layers"]:
        path = os.path.join(lay, "blobs", "sha256", layer["digest"][7:])
        head = read(path, "rb")[:10]
        check(head[3] == 0 and head[4:8] == b"\0\0\0\0", "gzip header %r" % head)
        run(["gzip", "-t", path])
    # SOURCE_DATE_EPOCH goes into every entry's mtime: another digest
    c = make_project(os.path.join(tmpdir(), "three"))
    build(c, extra_env={"SOURCE_DATE_EPOCH": "1700000000"})
    check(digest(layout_of(c)) != digest(layout_of(a)), "epoch not in the bytes")
    check(config(layout_of(c))["created"] == "2023-11-14T22:13:20Z", "created from the epoch")
    tarlist = run(["tar", "-tvzf", os.path.join(layout_of(c), "blobs", "sha256",
                                                manifest(layout_of(c))["layers"][0]["digest"][7:])]).stdout
    check_in("root/root", tarlist.replace("0/0", "root/root"), "tar listing")
    check_in("2023-11-14", tarlist, "tar listing")


def test_incremental():
    proj = make_project(tmpdir())
    lay = layout_of(proj)
    build(proj)
    first = digest(lay)
    mtime = os.stat(os.path.join(lay, "digest")).st_mtime_ns
    before = blobs(lay)
    p = build(proj)
    check_in("5 layers, 0 built", p.stderr, "no-op rebuild")
    check(os.stat(os.path.join(lay, "digest")).st_mtime_ns == mtime, "digest file rewritten on a no-op")
    check(blobs(lay) == before, "blobs changed on a no-op")
    # one file of the second payload group: only that layer is rebuilt
    write(os.path.join(proj, "data/input.txt"), "hello\n")   # same bytes, new mtime
    os.utime(os.path.join(proj, "data/input.txt"), (1, 1))
    p = build(proj)
    check_in("1 built", p.stderr, "touched file")
    check_in("payload-2  built", p.stderr, "the data layer")
    check_not_in("payload-1  built", p.stderr, "the tests layer")
    check(digest(lay) == first, "same bytes, same image (mtimes are normalised)")
    write(os.path.join(proj, "data/input.txt"), "changed\n")
    p = build(proj)
    check_in("1 built", p.stderr, "changed file")
    check(digest(lay) != first, "a changed file changes the image")
    after = blobs(lay)
    check(len(after) == len(before), "old layer, config and manifest collected: %d -> %d"
          % (len(before), len(after)))
    # another compressor is another key: everything is rebuilt
    p = build(proj, "--compression", "gzip:6")
    check_in("5 built", p.stderr, "new compression level")
    check_in(digest(lay), kpar("image", "digest", cwd=proj).stdout, "kpar image digest")


def test_noop_only_stats():
    need("strace")
    proj = make_project(tmpdir())
    build(proj)
    log = os.path.join(tmpdir(), "strace.log")
    # LeakSanitizer cannot run under ptrace
    run(["strace", "-f", "-qq", "-e", "trace=open,openat", "-o", log, KPAR,
         "image", "build", "--payload", "tests + data"], cwd=proj,
        env=env(ASAN_OPTIONS="detect_leaks=0"))
    opened = read(log)
    for f in ("tests/pass.sh", "data/input.txt", LONG):
        check_not_in(f, opened, "files opened by a no-op rebuild")


def test_zstd():
    need("skopeo", "umoci")
    proj = make_project(tmpdir())
    build(proj, "--compression", "zstd")
    lay = layout_of(proj)
    for layer in manifest(lay)["layers"]:
        check(layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+zstd", layer["mediaType"])
    # umoci 0.4 reads no zstd: let skopeo decompress (and recompress) it, then unpack
    conv = os.path.join(tmpdir(), "gz")
    run(["skopeo", "copy", "--quiet", "--dest-compress-format", "gzip", "--dest-compress",
         "oci:%s:latest" % lay, "oci:%s:latest" % conv])
    rootfs, _ = unpack(conv, "latest")
    check(read(os.path.join(rootfs, "kpar/project/data/input.txt")) == "hello\n", "zstd content")


def test_per_bucket_images():
    proj = make_project(tmpdir())
    lay = layout_of(proj)
    build(proj, "--per-bucket")
    main, one, two = manifest(lay), manifest(lay, "bucket-1"), manifest(lay, "bucket-2")
    common = [l["digest"] for l in main["layers"][:-1]]
    check([l["digest"] for l in one["layers"][:-1]] == common, "bucket-1 shares all but the top layer")
    check([l["digest"] for l in two["layers"][:-1]] == common, "bucket-2 shares all but the top layer")
    check(one["layers"][-1]["size"] < 1024 and one["layers"][-1]["digest"] != two["layers"][-1]["digest"],
          "a tiny top layer per bucket")
    args = config(lay, "bucket-2")["config"]["Entrypoint"]
    check(args[-2:] == ["--bucket", "2"], "bucket image entrypoint %r" % args)
    bd = read(os.path.join(lay, "bucket-digests")).split("\n")
    check(bd[0].startswith("1 sha256:") and bd[1].startswith("2 sha256:"), "bucket-digests %r" % bd)


def expect_error(proj, needle, *args, code=2):
    lay = layout_of(proj)
    p = build(proj, *args, ok=False)
    check(p.returncode == code, "exit %d, expected %d:\n%s" % (p.returncode, code, p.stderr))
    check_in(needle, p.stderr, "error message")
    check(not os.path.exists(os.path.join(lay, "digest")), "a failed build left a digest file")
    return p


def test_bad_inputs():
    proj = make_project(tmpdir())
    build(proj)                                   # a good image first: its digest must go
    expect_error(proj, "'./nope'", "--payload", "tests nope", "--root", ".")
    build(proj)
    os.makedirs(os.path.join(proj, "bad"))
    s = socket.socket(socket.AF_UNIX)
    s.bind(os.path.join(proj, "bad", "ctl.sock"))
    expect_error(proj, "bad/ctl.sock' is a socket", "--payload", "tests bad")
    s.close()
    shutil.rmtree(os.path.join(proj, "bad"))
    os.makedirs(os.path.join(proj, "esc"))
    os.symlink("../../../etc/passwd", os.path.join(proj, "esc", "pw"))
    expect_error(proj, "esc/pw' points outside the payload", "--payload", "tests esc")
    shutil.rmtree(os.path.join(proj, "esc"))
    os.makedirs(os.path.join(proj, "latin"))
    write(os.path.join(proj, "latin").encode() + b"/caf\xe9.txt", b"x")
    expect_error(proj, "latin/caf\\xe9.txt' is not valid UTF-8", "--payload", "tests latin")
    shutil.rmtree(os.path.join(proj, "latin"))
    expect_error(proj, "contains the image directory", "--payload", ".")
    expect_error(proj, "leaves the project root", "--payload", "../x")
    expect_error(proj, "must be relative", "--payload", "/etc")
    expect_error(proj, "'/nonexistent/worker'", "--worker", "/nonexistent/worker")
    expect_error(proj, "not an x86-64 ELF", "--worker", os.path.join(proj, "tests/pass.sh"))
    expect_error(proj, "unknown compression 'lzma'", "--compression", "lzma")
    expect_error(proj, "base image", "--base", "Not A Reference!")
    build(proj)


def test_static_worker():
    """A static worker goes in alone, started directly."""
    proj = make_project(tmpdir())
    build(proj, "--worker", "/sbin/ldconfig")   # static-pie on Debian
    args = config(layout_of(proj))["config"]["Entrypoint"]
    check(args[0] == "/kpar/bin/kpar-worker", "static worker started directly: %r" % args)


if __name__ == "__main__":
    run_tests([test_skopeo_and_umoci_read_it, test_reproducible_across_clones, test_incremental,
               test_noop_only_stats, test_zstd, test_per_bucket_images, test_bad_inputs,
               test_static_worker])
