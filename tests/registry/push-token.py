#!/usr/bin/env python3
"""push-token.py - the Bearer token flow against docker-registry (`auth: token:`) and tokenserver.py.

Scopes, anonymous and read-only tokens, identity (refresh) tokens, mounts
that need pull on the source, and token refresh both before expiry and
after the registry refuses an expired token.
"""
import json
import os
import time

from common import (check, check_in, check_not_in, need, regtool, run, run_tests, tmpdir)
import ocitest
from registry import PASSWORD, REFRESH_TOKEN, Registry, write_docker_config

REGS = {}


def registry(name="default", **kw):
    if name not in REGS:
        need("docker-registry", "skopeo", "openssl")
        REGS[name] = Registry("token", **kw).start()
    return REGS[name]


def image(tag_files):
    d = tmpdir()
    mdesc = ocitest.make_layout(d, [{"base": b"token base\n" * 20}, tag_files], "v1")
    return d, mdesc


def test_push_with_token_and_skopeo():
    reg = registry()
    d, mdesc = image({"a": b"token flow"})
    before = len(reg.token_requests())
    r = regtool("--ca", reg.ca, "--config-dir", reg.docker_config, "push", reg.host,
                "kpar/tok", d, "v1")
    check(r["uploaded"] == "3" and r["tokens"] == "1", "one token for the push: %r" % r)
    reqs = reg.token_requests()[before:]
    check(len(reqs) == 1, "one token request: %r" % reqs)
    check(reqs[0]["who"] == "kpar" and reqs[0]["service"] == "kpar-test-registry",
          "authenticated for the service: %r" % reqs[0])
    check(reqs[0]["scopes"] == ["repository:kpar/tok:pull,push"], "scope: %r" % reqs[0])
    p = run(["skopeo", "inspect"] + reg.skopeo_args() + ["docker://%s/kpar/tok:v1" % reg.host])
    check(json.loads(p.stdout)["Digest"] == mdesc["digest"], "skopeo digest")
    r = regtool("--ca", reg.ca, "--config-dir", reg.docker_config, "push", reg.host,
                "kpar/tok", d, "v1")
    check(r["skipped"] == "3" and r["uploaded"] == "0", "second push: %r" % r)


def test_anonymous_is_refused():
    reg = registry()
    d, _ = image({"a": b"anon"})
    r = regtool("--ca", reg.ca, "--config-dir", tmpdir(), "push", reg.host, "kpar/tok-anon",
                d, "v1", ok=False)
    check_in("error -8", r.err)
    check_in("registry '%s' repository 'kpar/tok-anon'" % reg.host, r.err)
    check_in("no credentials for '%s'" % reg.host, r.err)
    check_in("aborted before the manifest", r.err)
    check(reg.token_requests()[-1]["who"] == "anonymous", "asked anonymously")


def test_read_only_user():
    reg = registry()
    d, mdesc = image({"a": b"for the reader"})
    regtool("--ca", reg.ca, "--config-dir", reg.docker_config, "push", reg.host, "kpar/tok-ro",
            d, "v1")
    reader = write_docker_config(tmpdir(), reg.host, "reader", PASSWORD)
    out = os.path.join(tmpdir(), "m.json")
    r = regtool("--ca", reg.ca, "--config-dir", reader, "get-manifest", reg.host, "kpar/tok-ro",
                "v1", out)
    check(r["digest"] == mdesc["digest"], "reader pulls")
    d2, _ = image({"a": b"reader may not push"})
    r = regtool("--ca", reg.ca, "--config-dir", reader, "push", reg.host, "kpar/tok-ro", d2,
                "v2", ok=False)
    check_in("error -8", r.err)
    check_in("401", r.err)
    bad = write_docker_config(tmpdir(), reg.host, "kpar", "not-" + PASSWORD)
    r = regtool("--ca", reg.ca, "--config-dir", bad, "push", reg.host, "kpar/tok-ro", d2, "v2",
                ok=False)
    check_in("token server 'https://127.0.0.1:", r.err)
    check_in("refused the credentials of user 'kpar'", r.err)
    check_not_in(PASSWORD, r.err)


def test_identity_token():
    reg = registry()
    d, _ = image({"a": b"identity token"})
    cfg = write_docker_config(tmpdir(), reg.host, identity_token=REFRESH_TOKEN)
    r = regtool("--ca", reg.ca, "--config-dir", cfg, "push", reg.host, "kpar/tok-id", d, "v1",
                extra_env={"KPAR_REGISTRY_DEBUG": "1"})
    check(r["uploaded"] == "3", "pushed: %r" % r)
    last = reg.token_requests()[-1]
    check(last["method"] == "POST" and last["who"] == "identity-token", "POST grant: %r" % last)
    check_not_in(REFRESH_TOKEN, r.err + r.out)
    cfg = write_docker_config(tmpdir(), reg.host, identity_token="wrong-refresh-token")
    r = regtool("--ca", reg.ca, "--config-dir", cfg, "push", reg.host, "kpar/tok-id", d, "v1",
                ok=False)
    check_in("refused", r.err)
    check_not_in("wrong-refresh-token", r.err)


def test_mount_needs_pull_on_source():
    reg = registry()
    d, _ = image({"a": b"to be mounted"})
    regtool("--ca", reg.ca, "--config-dir", reg.docker_config, "push", reg.host,
            "kpar/tok-src", d, "v1")
    r = regtool("--ca", reg.ca, "--config-dir", reg.docker_config, "--mount-from",
                "kpar/tok-src", "push", reg.host, "kpar/tok-dst", d, "v1")
    check(r["mounted"] == "3" and r["uploaded"] == "0", "mounted: %r" % r)
    scopes = reg.token_requests()[-1]["scopes"]
    check(sorted(scopes) == ["repository:kpar/tok-dst:pull,push", "repository:kpar/tok-src:pull"],
          "scopes: %r" % scopes)


def test_refresh_before_expiry():
    # The client is told tokens live 2 s: the second push, 3 s later, asks anew
    # before sending anything (no 401 needed).
    reg = registry("short", token_ttl=2)
    d, _ = image({"a": b"refresh"})
    r = regtool("--ca", reg.ca, "--config-dir", reg.docker_config, "--repeat", "2", "--pause",
                "3", "push", reg.host, "kpar/tok-refresh", d, "v1")
    check(r["tokens"] == "2", "a second token: %r" % r)
    check_in("skipped=3", r.out)


def test_refresh_after_401():
    # The client is told 300 s, but the registry stops accepting the token
    # after 2 s: the 401 (invalid_token) must make the client fetch a new one.
    reg = registry("revoked", token_ttl=300, registry_ttl=2)
    d, _ = image({"a": b"refresh on 401"})
    r = regtool("--ca", reg.ca, "--config-dir", reg.docker_config, "--repeat", "2", "--pause",
                "3", "push", reg.host, "kpar/tok-401", d, "v1")
    check(r["tokens"] == "2", "a second token after the 401: %r" % r)
    check_in("skipped=3", r.out)


def main():
    try:
        run_tests([test_push_with_token_and_skopeo, test_anonymous_is_refused,
                   test_read_only_user, test_identity_token, test_mount_needs_pull_on_source,
                   test_refresh_before_expiry, test_refresh_after_401])
    finally:
        for reg in REGS.values():
            reg.stop()


if __name__ == "__main__":
    main()
