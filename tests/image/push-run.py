#!/usr/bin/env python3
"""push-run.py - the whole image path against Debian's docker-registry (plain
http, loopback): a real two-layer base made offline from this machine's
Debian files and pushed with skopeo; kpar pulls it (OCI, Docker v2 and
through an index), builds, pushes; the image is pulled back by digest with
skopeo, unpacked with umoci and run with bubblewrap, and the worker inside
must run its bucket of the project's tests.
"""
import json
import os

from imagetest import (EXPECT, Failure, base_layout, blobs, build, check, check_in, config, digest,
                       kpar, make_project, manifest, need, read, run, run_image, run_tests, skopeo_push,
                       src_args, tmpdir, write)

REG = None


def registry():
    """One registry for the file, with the base pushed three ways."""
    global REG
    if REG is None:
        need("docker-registry", "skopeo", "umoci", "bwrap")
        from registry import Registry
        REG = Registry("plain").start()
        d = tmpdir()
        base_layout(d)
        skopeo_push(REG, d, "kpar/base:1")
        skopeo_push(REG, d, "kpar/base-docker:1", fmt="v2s2")
        d2 = tmpdir()
        base_layout(d2, multiarch=True)
        skopeo_push(REG, d2, "kpar/base-multi:1", all_images=True)
    return REG


def layout_of(proj):
    return os.path.join(proj, ".kpar", "image")


def push(proj, target, *args, ok=True):
    p = kpar("image", "push", "-v", "--image", target, *args, ok=ok, cwd=proj)
    return p


def pushed_stats(stderr):
    """'... N blobs uploaded (X MiB), M mounted, K already there' -> (N, M, K)."""
    line = [l for l in stderr.splitlines() if "blobs uploaded" in l][-1]
    words = line.replace(",", " ").replace("(", " ").split()
    return (int(words[words.index("blobs") - 1]), int(words[words.index("mounted") - 1]),
            int(words[words.index("already") - 1]))


def pull(reg, ref):
    """skopeo copies ref (by digest) into a fresh layout; returns its path."""
    d = os.path.join(tmpdir(), "pulled")
    run(["skopeo", "copy", "--quiet"] + src_args(reg) + ["docker://%s" % ref, "oci:%s:pulled" % d])
    return d


def test_build_on_pulled_base_push_pull_run():
    reg = registry()
    proj = make_project(tmpdir())
    lay = layout_of(proj)
    build(proj, "--base", "%s/kpar/base:1" % reg.host)
    m = manifest(lay)
    base_info = json.loads(run(["skopeo", "inspect", "--tls-verify=false",
                                "docker://%s/kpar/base:1" % reg.host]).stdout)
    got = [l["digest"] for l in m["layers"][:2]]
    check(got == base_info["Layers"], "base layers reused as they are: %r vs %r"
          % (got, base_info["Layers"]))
    cfg = config(lay)
    check("BASE_MARK=debian-files" in cfg["config"]["Env"], "base env kept: %r" % cfg["config"]["Env"])
    check("PATH=/usr/bin:/bin" in cfg["config"]["Env"], "base PATH kept")
    check(len(cfg["rootfs"]["diff_ids"]) == len(m["layers"]), "a diff_id per layer")

    p = push(proj, "%s/kpar/app:v1" % reg.host)
    up, mounted, present = pushed_stats(p.stderr)
    check(mounted == 2, "the base's layers are mounted from kpar/base, not uploaded: %s" % p.stderr)
    ref = read(os.path.join(lay, "ref")).strip()
    check(ref == "%s/kpar/app@%s" % (reg.host, digest(lay)), "ref file %r" % ref)
    info = json.loads(run(["skopeo", "inspect", "--tls-verify=false",
                           "docker://%s/kpar/app:v1" % reg.host]).stdout)
    check(info["Digest"] == digest(lay), "registry's digest %s != %s" % (info["Digest"], digest(lay)))

    pulled = pull(reg, ref)
    for bucket, index in ((1, "0"), (2, "1")):
        got_bucket, results = run_image(pulled, "pulled", {"JOB_COMPLETION_INDEX": index})
        check(got_bucket == bucket, "JOB_COMPLETION_INDEX=%s ran bucket %d" % (index, got_bucket))
        check(results == EXPECT[bucket], "bucket %d results %r" % (bucket, results))


def test_push_is_incremental():
    reg = registry()
    proj = make_project(tmpdir())
    lay = layout_of(proj)
    target = "%s/kpar/incr:v1" % reg.host
    build(proj, "--base", "%s/kpar/base:1" % reg.host)
    up, mounted, present = pushed_stats(push(proj, target).stderr)
    total = up + mounted + present
    check(up >= 5, "first push uploads own layers and config: %d" % up)
    # again: the registry has everything
    up, mounted, present = pushed_stats(push(proj, target).stderr)
    check(up == 0 and mounted == 0 and present == total, "second push: %d/%d/%d" % (up, mounted, present))
    # build --push: nothing new, so not even a question to the registry
    p = kpar("image", "build", "--payload", "tests + data", "--base", "%s/kpar/base:1" % reg.host,
             "--push", "--image", target, cwd=proj)
    check_in("pushed already", p.stderr)
    check_in("0 built", p.stderr)
    # one test file changes: only its layer (plus config) goes up
    write(os.path.join(proj, "tests/pass.sh"), "#!/bin/sh\necho still passing\nexit 0\n", 0o755)
    p = build(proj, "--base", "%s/kpar/base:1" % reg.host)
    check_in("1 built", p.stderr, "one file changed")
    p = push(proj, target)
    up, mounted, present = pushed_stats(p.stderr)
    check(up == 2 and present == total - 2, "after one change: %d uploaded, %d there" % (up, present))
    sent = [l for l in p.stderr.splitlines() if "blobs uploaded" in l][-1]
    check("(0.0 MiB)" in sent, "only a small layer sent: %s" % sent)


def test_docker_base_and_index():
    reg = registry()
    for repo in ("kpar/base-docker:1", "kpar/base-multi:1"):
        proj = make_project(tmpdir())
        lay = layout_of(proj)
        build(proj, "--base", "%s/%s" % (reg.host, repo))
        m = manifest(lay)
        check(m["layers"][0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip",
              "%s: layer type %s" % (repo, m["layers"][0]["mediaType"]))
        want = json.loads(run(["skopeo", "inspect", "--tls-verify=false",
                               "docker://%s/%s" % (reg.host, repo)]).stdout)["Layers"]
        check([l["digest"] for l in m["layers"][:2]] == want, "%s: base blobs as they are" % repo)
        cfg = config(lay)
        check(cfg["architecture"] == "amd64", "%s: amd64 picked from the index" % repo)
        check(len(cfg["rootfs"]["diff_ids"]) == len(m["layers"]), "%s: diff_ids" % repo)
        # runs: the amd64 libc and shell are there
        bucket, results = run_image(lay, "latest", {"JOB_COMPLETION_INDEX": "1"})
        check(results == EXPECT[2], "%s: %r" % (repo, results))


def test_base_cached_until_pull():
    reg = registry()
    proj = make_project(tmpdir())
    lay = layout_of(proj)
    base = "%s/kpar/moving:1" % reg.host
    d = tmpdir()
    base_layout(d)
    skopeo_push(reg, d, "kpar/moving:1")
    build(proj, "--base", base)
    first = digest(lay)
    # the tag moves to another image: a cached resolution stays put ...
    other = tmpdir()
    base_layout(other, mark="moved")
    skopeo_push(reg, other, "kpar/moving:1")
    p = build(proj, "--base", base)
    check(digest(lay) == first, "a no-op rebuild does not ask the registry")
    check("resolving" not in p.stderr, "no resolution without --pull")
    # ... until --pull
    p = build(proj, "--base", base, "--pull")
    check_in("resolving base image", p.stderr)
    check(digest(lay) != first, "the moved tag is seen with --pull")
    check("BASE_MARK=moved" in config(lay)["config"]["Env"], "the new base's config")


def test_per_bucket_push_and_run():
    reg = registry()
    proj = make_project(tmpdir())
    lay = layout_of(proj)
    build(proj, "--base", "%s/kpar/base:1" % reg.host, "--per-bucket")
    p = push(proj, "%s/kpar/buckets:v1" % reg.host)
    refs = dict(l.split(" ", 1) for l in read(os.path.join(lay, "bucket-refs")).splitlines())
    check(sorted(refs) == ["1", "2"], "bucket-refs %r" % refs)
    pulled = pull(reg, refs["2"])
    bucket, results = run_image(pulled, "pulled")      # no JOB_COMPLETION_INDEX
    check(bucket == 2 and results == EXPECT[2], "bucket image 2 ran %d: %r" % (bucket, results))
    tags = json.loads(run(["skopeo", "list-tags", "--tls-verify=false",
                           "docker://%s/kpar/buckets" % reg.host]).stdout)["Tags"]
    check(sorted(tags) == ["v1", "v1-bucket-1", "v1-bucket-2"], "tags %r" % tags)


def test_nonexistent_base():
    reg = registry()
    proj = make_project(tmpdir())
    p = build(proj, "--base", "%s/kpar/nope:1" % reg.host, ok=False)
    check(p.returncode == 2, "exit %d" % p.returncode)
    check_in("kpar/nope", p.stderr, "error names the base")
    check(not os.path.exists(os.path.join(layout_of(proj), "digest")), "no digest after a failure")
    p = build(proj, "--base", "127.0.0.1:1/kpar/base:1", ok=False)
    check_in("127.0.0.1:1", p.stderr, "error names the registry")


if __name__ == "__main__":
    try:
        run_tests([test_build_on_pulled_base_push_pull_run, test_push_is_incremental,
                   test_docker_base_and_index, test_base_cached_until_pull,
                   test_per_bucket_push_and_run, test_nonexistent_base])
    finally:
        if REG is not None:
            REG.stop()
