#!/usr/bin/env python3
"""push-plain.py - the registry client against Debian's docker-registry over plain http (loopback).

Pushes hand-built images and checks them with skopeo; incremental pushes,
chunked uploads, cross-repo mounts, index resolution on pull, blob download.
"""
import json
import os

from common import (Failure, check, check_in, need, regtool, run, run_tests, tmpdir)
import ocitest
from registry import Registry

REG = None


def registry():
    global REG
    if REG is None:
        need("docker-registry", "skopeo")
        REG = Registry("plain").start()
    return REG


def skopeo_inspect(reg, ref, raw=False):
    p = run(["skopeo", "inspect"] + (["--raw"] if raw else []) + reg.skopeo_args() +
            ["docker://%s/%s" % (reg.host, ref)])
    return json.loads(p.stdout)


def test_push_then_skopeo_then_push_again():
    reg = registry()
    d = tmpdir()
    mdesc = ocitest.make_layout(d, [{"etc/base.txt": b"base layer\n"},
                                    {"kpar/project/t.sh": b"#!/bin/sh\necho hi\n" * 100}], "v1")
    r = regtool("push", reg.host, "kpar/plain", d, "v1", "latest")
    check(r["uploaded"] == "3" and r["skipped"] == "0", "first push uploads 3 blobs: %r" % r)
    check(r["digest"] == mdesc["digest"], "digest %s != %s" % (r["digest"], mdesc["digest"]))
    check(int(r["bytes"]) > 0, "bytes sent counted")
    info = skopeo_inspect(reg, "kpar/plain:v1")
    check(info["Digest"] == mdesc["digest"], "skopeo sees digest %s" % info["Digest"])
    check(len(info["Layers"]) == 2, "two layers: %r" % info["Layers"])
    check(sorted(info["RepoTags"]) == ["latest", "v1"], "tags: %r" % info["RepoTags"])
    # An independent client pulls every blob and checks the digests.
    out = tmpdir()
    run(["skopeo", "copy", "--src-tls-verify=false", "docker://%s/kpar/plain:v1" % reg.host,
         "oci:%s:v1" % out])
    # Pushing the same image again sends no blob at all.
    r = regtool("push", reg.host, "kpar/plain", d, "v1")
    check(r["uploaded"] == "0" and r["skipped"] == "3" and r["bytes"] == "0",
          "second push uploads nothing: %r" % r)


def test_one_changed_layer_uploads_only_it():
    reg = registry()
    d1, d2 = tmpdir(), tmpdir()
    base = {"etc/base.txt": b"unchanged\n"}
    ocitest.make_layout(d1, [base, {"a": b"one"}])
    ocitest.make_layout(d2, [base, {"a": b"two"}])
    regtool("push", reg.host, "kpar/incr", d1, "t")
    r = regtool("push", reg.host, "kpar/incr", d2, "t")
    # The changed layer and the config (its diff_ids changed) go up; the base does not.
    check(r["uploaded"] == "2" and r["skipped"] == "1", "only the changed blobs: %r" % r)


def test_chunked_upload():
    reg = registry()
    d = tmpdir()
    payload = os.urandom(300000)          # incompressible: several chunks of 64 KiB
    mdesc = ocitest.make_layout(d, [{"big.bin": payload}])
    r = regtool("--chunk", "65536", "push", reg.host, "kpar/chunked", d, "c")
    check(r["uploaded"] == "2", "uploaded: %r" % r)
    out = tmpdir()
    run(["skopeo", "copy", "--src-tls-verify=false", "docker://%s/kpar/chunked:c" % reg.host,
         "oci:%s:c" % out])
    check(skopeo_inspect(reg, "kpar/chunked:c")["Digest"] == mdesc["digest"], "digest")


def test_parallel_many_blobs():
    reg = registry()
    d = tmpdir()
    layers = [{"f%d" % i: os.urandom(20000)} for i in range(12)]
    ocitest.make_layout(d, layers)
    r = regtool("--parallel", "4", "push", reg.host, "kpar/many", d, "m")
    check(r["uploaded"] == "13", "13 blobs: %r" % r)
    check(len(skopeo_inspect(reg, "kpar/many:m")["Layers"]) == 12, "12 layers")


def test_cross_repo_mount():
    reg = registry()
    d = tmpdir()
    ocitest.make_layout(d, [{"base": b"shared base " * 50}])
    regtool("push", reg.host, "kpar/mount-src", d, "b")
    r = regtool("--mount-from", "kpar/mount-src", "push", reg.host, "kpar/mount-dst", d, "b")
    check(r["mounted"] == "2" and r["uploaded"] == "0", "mounted, not uploaded: %r" % r)
    skopeo_inspect(reg, "kpar/mount-dst:b")
    # A mount source that lacks the blob falls back to an upload.
    d2 = tmpdir()
    ocitest.make_layout(d2, [{"other": b"not in the source"}])
    r = regtool("--mount-from", "kpar/mount-src", "push", reg.host, "kpar/mount-dst", d2, "c")
    check(r["uploaded"] == "2" and r["mounted"] == "0", "fallback upload: %r" % r)


def test_index_pull_resolves_platform():
    reg = registry()
    d = tmpdir()
    idesc, by_arch = ocitest.make_index(d, [("linux", "arm64", [{"a": b"arm"}]),
                                            ("linux", "amd64", [{"a": b"amd"}])])
    # The index must not go up before the manifests it lists.
    r = regtool("--manifest", idesc["digest"], "push", reg.host, "kpar/multi", d, "idx", ok=False)
    check_in("refers to manifest", r.err)
    for arch in ("arm64", "amd64"):
        regtool("--manifest", by_arch[arch]["digest"], "push", reg.host, "kpar/multi", d)
    r = regtool("--manifest", idesc["digest"], "push", reg.host, "kpar/multi", d, "idx")
    check(r["digest"] == idesc["digest"], "index digest")
    raw = skopeo_inspect(reg, "kpar/multi:idx", raw=True)
    check(raw["mediaType"] == ocitest.OCI_INDEX, "skopeo sees an index")

    out = os.path.join(tmpdir(), "m.json")
    r = regtool("get-manifest", reg.host, "kpar/multi", "idx", out)
    check(r["digest"] == by_arch["amd64"]["digest"], "linux/amd64 picked: %r" % r)
    check(r["media_type"] == ocitest.OCI_MANIFEST, "media type")
    with open(out, "rb") as f:
        check(ocitest.sha(f.read()) == r["digest"], "bytes hash to the digest")
    r = regtool("--arch", "arm64", "get-manifest", reg.host, "kpar/multi", "idx", out)
    check(r["digest"] == by_arch["arm64"]["digest"], "linux/arm64 picked")
    r = regtool("--arch", "s390x", "get-manifest", reg.host, "kpar/multi", "idx", out, ok=False)
    check_in("no image for linux/s390x", r.err)
    check_in("linux/arm64, linux/amd64", r.err)
    # By digest too.
    r = regtool("get-manifest", reg.host, "kpar/multi", idesc["digest"], out)
    check(r["digest"] == by_arch["amd64"]["digest"], "by index digest")


def test_pull_manifest_and_blob():
    reg = registry()
    d = tmpdir()
    mdesc = ocitest.make_layout(d, [{"x": b"pull me" * 1000}])
    regtool("push", reg.host, "kpar/pull", d, "p")
    out = os.path.join(tmpdir(), "m.json")
    r = regtool("get-manifest", reg.host, "kpar/pull", "p", out)
    check(r["digest"] == mdesc["digest"], "manifest digest")
    with open(out) as f:
        layer = json.load(f)["layers"][0]
    blob = os.path.join(tmpdir(), "layer.tgz")
    regtool("get-blob", reg.host, "kpar/pull", layer["digest"], blob)
    with open(blob, "rb") as f:
        check(ocitest.sha(f.read()) == layer["digest"], "blob bytes")
    r = regtool("get-manifest", reg.host, "kpar/pull", "nosuchtag", out, ok=False)
    check_in("error -5", r.err)
    check_in("registry '%s' repository 'kpar/pull'" % reg.host, r.err)
    check_in("MANIFEST_UNKNOWN", r.err)
    missing = "sha256:" + "0" * 64
    r = regtool("get-blob", reg.host, "kpar/pull", missing, blob + ".2", ok=False)
    check_in("BLOB_UNKNOWN", r.err)
    check(not os.path.exists(blob + ".2"), "nothing left behind")
    check(not [f for f in os.listdir(os.path.dirname(blob)) if ".tmp." in f], "no temp files")
    r = regtool("get-manifest", reg.host, "kpar/no-such-repo", "latest", out, ok=False)
    check_in("kpar/no-such-repo", r.err)


def test_registry_down():
    reg = registry()
    host = "127.0.0.1:%d" % __import__("registry").free_port()
    r = regtool("--retries", "1", "get-manifest", host, "kpar/x", "t", "/dev/null", ok=False)
    check_in(host, r.err)
    check_in("error -7", r.err)
    check(reg.host != host, "different port")


def main():
    try:
        run_tests([test_push_then_skopeo_then_push_again, test_one_changed_layer_uploads_only_it,
                   test_chunked_upload, test_parallel_many_blobs, test_cross_repo_mount,
                   test_index_pull_resolves_platform, test_pull_manifest_and_blob,
                   test_registry_down])
    finally:
        if REG:
            REG.stop()


if __name__ == "__main__":
    main()
