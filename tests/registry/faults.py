#!/usr/bin/env python3
"""faults.py - the registry client against faultserver.py: retries, garbage, auth, redirects.

Each test sets the faults, runs regtool, and checks both what regtool said
and what the server saw (the request log and its protocol violations).
"""
import base64
import json
import os

from common import (check, check_in, check_not_in, regtool, run_tests, tmpdir)
from faultserver import FaultRegistry
import ocitest
from registry import write_docker_config

USER, PASSWORD = "fault-user", "fault-Pa55word"


def image(files=None):
    d = tmpdir()
    mdesc = ocitest.make_layout(d, [{"base": b"fault base\n" * 30},
                                    files or {"top": os.urandom(3000)}], "v1")
    return d, mdesc


def no_violations(srv):
    check(not srv.violations, "protocol violations: %r" % srv.violations)


def test_429_retry_after():
    with FaultRegistry() as srv:
        d, mdesc = image()
        srv.faults = {"head_429": 2}
        r = regtool("push", srv.host, "f/r429", d, "v1")
        check(r["uploaded"] == "3", "pushed: %r" % r)
        no_violations(srv)     # includes "retried sooner than Retry-After"
        heads = srv.requests("HEAD", "blob")
        check(len(heads) == 5, "3 HEADs + 2 retries: %d" % len(heads))
        check(("f/r429", "v1") in srv.manifests, "manifest stored")


def test_500_then_success():
    with FaultRegistry() as srv:
        d, _ = image()
        srv.faults = {"put_500": 2}
        r = regtool("push", srv.host, "f/r500", d, "v1")
        check(r["uploaded"] == "3", "pushed: %r" % r)
        no_violations(srv)
        # A failed upload restarts with HEAD and a new session.
        check(len(srv.requests("POST", "upload")) == 5, "5 upload sessions")


def test_500_forever_never_pushes_the_manifest():
    with FaultRegistry() as srv:
        d, _ = image()
        srv.faults = {"put_500": 1000}
        r = regtool("--retries", "2", "push", srv.host, "f/dead", d, "v1", ok=False)
        check_in("error -7", r.err)
        check_in("registry '%s' repository 'f/dead'" % srv.host, r.err)
        check_in("answered 500 to PUT (UNKNOWN: internal trouble)", r.err)
        check_in("aborted before the manifest", r.err)
        check(not srv.requests("PUT", "manifest"), "no manifest PUT at all")
        no_violations(srv)


def test_dropped_connection():
    with FaultRegistry() as srv:
        d, _ = image()
        srv.faults = {"drop_put": 2}
        r = regtool("push", srv.host, "f/drop", d, "v1")
        check(r["uploaded"] == "3", "pushed: %r" % r)
        no_violations(srv)


def test_relative_location_with_query():
    for chunk in (None, "1000"):
        with FaultRegistry() as srv:
            d, _ = image({"top": os.urandom(5000)})
            srv.faults = {"relative_location": True}
            args = (["--chunk", chunk] if chunk else []) + ["push", srv.host, "f/rel", d, "v1"]
            r = regtool(*args)
            check(r["uploaded"] == "3", "pushed: %r" % r)
            no_violations(srv)   # every PATCH/PUT kept ?_state=
            puts = srv.requests("PUT", "upload")
            check(all("digest" in p["query"] and "_state" in p["query"] for p in puts),
                  "PUT carries both queries: %r" % puts)
            if chunk:
                patches = srv.requests("PATCH", "upload")
                check(len(patches) >= 6, "chunks: %d" % len(patches))
                check(all(p["content_type"] == "application/octet-stream" for p in patches),
                      "chunk content type")


def test_missing_location():
    with FaultRegistry() as srv:
        d, _ = image()
        srv.faults = {"post_garbage": 1}
        r = regtool("--parallel", "1", "push", srv.host, "f/noloc", d, "v1", ok=False)
        check_in("without a Location", r.err)
        check(not srv.requests("PUT", "manifest"), "no manifest PUT")


def test_garbage_manifest():
    with FaultRegistry() as srv:
        d, _ = image()
        regtool("push", srv.host, "f/garbage", d, "v1")
        srv.faults = {"manifest_garbage": True}
        r = regtool("get-manifest", srv.host, "f/garbage", "v1", os.path.join(tmpdir(), "m"),
                    ok=False)
        check_in("error -7", r.err)
        check_in("manifest 'v1' is not a JSON object", r.err)
        check_in(srv.host, r.err)


def test_garbage_error_body():
    with FaultRegistry() as srv:
        srv.faults = {"error_garbage": True}
        r = regtool("get-manifest", srv.host, "f/none", "v1", os.path.join(tmpdir(), "m"),
                    ok=False)
        check_in("error -5", r.err)
        check_in("answered 404 to GET with a body that is not the registry's error JSON", r.err)
        check_in("Something broke", r.err)


def test_401_without_credentials():
    with FaultRegistry(auth=("basic", USER, PASSWORD)) as srv:
        d, _ = image()
        r = regtool("--config-dir", tmpdir(), "push", srv.host, "f/auth", d, "v1", ok=False)
        check_in("error -8", r.err)
        check_in("requires a user name and password", r.err)
        check(not srv.requests("PUT"), "nothing stored")
        cfg = write_docker_config(tmpdir(), srv.host, USER, PASSWORD)
        r = regtool("--config-dir", cfg, "push", srv.host, "f/auth", d, "v1")
        check(r["uploaded"] == "3", "pushed with creds: %r" % r)
        api = [x for x in srv.log if x["kind"] != "ping"]
        check(all(x["authorization"] for x in api[-5:]), "credentials sent on every request")


def test_redirect_drops_authorization():
    with FaultRegistry(auth=("basic", USER, PASSWORD)) as srv:
        d, mdesc = image()
        cfg = write_docker_config(tmpdir(), srv.host, USER, PASSWORD)
        regtool("--config-dir", cfg, "push", srv.host, "f/redir", d, "v1")
        out = os.path.join(tmpdir(), "m.json")
        regtool("--config-dir", cfg, "get-manifest", srv.host, "f/redir", "v1", out)
        srv.faults = {"blob_redirect": True}
        layer = json.load(open(out))["layers"][1]["digest"]
        blob = os.path.join(tmpdir(), "blob")
        r = regtool("--config-dir", cfg, "get-blob", srv.host, "f/redir", layer, blob)
        with open(blob, "rb") as f:
            check(ocitest.sha(f.read()) == layer, "blob bytes via the redirect")
        gets = srv.requests("GET", "blob")
        check(gets and gets[-1]["authorization"], "the registry got credentials")
        check(srv.storage and len(srv.storage.log) == 1, "storage asked once")
        check(srv.storage.log[0]["authorization"] is None,
              "Authorization followed the redirect to another host: %r" % srv.storage.log)
        check(srv.storage.log[0]["path"].endswith("?sig=abc"), "redirect URL kept its query")


def test_bearer_refresh_on_revoked_token():
    with FaultRegistry(auth=("bearer", USER, PASSWORD)) as srv:
        d, _ = image()
        cfg = write_docker_config(tmpdir(), srv.host, USER, PASSWORD)
        srv.faults = {"revoke_after": 3}
        r = regtool("--parallel", "1", "--config-dir", cfg, "push", srv.host, "f/tok", d, "v1")
        check(r["uploaded"] == "3", "pushed: %r" % r)
        check(int(r["tokens"]) >= 3, "tokens refreshed: %r" % r)
        check(any(x.get("denied") == "invalid_token" for x in srv.log), "a token was refused")
        no_violations(srv)


def test_bearer_proactive_refresh():
    with FaultRegistry(auth=("bearer", USER, PASSWORD)) as srv:
        d, _ = image()
        cfg = write_docker_config(tmpdir(), srv.host, USER, PASSWORD)
        srv.faults = {"token_ttl": 1}
        r = regtool("--config-dir", cfg, "--repeat", "2", "--pause", "2", "push", srv.host,
                    "f/tok2", d, "v1")
        check(r["tokens"] == "2", "one new token for the second push: %r" % r)
        check(not any(x.get("denied") == "invalid_token" for x in srv.log),
              "an expired token was sent: %r" % [x for x in srv.log if x.get("denied")])


def test_token_endpoint_retry():
    with FaultRegistry(auth=("bearer", USER, PASSWORD)) as srv:
        d, _ = image()
        cfg = write_docker_config(tmpdir(), srv.host, USER, PASSWORD)
        srv.faults = {"token_503": 1}
        r = regtool("--config-dir", cfg, "push", srv.host, "f/tok503", d, "v1")
        check(r["uploaded"] == "3" and r["tokens"] == "1", "pushed: %r" % r)
        check(len(srv.requests(kind="token")) == 2, "one retry of the token request")
        no_violations(srv)


def test_manifest_waits_for_every_blob():
    with FaultRegistry() as srv:
        d, mdesc = image()
        with open(os.path.join(d, "blobs", "sha256", mdesc["digest"][7:])) as f:
            layer = json.load(f)["layers"][1]["digest"]
        # The manifest names a blob that is neither pushed nor in the repository.
        r = regtool("--skip-blob", layer, "push", srv.host, "f/partial", d, "v1", ok=False)
        check_in("error -5", r.err)
        check_in("refers to blob %s" % layer, r.err)
        check(not srv.requests("PUT", "manifest"), "no manifest PUT")
        no_violations(srv)
        # Once the repository has it, HEAD confirms it and the push goes through.
        regtool("push", srv.host, "f/partial", d, "v1")
        r = regtool("--skip-blob", layer, "push", srv.host, "f/partial", d, "v2")
        check(r["skipped"] == "2", "others skipped: %r" % r)
        check(("f/partial", "v2") in srv.manifests, "v2 stored")


def test_session_remembers_confirmed_blobs():
    with FaultRegistry() as srv:
        d, _ = image()
        r = regtool("--repeat", "2", "push", srv.host, "f/session", d, "v1")
        check(r.out.count("skipped=3 uploaded=0") == 1, "second push skipped all: %r" % r)
        # Only the first push asked: the client remembers what it confirmed.
        check(len(srv.requests("HEAD", "blob")) == 3, "HEADs: %d" % len(srv.requests("HEAD", "blob")))
        check(len(srv.requests("PUT", "manifest")) == 4, "both manifests PUT by digest and tag")


def test_bad_blob_bytes():
    with FaultRegistry() as srv:
        d, mdesc = image()
        regtool("push", srv.host, "f/bad", d, "v1")
        srv.faults = {"bad_blob": True}
        digest = mdesc["digest"]
        target = os.path.join(tmpdir(), "blob")
        # Any blob will do: ask for the config.
        cfg_digest = json.load(open(os.path.join(d, "blobs", "sha256", digest[7:])))["config"]["digest"]
        r = regtool("get-blob", srv.host, "f/bad", cfg_digest, target, ok=False)
        check_in("error -11", r.err)
        check_in("hash to sha256:", r.err)
        check(not os.path.exists(target), "nothing left at the target")
        check(not [f for f in os.listdir(os.path.dirname(target))], "no temp file left")


def test_debug_trace_hides_secrets():
    with FaultRegistry(auth=("bearer", USER, PASSWORD)) as srv:
        d, _ = image()
        cfg = write_docker_config(tmpdir(), srv.host, USER, PASSWORD)
        r = regtool("--config-dir", cfg, "push", srv.host, "f/dbg", d, "v1",
                    extra_env={"KPAR_REGISTRY_DEBUG": "1"})
        check_in("Authorization: <redacted>", r.err)
        tokens = list(srv.tokens)
        check(tokens, "tokens issued")
        b64 = base64.b64encode(("%s:%s" % (USER, PASSWORD)).encode()).decode()
        for secret in [PASSWORD, b64] + tokens:
            check_not_in(secret, r.err + r.out)


def test_manifest_content_type_and_accept():
    with FaultRegistry() as srv:
        d, mdesc = image()
        regtool("push", srv.host, "f/mt", d, "v1")
        no_violations(srv)    # the server checks Content-Type == mediaType
        regtool("get-manifest", srv.host, "f/mt", "v1", os.path.join(tmpdir(), "m"))
        accept = srv.requests("GET", "manifest")[-1]["accept"]
        for mt in (ocitest.OCI_MANIFEST, ocitest.OCI_INDEX,
                   "application/vnd.docker.distribution.manifest.v2+json",
                   "application/vnd.docker.distribution.manifest.list.v2+json"):
            check_in(mt, accept, "Accept")


def main():
    run_tests([test_429_retry_after, test_500_then_success,
               test_500_forever_never_pushes_the_manifest, test_dropped_connection,
               test_relative_location_with_query, test_missing_location, test_garbage_manifest,
               test_garbage_error_body, test_401_without_credentials,
               test_redirect_drops_authorization, test_bearer_refresh_on_revoked_token,
               test_bearer_proactive_refresh, test_token_endpoint_retry,
               test_manifest_waits_for_every_blob, test_session_remembers_confirmed_blobs,
               test_bad_blob_bytes, test_debug_trace_hides_secrets,
               test_manifest_content_type_and_accept])


if __name__ == "__main__":
    main()
