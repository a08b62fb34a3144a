#!/usr/bin/env python3
"""client.py - the Kubernetes API client (src/k8s/client.c) against fakeapi.py.

Each test starts fakeapi.py in one mode on 127.0.0.1 (HTTPS with a CA made
by the openssl CLI, so TLS is verified for real), runs the k8sclient driver
and checks what it printed and what the server saw (fakeapi's request log).
Timing is only checked from below (a retry no sooner than Retry-After).
KPAR_VALGRIND=0 skips the valgrind pass.
"""
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP_SRC = os.environ.get("KPAR_TOP_SRCDIR") or os.path.dirname(os.path.dirname(HERE))
TOP_BUILD = os.environ.get("KPAR_TOP_BUILDDIR") or TOP_SRC
sys.path.insert(0, os.path.join(TOP_SRC, "tests", "lib"))
sys.path.insert(0, HERE)
K8SCLIENT = os.path.join(TOP_BUILD, "tests", "k8s", "k8sclient")
FAKEAPI = os.path.join(HERE, "fakeapi.py")

from testlib import (Failure, Skip, check, check_in, check_not_in, need,  # noqa: E402
                     run_tests, tmpdir)
import fakeapi  # noqa: E402

TOKEN = "s3cret-token-0123456789"
PODS = "/api/v1/namespaces/ns/pods"
WATCH = PODS + "?watch=1&resourceVersion=100&allowWatchBookmarks=true&timeoutSeconds=30"
_CERTS = []
_VALGRIND = []   # set by the valgrind test: a prefix for the driver's argv


def certs():
    if not _CERTS:
        need("openssl")
        d = tmpdir("kpar-k8s-certs-")
        fakeapi.make_certs(d)
        _CERTS.append(d)
    return _CERTS[0]


class Server:
    def __init__(self, mode, plain=False, cert="server", rotate=None, mtls=False):
        self.dir = tmpdir("kpar-k8s-")
        self.log = os.path.join(self.dir, "requests.jsonl")
        argv = [sys.executable, FAKEAPI, "--certs", certs(), "--log", self.log, "--mode", mode,
                "--cert", cert]
        if plain:
            argv.append("--plain")
        if rotate:
            argv += ["--rotate", rotate]
        if mtls:
            argv.append("--mtls")
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        line = self.p.stdout.readline()
        if not line.startswith("port "):
            self.close()
            raise Failure("fakeapi.py did not start: %r" % line)
        self.port = int(line.split()[1])
        self.url = "%s://127.0.0.1:%d" % ("http" if plain else "https", self.port)

    def requests(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            return [json.loads(line) for line in f if line.strip()]

    def close(self):
        self.p.kill()
        self.p.wait()
        self.p.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


class Result:
    def __init__(self, p, elapsed):
        self.rc, self.out, self.err, self.elapsed = p.returncode, p.stdout, p.stderr, elapsed
        self.stats = {}
        for line in self.err.splitlines():
            if line.startswith("k8sclient: stats "):
                self.stats = dict(w.split("=") for w in line.split()[2:])

    def lines(self):
        return self.out.splitlines()

    def __repr__(self):
        return "rc=%d\nstdout:\n%s\nstderr:\n%s" % (self.rc, self.out, self.err[-4000:])


def k8sclient(srv, *args, ok=True, env=None, token=TOKEN):
    """Runs the driver against srv (its CA, a static token unless env says otherwise)."""
    e = {k: v for k, v in os.environ.items()
         if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
         and not k.startswith("K8SCLIENT_")}
    e["K8SCLIENT_SERVER"] = srv.url
    if srv.url.startswith("https:"):
        e["K8SCLIENT_CA"] = os.path.join(certs(), "ca.pem")
    if token:
        e["K8SCLIENT_TOKEN"] = token
    e.update(env or {})
    t0 = time.time()
    p = subprocess.run(_VALGRIND + [K8SCLIENT] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, errors="replace", env=e, timeout=180)
    r = Result(p, time.time() - t0)
    for bad in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
        check_not_in(bad, r.err, "the driver's stderr (a sanitizer report)")
    if ok is True and r.rc != 0:
        raise Failure("k8sclient %s failed:\n%r" % (" ".join(args), r))
    if ok is False and r.rc != 1:
        raise Failure("k8sclient %s should have failed with 1:\n%r" % (" ".join(args), r))
    check_not_in(token or TOKEN, r.out + r.err, "the driver's output (a token leaked)")
    return r


def events(r):
    return [l for l in r.lines() if l.split()[0] in ("ADDED", "MODIFIED", "DELETED", "BOOKMARK",
                                                      "ERROR")]


ADDED3 = ["ADDED pod-0 101", "ADDED pod-1 102", "ADDED pod-2 103"]


# ---- requests ----

def test_list_and_post():
    with Server("list") as srv:
        r = k8sclient(srv, "--debug", "get", PODS)
        check_in("status 200", r.out)
        check(json.loads(r.lines()[1])["kind"] == "PodList", "a PodList: %r" % r)
        # the trace: method, path, status, never a header
        check_in("kpar k8s: GET %s: 200 (" % PODS, r.err)
        check_not_in("Authorization", r.err)
        r = k8sclient(srv, "get-json", PODS)
        check_in("status 200 kind PodList items 3", r.out)
        job = os.path.join(srv.dir, "job.json")
        with open(job, "w") as f:
            json.dump({"kind": "Job", "apiVersion": "batch/v1", "metadata": {"name": "j"}}, f)
        r = k8sclient(srv, "post", "/apis/batch/v1/namespaces/ns/jobs", job)
        check_in("status 201", r.out)
        echo = json.loads(r.lines()[1])
        check(echo["metadata"]["name"] == "j" and echo["echo"]["content_type"] ==
              "application/json", "echoed: %r" % echo)
        r = k8sclient(srv, "request", "PATCH", "/api/v1/namespaces/ns/pods/x", job,
                      "application/merge-patch+json", ok=False)
        check_in("error -5 status 404: PATCH /api/v1/namespaces/ns/pods/x: 404 NotFound: the "
                 "server could not find the requested resource", r.err)
        reqs = srv.requests()
        check(all(q["authorization"] == "Bearer " + TOKEN for q in reqs),
              "every request carries the token: %r" % reqs)
        check(reqs[-1]["content_type"] == "application/merge-patch+json", "PATCH content type")
        check(reqs[2]["body"] and json.loads(reqs[2]["body"])["kind"] == "Job", "POST body sent")


def test_connection_reuse():
    with Server("list") as srv:
        r = k8sclient(srv, "--repeat", "5", "get-json", PODS)
        check(r.out.count("items 3") == 5, "five answers: %r" % r)
        check(r.stats == {"requests": "5", "retries": "0", "watch_events": "0", "watches": "0"},
              "stats: %r" % r.stats)
        peers = set(q["peer"] for q in srv.requests())
        check(len(peers) == 1, "one kept-alive TLS connection for five requests: %r" % peers)


def test_request_inside_watch_callback():
    # the watch has its own handle: the event callback may make requests
    with Server("watch-batch") as srv:
        r = k8sclient(srv, "--nested", PODS, "watch", WATCH)
        check(r.out.count("nested 200 PodList") == 7, "a GET per event: %r" % r)
        check(r.lines()[-1] == "end 0", "a clean end")
        reqs = srv.requests()
        check(len(reqs) == 8 and len(set(q["peer"] for q in reqs)) == 2,
              "one watch connection, one request connection: %r" % reqs)


def test_plain_http():
    with Server("list", plain=True) as srv:
        r = k8sclient(srv, "get-json", PODS)
        check_in("items 3", r.out)


def test_escape():
    r = subprocess.run([K8SCLIENT, "escape", "app=kpar,run in (a/b)~é"], stdout=subprocess.PIPE,
                       text=True, check=True)
    check(r.stdout == "app%3Dkpar%2Crun%20in%20%28a%2Fb%29~%C3%A9\n", "escaped: %r" % r.stdout)


def test_429_retry_after():
    with Server("ratelimit") as srv:
        r = k8sclient(srv, "get-json", PODS)
        check_in("items 3", r.out)
        reqs = srv.requests()
        check(len(reqs) == 3, "429, 429, 200: %d requests" % len(reqs))
        for a, b in zip(reqs, reqs[1:]):
            check(b["time"] - a["time"] >= 0.95, "retried %.2f s after Retry-After: 1" %
                  (b["time"] - a["time"]))
        check(r.stats["requests"] == "3" and r.stats["retries"] == "2", "stats: %r" % r.stats)


def test_503_then_200():
    with Server("unavailable") as srv:
        r = k8sclient(srv, "get-json", PODS)
        check_in("items 3", r.out)
        check(len(srv.requests()) == 2, "503, 200")


def test_500_out_of_budget():
    with Server("error500") as srv:
        r = k8sclient(srv, "--budget", "2", "get", PODS, ok=False)
        check_in("error -7 status 500: GET %s: 500 InternalError: etcd is sad (after " % PODS,
                 r.err)
        n = len(srv.requests())
        check(3 <= n <= 5, "backoff 0.5, 1, 2 s within a 2 s budget: %d requests" % n)


def test_dropped_connection():
    # a GET is retried after the server hung up on it; a POST (which may have
    # been acted on) is not
    with Server("drop") as srv:
        r = k8sclient(srv, "get-json", PODS)
        check_in("items 3", r.out)
        check(len(srv.requests()) == 2, "dropped, then answered")
    with Server("drop") as srv:
        job = os.path.join(srv.dir, "job.json")
        with open(job, "w") as f:
            f.write('{"kind":"Job"}')
        r = k8sclient(srv, "post", "/apis/batch/v1/namespaces/ns/jobs", job, ok=False)
        check_in("error -7 status 0: POST /apis/batch/v1/namespaces/ns/jobs: " + srv.url, r.err)
        check(len(srv.requests()) == 1, "a POST is not retried after it was sent")


def test_connection_refused():
    with Server("list") as srv:
        pass   # the port is closed again
    r = k8sclient(srv, "--budget", "1.5", "get", PODS, ok=False)
    check_in("error -7 status 0: GET %s: %s: " % (PODS, srv.url), r.err)
    check_in("(after ", r.err)
    check(int(r.stats["requests"]) >= 2, "connection failures are retried: %r" % r.stats)


def test_401_refresh():
    tf = os.path.join(tmpdir("kpar-k8s-token-"), "token")
    with open(tf, "w") as f:
        f.write("stale-token\n")
    with Server("unauthorized", rotate=tf) as srv:
        r = k8sclient(srv, "get-json", PODS, token=None, env={"K8SCLIENT_TOKEN_FILE": tf})
        check_in("items 3", r.out)
        auth = [q["authorization"] for q in srv.requests()]
        check(auth == ["Bearer stale-token", "Bearer " + fakeapi.FRESH_TOKEN],
              "one refresh after the 401: %r" % auth)
        check_not_in("stale-token", r.out + r.err)


def test_401_final():
    with Server("unauthorized-always") as srv:
        r = k8sclient(srv, "get", PODS, ok=False)
        check_in("error -8 status 401: GET %s: 401 Unauthorized: Unauthorized (after 2 attempts"
                 % PODS, r.err)
        check(len(srv.requests()) == 2, "retried once after refreshing")


def test_403_status_message():
    with Server("forbidden") as srv:
        job = os.path.join(srv.dir, "job.json")
        with open(job, "w") as f:
            f.write('{"kind":"Job"}')
        r = k8sclient(srv, "post", "/apis/batch/v1/namespaces/ci/jobs", job, ok=False)
        check_in('error -8 status 403: POST /apis/batch/v1/namespaces/ci/jobs: 403 Forbidden: '
                 'jobs.batch is forbidden: User "system:serviceaccount:ci:kpar" cannot create '
                 'resource "jobs" in API group "batch" in the namespace "ci"', r.err)
        check_not_in("after", r.err)
        check(len(srv.requests()) == 1, "403 is final")


# ---- TLS ----

def test_tls_wrong_name():
    with Server("list", cert="wrong") as srv:
        r = k8sclient(srv, "get", PODS, ok=False)
        check_in("error -7 status 0: GET %s: %s: " % (PODS, srv.url), r.err)
        check_in("checked against 'the server's host' with the configured CA", r.err)
        check(srv.requests() == [], "no request went out over the unverified connection")
        r = k8sclient(srv, "get-json", PODS, env={"K8SCLIENT_TLS_SERVER_NAME": fakeapi.WRONG_NAME})
        check_in("items 3", r.out)
        r = k8sclient(srv, "get-json", PODS, env={"K8SCLIENT_TLS_SERVER_NAME": "nope.example"},
                      ok=False)
        check_in("checked against 'nope.example'", r.err)


def test_tls_unknown_ca():
    with Server("list") as srv:
        # the system CAs do not know fakeapi's CA
        r = k8sclient(srv, "get", PODS, ok=False, env={"K8SCLIENT_CA": ""})
        check_in("with the system's CAs", r.err)
        r = k8sclient(srv, "get-json", PODS, env={"K8SCLIENT_CA": "", "K8SCLIENT_INSECURE": "1"})
        check_in("items 3", r.out)


def test_client_certificate():
    with Server("list", mtls=True) as srv:
        r = k8sclient(srv, "--budget", "1", "get", PODS, ok=False, token=None)
        check_in("error -7 status 0: GET %s: %s: " % (PODS, srv.url), r.err)
        c = certs()
        r = k8sclient(srv, "get-json", PODS, token=None,
                      env={"K8SCLIENT_CERT": os.path.join(c, "client.pem"),
                           "K8SCLIENT_KEY": os.path.join(c, "client.key")})
        check_in("items 3", r.out)
        reqs = srv.requests()
        check(reqs[-1]["client_cn"] == fakeapi.CLIENT_CN and reqs[-1]["authorization"] is None,
              "authenticated by the certificate alone: %r" % reqs)


# ---- watch ----

def test_watch_one_byte_chunks():
    with Server("watch-bytes") as srv:
        r = k8sclient(srv, "--debug", "watch", WATCH)
        check(events(r) == ADDED3, "events: %r" % r)
        check(r.lines()[-1] == "end 0", "a clean end: %r" % r)
        check(r.stats["watch_events"] == "3" and r.stats["watches"] == "1", "stats %r" % r.stats)
        check_in("(watch): 200, 3 events", r.err)
        q = srv.requests()[0]["query"]
        check(q["watch"] == ["1"] and q["timeoutSeconds"] == ["30"], "query: %r" % q)


def test_watch_many_per_chunk():
    with Server("watch-batch") as srv:
        r = k8sclient(srv, "watch", WATCH)
        check(events(r) == ADDED3 + ["MODIFIED pod-0 104", "MODIFIED pod-1 105",
                                     "DELETED pod-2 106", "BOOKMARK - 107"], "events: %r" % r)
        check(r.lines()[-1] == "end 0", "a clean end")
        r = k8sclient(srv, "--stop-after", "2", "watch", WATCH)
        check(events(r) == ADDED3[:2] and r.lines()[-1] == "stopped 5",
              "the callback's value ends the watch: %r" % r)


def test_watch_error_event_410():
    with Server("watch-error410") as srv:
        r = k8sclient(srv, "watch", WATCH)
        check(events(r) == ADDED3[:2] + ["ERROR 410 Expired"], "events: %r" % r)
        check(r.lines()[-1] == "end 0", "the caller handles the ERROR event")


def test_watch_http_410():
    with Server("gone") as srv:
        r = k8sclient(srv, "watch", WATCH, ok=False)
        check_in("status 410: GET %s: 410 Expired: too old resource version" % WATCH, r.err)
        check(len(srv.requests()) == 1, "410 is final")


def test_watch_429_then_stream():
    with Server("ratelimit") as srv:
        r = k8sclient(srv, "watch", WATCH)
        check(events(r) == ADDED3, "events after two 429s: %r" % r)
        check(len(srv.requests()) == 3, "three requests")


def test_watch_reset():
    with Server("reset") as srv:
        r = k8sclient(srv, "watch", WATCH, ok=False)
        check(events(r) == ADDED3[:2], "the complete events came: %r" % r)
        check_in("error -7 status 200: GET %s: watch stream broke after 2 events" % WATCH, r.err)
        check(len(srv.requests()) == 1, "a broken stream is the caller's to re-watch")


def test_watch_partial_line():
    with Server("partial") as srv:
        r = k8sclient(srv, "watch", WATCH, ok=False)
        check(events(r) == ADDED3[:1], "events: %r" % r)
        check_in("error -7 status 200: GET %s: watch stream ended inside an event" % WATCH, r.err)


def test_watch_garbage():
    with Server("garbage") as srv:
        r = k8sclient(srv, "watch", WATCH, ok=False)
        check(events(r) == ADDED3[:1], "nothing after the garbage: %r" % r)
        check_in("error -7 status 200: GET %s: watch stream: event 2 is not" % WATCH, r.err)
        check_in("<html>this is not json</html>", r.err)


def test_watch_huge_line():
    with Server("huge") as srv:
        r = k8sclient(srv, "watch", WATCH, ok=False)
        check_in("watch stream: an event longer than 16 MiB", r.err)


def test_tick_abort():
    with Server("slow") as srv:
        r = k8sclient(srv, "--abort-after-ticks", "2", "watch", WATCH, ok=False)
        check_in("error -10 status 200: GET %s: interrupted" % WATCH, r.err)
        check_in("k8sclient: tick 2\n", r.err)
        check(r.elapsed >= 1.9, "two ticks take two seconds: %.1f" % r.elapsed)
        r = k8sclient(srv, "--abort-after-ticks", "2", "get", PODS, ok=False)
        check_in("error -10 status 0: GET %s: interrupted" % PODS, r.err)
    with Server("error500") as srv:
        # ticks go on while backing off
        r = k8sclient(srv, "--abort-after-ticks", "3", "get", PODS, ok=False)
        check_in("error -10 status 0: GET %s: interrupted" % PODS, r.err)


def test_valgrind():
    """A few paths again under valgrind: no invalid access, no leak."""
    if os.environ.get("KPAR_VALGRIND") == "0":
        raise Skip("KPAR_VALGRIND=0")
    need("valgrind")
    with open(K8SCLIENT, "rb") as f:
        if b"__asan_init" in f.read():
            raise Skip("a sanitizer build")
    _VALGRIND[:] = ["valgrind", "-q", "--error-exitcode=97", "--leak-check=full",
                    "--errors-for-leak-kinds=definite,indirect", "--show-leak-kinds=definite,indirect"]
    try:
        for t in (test_list_and_post, test_401_refresh, test_403_status_message,
                  test_watch_many_per_chunk, test_watch_reset, test_watch_garbage,
                  test_watch_partial_line, test_watch_http_410, test_tls_wrong_name,
                  test_client_certificate, test_tick_abort):
            t()
    finally:
        _VALGRIND[:] = []


if not shutil.which("openssl"):
    print("skip: openssl not installed (fakeapi.py makes its certificates with it)")
    sys.exit(77)
run_tests([test_list_and_post, test_connection_reuse, test_plain_http, test_escape,
           test_429_retry_after, test_503_then_200, test_500_out_of_budget,
           test_request_inside_watch_callback, test_dropped_connection, test_connection_refused, test_401_refresh, test_401_final,
           test_403_status_message, test_tls_wrong_name, test_tls_unknown_ca,
           test_client_certificate,
           test_watch_one_byte_chunks, test_watch_many_per_chunk, test_watch_error_event_410,
           test_watch_http_410, test_watch_429_then_stream, test_watch_reset,
           test_watch_partial_line, test_watch_garbage, test_watch_huge_line, test_tick_abort,
           test_valgrind],
          needs=(K8SCLIENT,))
