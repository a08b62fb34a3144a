#!/usr/bin/env python3
"""push-tls-basic.py - the registry client against docker-registry over TLS with Basic auth.

The CA is made in the test; credentials come from a Docker config
(auths, then a credential helper); TLS is verified; secrets never leak.
"""
import base64
import json
import os

from common import (check, check_in, check_not_in, need, regtool, run, run_tests, tmpdir)
import ocitest
from registry import PASSWORD, Registry, write_docker_config

REG = None


def registry():
    global REG
    if REG is None:
        need("docker-registry", "skopeo", "htpasswd", "openssl")
        REG = Registry("tls").start()
    return REG


def image(files=None):
    d = tmpdir()
    mdesc = ocitest.make_layout(d, [files or {"etc/tls.txt": b"over tls\n" * 10},
                                    {"bin/tool": os.urandom(5000)}], "v1")
    return d, mdesc


def test_push_with_config_creds_and_ca():
    reg = registry()
    d, mdesc = image()
    r = regtool("--ca", reg.ca, "--config-dir", reg.docker_config, "push", reg.host,
                "kpar/tls", d, "v1")
    check(r["uploaded"] == "3", "uploaded: %r" % r)
    p = run(["skopeo", "inspect"] + reg.skopeo_args() + ["docker://%s/kpar/tls:v1" % reg.host])
    check(json.loads(p.stdout)["Digest"] == mdesc["digest"], "skopeo digest")
    # skopeo without credentials is refused: the registry really enforces auth.
    p = run(["skopeo", "inspect"] + reg.skopeo_args(with_creds=False) +
            ["docker://%s/kpar/tls:v1" % reg.host], ok=False,
            env=dict(os.environ, REGISTRY_AUTH_FILE="/nonexistent"))
    check(p.returncode != 0, "skopeo without creds must fail")
    r = regtool("--ca", reg.ca, "--config-dir", reg.docker_config, "push", reg.host,
                "kpar/tls", d, "v1")
    check(r["uploaded"] == "0" and r["skipped"] == "3", "second push: %r" % r)


def test_ca_from_environment():
    reg = registry()
    d, _ = image({"env": b"ca from env"})
    r = regtool("--config-dir", reg.docker_config, "push", reg.host, "kpar/tls-env", d, "v1",
                extra_env={"KPAR_REGISTRY_CA": reg.ca})
    check(r["uploaded"] == "3", "uploaded: %r" % r)


def test_untrusted_certificate_is_an_error():
    reg = registry()
    d, _ = image()
    env = dict(os.environ)
    env.pop("KPAR_REGISTRY_CA", None)
    # Loopback may use plain http, but a TLS server with an unknown CA is never downgraded.
    r = regtool("--retries", "1", "--config-dir", reg.docker_config, "push", reg.host,
                "kpar/tls", d, "v1", ok=False, env=env)
    check_in("KPAR_REGISTRY_CA", r.err)
    check_in(reg.host, r.err)
    r = regtool("--ca", "/nonexistent/ca.pem", "push", reg.host, "kpar/tls", d, ok=False)
    check_in("/nonexistent/ca.pem", r.err)


def test_no_credentials():
    reg = registry()
    d, _ = image()
    empty = tmpdir()
    r = regtool("--ca", reg.ca, "--config-dir", empty, "push", reg.host, "kpar/tls", d, "v1",
                ok=False)
    check_in("error -8", r.err)
    check_in("registry '%s' repository 'kpar/tls'" % reg.host, r.err)
    check_in("requires a user name and password", r.err)
    check_in("none for '%s' in the docker config" % reg.host, r.err)
    check_in("aborted before the manifest", r.err)
    out = os.path.join(tmpdir(), "m")
    r = regtool("--ca", reg.ca, "--config-dir", empty, "get-manifest", reg.host, "kpar/tls",
                "v1", out, ok=False)
    check_in("error -8", r.err)


def test_wrong_password_and_no_leak():
    reg = registry()
    d, _ = image()
    bad = write_docker_config(tmpdir(), reg.host, reg.user, "wrong-" + PASSWORD)
    r = regtool("--ca", reg.ca, "--config-dir", bad, "push", reg.host, "kpar/tls", d, "v1",
                ok=False, extra_env={"KPAR_REGISTRY_DEBUG": "1"})
    check_in("error -8", r.err)
    check_in("user 'kpar'", r.err)
    check_in("refused", r.err)
    check_not_in(PASSWORD, r.err + r.out)
    # The debug trace shows requests but never the credentials.
    r = regtool("--ca", reg.ca, "--config-dir", reg.docker_config, "push", reg.host,
                "kpar/tls-debug", d, "v1", extra_env={"KPAR_REGISTRY_DEBUG": "1"})
    check_in("Authorization: <redacted>", r.err)
    check_in("> PUT /v2/kpar/tls-debug/manifests/v1", r.err)
    b64 = base64.b64encode(("%s:%s" % (reg.user, PASSWORD)).encode()).decode()
    for secret in (PASSWORD, b64):
        check_not_in(secret, r.err + r.out)


def test_credential_helper():
    reg = registry()
    d, _ = image({"helper": b"via docker-credential-kpartest"})
    cfg = tmpdir()
    bindir = os.path.join(cfg, "bin")
    os.makedirs(bindir)
    helper = os.path.join(bindir, "docker-credential-kpartest")
    with open(helper, "w") as f:
        f.write("#!/bin/sh\nread -r server\necho \"$server\" >> %s/asked\n"
                "[ \"$server\" = '%s' ] || { echo 'credentials not found in native keychain';"
                " exit 1; }\n"
                "printf '{\"ServerURL\":\"%%s\",\"Username\":\"%s\",\"Secret\":\"%s\"}' "
                "\"$server\"\n" % (cfg, reg.host, reg.user, PASSWORD))
    os.chmod(helper, 0o755)
    with open(os.path.join(cfg, "config.json"), "w") as f:
        json.dump({"credHelpers": {reg.host: "kpartest"}}, f)
    env = {"PATH": bindir + ":" + os.environ["PATH"]}
    r = regtool("--ca", reg.ca, "--config-dir", cfg, "push", reg.host, "kpar/tls-helper", d,
                "v1", extra_env=env)
    check(r["uploaded"] == "3", "pushed with helper creds: %r" % r)
    with open(os.path.join(cfg, "asked")) as f:
        check(f.read().split() == [reg.host], "helper asked once for the host")
    # credsStore: the same helper for every host.
    with open(os.path.join(cfg, "config.json"), "w") as f:
        json.dump({"credsStore": "kpartest", "auths": {reg.host: {}}}, f)
    r = regtool("--ca", reg.ca, "--config-dir", cfg, "push", reg.host, "kpar/tls-helper", d,
                "v2", extra_env=env)
    check(r["skipped"] == "3", "pushed again with the store: %r" % r)
    r = regtool("--config-dir", cfg, "creds", reg.host, extra_env=env)
    check(r.out.strip() == "found user=kpar token=0", "creds: %r" % r)
    check_not_in(PASSWORD, r.out)


def main():
    try:
        run_tests([test_push_with_config_creds_and_ca, test_ca_from_environment,
                   test_untrusted_certificate_is_an_error, test_no_credentials,
                   test_wrong_password_and_no_leak, test_credential_helper])
    finally:
        if REG:
            REG.stop()


if __name__ == "__main__":
    main()
