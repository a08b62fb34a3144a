#!/usr/bin/env python3
"""make.py - `make k8s-image` on the hello-c example through kpar.mk: list,
plan, build on a base pulled from the local registry, push; a second make
is a no-op (no layer built, nothing pushed, image/digest untouched); the
pushed image runs the example's compiled tests in bubblewrap.
"""
import os
import shutil
import subprocess

from imagetest import (KPAR, TOP_SRC, Failure, base_layout, check, check_in, decode, need, read,
                       run, run_bundle, run_tests, skopeo_push, src_args, tmpdir, unpack)

REG = None


def registry():
    global REG
    if REG is None:
        need("docker-registry", "skopeo", "umoci", "bwrap", "make", "cc")
        from registry import Registry
        REG = Registry("plain").start()
        d = tmpdir()
        base_layout(d)
        skopeo_push(REG, d, "kpar/base:1")
    return REG


def kmake(proj, *args, ok=True):
    mk = os.environ.get("KPAR_MK")
    plugin = os.environ.get("KPAR_PLUGIN")
    if not mk or not os.path.exists(mk) or not plugin:
        raise Failure("KPAR_MK / KPAR_PLUGIN not set (run through make check)")
    if "k8s-image:" not in read(mk):
        from imagetest import Skip
        raise Skip("kpar.mk does not include image.mk yet")
    # the project's make is not a child of the test harness's make
    e = {k: v for k, v in os.environ.items()
         if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "TESTS")}
    nm = subprocess.run(["nm", "-D", plugin], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                        text=True)
    if "__asan_init" in nm.stdout:
        cc = os.environ.get("CC", "cc")
        e["LD_PRELOAD"] = subprocess.run([cc, "-print-file-name=libasan.so"],
                                         stdout=subprocess.PIPE, text=True).stdout.strip()
        e["ASAN_OPTIONS"] = "detect_leaks=0"
    return run(["make", "--no-print-directory", "KPAR=" + KPAR, "KPAR_PLUGIN=" + plugin,
                "KPAR_MK=" + mk, "KPAR_PROGRESS=never"] + list(args), ok=ok, cwd=proj, env=e)


def test_make_k8s_image():
    reg = registry()
    proj = os.path.join(tmpdir(), "hello")
    shutil.copytree(os.path.join(TOP_SRC, "examples", "hello-c"), proj, symlinks=True)
    settings = ["KPAR_PAYLOAD=tests", "KPAR_BASE_IMAGE=%s/kpar/base:1" % reg.host,
                "KPAR_REGISTRY=%s" % reg.host, "KPAR_IMAGE=kpar/hello:v1"]
    p = kmake(proj, "k8s-image", *settings)
    lay = os.path.join(proj, ".kpar", "image")
    dg = read(os.path.join(lay, "digest")).strip()
    ref = read(os.path.join(lay, "ref")).strip()
    check(ref == "%s/kpar/hello@%s" % (reg.host, dg), "ref %r" % ref)
    mtime = os.stat(os.path.join(lay, "digest")).st_mtime_ns
    p = kmake(proj, "k8s-image", *settings)
    check_in("0 built", p.stderr, "second make")
    check_in("pushed already", p.stderr, "second make")
    check(os.stat(os.path.join(lay, "digest")).st_mtime_ns == mtime, "digest untouched")
    # the pushed image runs bucket 1 of the example's compiled tests
    d = os.path.join(tmpdir(), "pulled")
    run(["skopeo", "copy", "--quiet"] + src_args(reg) + ["docker://" + ref, "oci:%s:x" % d])
    rootfs, rt = unpack(d, "x")
    # every bucket runs in the image; the fixture comes from its cache layer
    buckets = sorted(f for f in os.listdir(os.path.join(proj, ".kpar", "buckets"))
                     if f.startswith("test-group-"))
    seen = {}
    for i in range(len(buckets)):
        r = run_bundle(rootfs, rt, {"JOB_COMPLETION_INDEX": str(i)})
        check(r.returncode == 0, "worker exit %d: %s" % (r.returncode, r.stderr))
        bucket, results = decode(r.stdout)
        bucket_file = read(os.path.join(proj, ".kpar", "buckets",
                                        "test-group-%d" % (i + 1))).split()
        check(bucket == i + 1 and sorted(results) == sorted(bucket_file),
              "bucket %d: %r" % (i + 1, results))
        seen.update(results)
    want = {t: "pass" for t in seen}
    want["tests/network_only"] = "skip"
    check(seen == want, "compiled tests in the image: %r" % seen)
    check("tests/greet_fixture" in seen, "the fixture test ran in the image: %r" % seen)

if __name__ == "__main__":
    try:
        run_tests([test_make_k8s_image])
    finally:
        if REG is not None:
            REG.stop()
