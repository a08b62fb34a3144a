#!/usr/bin/env python3
"""auth.py - kpar image against registries that want credentials (TLS with
Basic auth, the Bearer token flow; Debian's docker-registry) and against a
registry that misbehaves (tests/registry/faultserver.py): the base is pulled
and the image pushed with the Docker config's credentials, and every failure
is a clear error naming the registry, with no image recorded as done and no
secret in any output or file.
"""
import json
import os
import sys

from imagetest import (TOP_SRC, Failure, base_layout, build, check, check_in, check_not_in, digest,
                       kpar, make_project, need, read, run, run_tests, skopeo_push, tmpdir)

sys.path.insert(0, os.path.join(TOP_SRC, "tests", "registry"))

REGS = {}


def registry(flavour):
    if flavour not in REGS:
        need("docker-registry", "skopeo", "openssl", "htpasswd")
        from registry import Registry
        reg = Registry(flavour).start()
        REGS[flavour] = reg
        d = tmpdir()
        base_layout(d)
        skopeo_push(reg, d, "kpar/base:1")
    return REGS[flavour]


def layout_of(proj):
    return os.path.join(proj, ".kpar", "image")


def creds_env(reg, **more):
    e = {"DOCKER_CONFIG": reg.docker_config, "KPAR_REGISTRY_CA": reg.ca}
    e.update(more)
    return e


def no_secrets(reg, *texts, layout=None):
    for t in texts:
        check_not_in(reg.password, t, "output")
    for root, _, files in os.walk(layout or "/nonexistent"):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                check(reg.password.encode() not in fh.read(), "password in %s" % f)


def authenticated_round_trip(flavour):
    reg = registry(flavour)
    proj = make_project(tmpdir())
    lay = layout_of(proj)
    e = creds_env(reg)
    b = build(proj, "--base", "%s/kpar/base:1" % reg.host, extra_env=e)
    p = kpar("image", "push", "--registry", reg.host, "--image", "kpar/app:v1", cwd=proj, extra_env=e)
    ref = read(os.path.join(lay, "ref")).strip()
    check(ref == "%s/kpar/app@%s" % (reg.host, digest(lay)), "ref %r" % ref)
    info = json.loads(run(["skopeo", "inspect", "--cert-dir", reg.cert_dir, "--creds", reg.creds,
                           "docker://%s/kpar/app:v1" % reg.host]).stdout)
    check(info["Digest"] == digest(lay), "pushed digest")
    no_secrets(reg, b.stdout, b.stderr, p.stdout, p.stderr, layout=lay)
    return reg, proj


def test_tls_basic():
    reg, proj = authenticated_round_trip("tls")
    lay = layout_of(proj)
    # no credentials: a clear 401, naming the registry; nothing recorded
    other = make_project(tmpdir())
    empty = tmpdir()
    p = build(other, "--base", "%s/kpar/base:1" % reg.host, ok=False,
              extra_env={"DOCKER_CONFIG": empty, "KPAR_REGISTRY_CA": reg.ca})
    check(p.returncode == 2, "exit %d" % p.returncode)
    check_in(reg.host, p.stderr, "message")
    check("401" in p.stderr or "auth" in p.stderr.lower() or "credential" in p.stderr.lower(),
          "an authentication error: %s" % p.stderr)
    check(not os.path.exists(os.path.join(layout_of(other), "digest")), "no digest")
    # a wrong password: refused, and never echoed
    bad = tmpdir()
    with open(os.path.join(bad, "config.json"), "w") as f:
        import base64
        json.dump({"auths": {reg.host: {"auth": base64.b64encode(b"kpar:wrong-Pa55").decode()}}}, f)
    p = kpar("image", "push", "--image", "%s/kpar/app:v2" % reg.host, ok=False, cwd=proj,
             extra_env={"DOCKER_CONFIG": bad, "KPAR_REGISTRY_CA": reg.ca})
    check(p.returncode == 2, "exit %d" % p.returncode)
    check_not_in("wrong-Pa55", p.stderr, "error output")
    check(read(os.path.join(lay, "ref")).strip().endswith(digest(lay)), "the old ref is intact")
    # the CA not given: TLS verification fails, no fallback to plain http
    p = build(other, "--base", "%s/kpar/base:1" % reg.host, ok=False,
              extra_env={"DOCKER_CONFIG": reg.docker_config})
    check(p.returncode == 2, "exit %d without the CA" % p.returncode)
    check_in(reg.host, p.stderr, "message")


def test_bearer_token():
    authenticated_round_trip("token")


def test_misbehaving_registry():
    from faultserver import FaultRegistry
    fr = FaultRegistry()
    try:
        proj = make_project(tmpdir())
        lay = layout_of(proj)
        fr.faults["manifest_garbage"] = True
        p = build(proj, "--base", "%s/kpar/base:1" % fr.host, ok=False,
                  extra_env={"KPAR_INSECURE_REGISTRIES": fr.host})
        check(p.returncode == 2, "exit %d" % p.returncode)
        check_in(fr.host, p.stderr, "message names the registry")
        check_in("kpar/base", p.stderr, "message names the repository")
        check(not os.path.exists(os.path.join(lay, "digest")), "no digest after garbage")
        # a push the registry keeps failing: error, no ref
        build(proj)
        fr.faults.clear()
        fr.faults["put_500"] = 10**6
        p = kpar("image", "push", "--image", "%s/kpar/app:v1" % fr.host, ok=False, cwd=proj,
                 extra_env={"KPAR_INSECURE_REGISTRIES": fr.host})
        check(p.returncode == 2, "exit %d" % p.returncode)
        check_in(fr.host, p.stderr, "message")
        check(not os.path.exists(os.path.join(lay, "ref")), "no ref after a failed push")
        check(not fr.violations, "protocol violations: %r" % fr.violations)
        manifest_puts = [l for l in fr.log if "/manifests/" in str(l) and "PUT" in str(l)]
        check(not manifest_puts, "no manifest pushed before its blobs: %r" % manifest_puts)
    finally:
        fr.close()
    # libcurl is loaded on the first transfer: a library that cannot be
    # loaded is an error naming it, the build that needs no network still
    # works, and a push fails before recording anything
    proj = make_project(tmpdir())
    lay = layout_of(proj)
    nolib = {"KPAR_LIBCURL": "/nonexistent/libcurl.so.4", "KPAR_INSECURE_REGISTRIES": fr.host}
    build(proj, extra_env=nolib)
    p = kpar("image", "push", "--image", "%s/kpar/app:v1" % fr.host, ok=False, cwd=proj,
             extra_env=nolib)
    check(p.returncode == 2, "exit %d" % p.returncode)
    check_in("cannot load libcurl '/nonexistent/libcurl.so.4'", p.stderr, "names the library")
    check_in(fr.host, p.stderr, "names the registry")
    check(not os.path.exists(os.path.join(lay, "ref")), "no ref without libcurl")
    fr = FaultRegistry(auth=("basic", "kpar", "s3cret-Pa55"))
    try:
        proj = make_project(tmpdir())
        build(proj)
        p = kpar("image", "push", "--image", "%s/kpar/app:v1" % fr.host, ok=False, cwd=proj,
                 extra_env={"DOCKER_CONFIG": tmpdir()})
        check(p.returncode == 2, "exit %d" % p.returncode)
        check_in(fr.host, p.stderr, "401 names the registry")
    finally:
        fr.close()


if __name__ == "__main__":
    try:
        run_tests([test_tls_basic, test_bearer_token, test_misbehaving_registry])
    finally:
        for r in REGS.values():
            r.stop()
