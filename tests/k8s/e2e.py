#!/usr/bin/env python3
"""e2e.py - kpar's Kubernetes backend against a real cluster (tests/k8s/cluster:
kube-apiserver, controller manager, scheduler, etcd, and kubelets running
the pods with containerd), one cluster for the whole script.

The examples run through the cluster and must give the verdicts and merged
report the local backend gives; then the unhappy paths a user meets: a
second make that must not contact the cluster, a coordinator killed and
resumed, a Job deleted under it, Ctrl-C, k8s-status and k8s-cancel, an
image that cannot be pulled, broken kubeconfigs; last, the fault campaign
of faults.py.
"""
import os
import shutil
import signal
import sqlite3
import time

from k8stest import (KPAR, TOP_SRC, Failure, check, coordinator_pids, check_in, check_not_in, cluster, junit, k8s_vars,
                     make, make_env, pods, run, run_label, run_tests, sleep_suite, spawn_make,
                     tmpdir, wait_for)


def copy_hello():
    d = os.path.join(tmpdir("kpar-k8s-hello-"), "hello-c")
    shutil.copytree(os.path.join(TOP_SRC, "examples", "hello-c"), d,
                    ignore=shutil.ignore_patterns(".kpar", "hello", "*.o"))
    return d


def test_hello_c_same_as_local():
    c = cluster()
    proj = copy_hello()
    env = make_env(c, HELLO_STRICT="1")
    # the local backend first: the reference
    p = make(proj, "k8s-test", ok=False, env=env)
    local = junit(proj)
    check(len(local) >= 8, "hello-c has its tests: %r" % local)
    check("failure" in local.values(), "HELLO_STRICT=1 fails a test locally: %r" % local)
    make(proj, "k8s-clean", env=env)

    p = make(proj, "k8s-test", *k8s_vars(c, "kpar-test/hello"), ok=False, env=env)
    check(p.returncode == 2, "make fails as the suite failed: %d\n%s" % (p.returncode, p.stderr))
    check_in("started Job", p.stderr, "make's output")
    remote = junit(proj)
    check(remote == local, "same verdicts on the cluster as locally:\n%r\n%r" % (remote, local))
    summary = open(os.path.join(proj, ".kpar", "report", "summary.txt")).read()
    check_in("kpar-", summary, "the summary names the pods that ran the buckets")

    # the pods' start cost is measured, for the next plan's bucket sizes
    import sqlite3
    db = sqlite3.connect(os.path.join(proj, ".kpar", "state.db"))
    cost = db.execute("SELECT value FROM run_meta WHERE key = 'k8s.start_cost'").fetchall()
    db.close()
    check(len(cost) == 1 and float(cost[0][0]) >= 0, "the run recorded its pods' start cost: %r" % cost)

    # what kpar created, as kubectl sees it
    label = run_label(proj)
    jobs = c.json("get", "jobs", "-l", label)["items"]
    check(len(jobs) == 1, "one Job for the run: %d" % len(jobs))
    spec = jobs[0]["spec"]
    check(spec["completionMode"] == "Indexed", "Indexed Job")
    check(spec["podFailurePolicy"]["rules"][0]["action"] == "Ignore" and
          spec["podFailurePolicy"]["rules"][0]["onPodConditions"][0]["type"] == "DisruptionTarget",
          "first rule ignores disruptions: %r" % spec["podFailurePolicy"])
    check(spec.get("podReplacementPolicy") == "Failed", "replacement once failed")
    image = spec["template"]["spec"]["containers"][0]["image"]
    ref = open(os.path.join(proj, ".kpar", "image", "ref")).read().strip()
    check(image == ref and "@sha256:" in image, "image by digest: %s vs %s" % (image, ref))
    # the controller records the last pods a moment after kpar collected them
    want = "0-%d" % (spec["completions"] - 1)
    wait_for("every index completed", lambda: c.json("get", "jobs", "-l", label)["items"][0]["status"]
             .get("completedIndexes") == want, timeout=60)

    # nothing changed: no cluster contacted (a broken kubeconfig proves it)
    env2 = dict(env, KUBECONFIG="/nonexistent/kubeconfig")
    p = make(proj, "k8s-test", *k8s_vars(c, "kpar-test/hello"), ok=False, env=env2)
    check(p.returncode == 2, "same verdict again")
    check_not_in("started Job", p.stderr)
    check_not_in("kubeconfig", p.stderr)
    check(junit(proj) == local, "same report")
    p = make(proj, "-n", "k8s-test", *k8s_vars(c, "kpar-test/hello"), env=env2)
    check_not_in("kubeconfig", p.stderr)
    check_not_in("image build", p.stdout, "make -n with nothing changed lists the image step")
    check_not_in("' run", p.stdout, "make -n with nothing changed lists the run")
    # without HELLO_STRICT the tests run again and pass; the new plan sizes
    # its buckets by the start cost measured
    p = make(proj, "k8s-test", *k8s_vars(c, "kpar-test/hello"), env=make_env(c))
    check_in("verdict: PASS", p.stdout + p.stderr)
    if float(cost[0][0]) > 0:
        check_in("kpar: pods start in", p.stderr, "the plan weighs the pods' start cost")
    # make -q: up to date and passed; a changed image is not, and asking
    # changes nothing (the next make contacts nothing and runs nothing)
    env3 = dict(make_env(c), KUBECONFIG="/nonexistent/kubeconfig")
    p = make(proj, "-q", "k8s-test", *k8s_vars(c, "kpar-test/hello"), ok=None, env=env3)
    check(p.returncode == 0, "make -q after a passing run: %d\n%s" % (p.returncode, p.stderr))
    p = make(proj, "-q", "k8s-test", *k8s_vars(c, "kpar-test/hello"), "KPAR_IMAGE_ENV=ASKED=1",
             ok=None, env=env3)
    check(p.returncode == 1, "make -q with a changed image: %d\n%s" % (p.returncode, p.stderr))
    check_not_in("kubeconfig", p.stderr)
    p = make(proj, "k8s-test", *k8s_vars(c, "kpar-test/hello"), env=env3)
    check_not_in("started Job", p.stderr)
    check_not_in("image: pushed", p.stderr, "make -q left the image to push again")


def test_sleep_suite_200_same_as_local():
    c = cluster()
    proj = sleep_suite(tmpdir("kpar-k8s-sleep-"), 200, fail={7, 150}, skip={3, 99, 123},
                       seconds=lambda i: 0.02 * (i % 7))
    # two chatty tests: more than the record keeps of a pass (4 KiB) and
    # of a failure (256 KiB); their whole output must come back from the pods
    # (a shell loop: the test image has no seq)
    chatty = {"t/t010": (60000, 0), "t/t007": (80000, 1)}
    for tid, (lines, rc) in chatty.items():
        with open(os.path.join(proj, tid), "w") as f:
            f.write("#!/bin/sh\necho first-line\ni=0\nwhile [ $i -lt %d ]; do echo \"line $i\"; i=$((i+1)); done\n"
                    "echo last-line\nexit %d\n" % (lines, rc))
    make(proj, "k8s-test", "KPAR_WORKERS=4", ok=False, c=c)
    local = junit(proj)
    check(len(local) == 200, "200 tests: %d" % len(local))

    def body(tid):
        # the log without its closing line (bucket and worker differ)
        with open(os.path.join(proj, ".kpar", "report", "logs", tid + ".log")) as f:
            return f.read().rsplit("\n", 2)[0]
    local_logs = {tid: body(tid) for tid in chatty}
    make(proj, "k8s-clean", c=c)
    p = make(proj, "k8s-test", *k8s_vars(c, "kpar-test/sleep", workers=6, KPAR_BUCKETS=24), ok=False, c=c)
    check(p.returncode == 2, "two tests fail: %d\n%s" % (p.returncode, p.stderr[-3000:]))
    remote = junit(proj)
    check(remote == local, "same verdicts: %r" % ({k: (local.get(k), remote.get(k)) for k in set(local) | set(remote)
                                                   if local.get(k) != remote.get(k)}))
    out = run([KPAR, "state", "tests-failed"], cwd=proj, env=make_env(c)).stdout.strip()
    check(out == "2", "2 failed in the state: %r" % out)
    for tid in chatty:
        got = body(tid)
        check(got == local_logs[tid] and got.endswith("last-line") and len(got) > 250000,
              "%s: the pod sent its whole output (%d bytes, %d locally)" % (tid, len(got), len(local_logs[tid])))
        st = os.stat(os.path.join(proj, ".kpar", "report", "logs", tid + ".log"))
        check(st.st_nlink >= 2, "%s: the report links the kept output, no copy" % tid)


def db_collected(proj):
    db = sqlite3.connect(os.path.join(proj, ".kpar", "state.db"))
    try:
        return db.execute("SELECT count(*) FROM buckets WHERE run = (SELECT max(id) FROM runs)"
                          " AND status = 'collected'").fetchone()[0]
    finally:
        db.close()


def test_killed_coordinator_resumes_and_deleted_job_is_replaced():
    c = cluster()
    proj = sleep_suite(tmpdir("kpar-k8s-resume-"), 24, fail={5}, seconds=lambda i: 1.5)
    args = k8s_vars(c, "kpar-test/resume", workers=4, KPAR_BUCKETS=12)
    log = os.path.join(proj, "make.log")
    m = spawn_make(proj, "k8s-test", *args, c=c, log=log)
    wait_for("two buckets collected", lambda: os.path.exists(os.path.join(proj, ".kpar", "state.db"))
             and db_collected(proj) >= 2, timeout=300)
    os.killpg(m.pid, signal.SIGKILL)
    m.wait()
    label = run_label(proj)
    check(len(c.json("get", "jobs", "-l", label)["items"]) == 1, "the Job outlives its coordinator")
    # the Job goes on meanwhile; resume reattaches and collects everything
    p = make(proj, "k8s-test", "RESUME=1", *args, ok=False, c=c)
    check(p.returncode == 2, "one test fails: %d\n%s" % (p.returncode, p.stderr[-3000:]))
    check_in("reattaching to run", p.stderr)
    res = junit(proj)
    check(len(res) == 24 and list(res.values()).count("failure") == 1, "every test once: %r" % res)
    jobs = c.json("get", "jobs", "-l", label)["items"]
    check(len(jobs) == 1, "reattached, no second Job: %d" % len(jobs))

    # a new run; kill its coordinator, delete its Job: RESUME starts a Job
    # for the missing buckets only
    with open(os.path.join(proj, "t", "t000"), "a") as f:
        f.write("# changed\n")
    m = spawn_make(proj, "k8s-test", *args, c=c, log=log)
    wait_for("a bucket collected", lambda: db_collected(proj) >= 1 and run_label(proj) != label, timeout=300)
    os.killpg(m.pid, signal.SIGKILL)
    m.wait()
    label2 = run_label(proj)
    done_before = db_collected(proj)
    c.kubectl("delete", "jobs", "-l", label2, "--cascade=foreground", "--wait=true")
    p = make(proj, "k8s-test", "RESUME=1", *args, ok=False, c=c)
    check(p.returncode == 2, "one test fails: %d\n%s" % (p.returncode, p.stderr[-3000:]))
    check_in("is gone", p.stderr)
    jobs = c.json("get", "jobs", "-l", label2)["items"]
    check(len(jobs) == 1, "one new Job: %d" % len(jobs))
    check(jobs[0]["spec"]["completions"] <= 12 - done_before,
          "the new Job runs only the missing buckets: %d of 12, %d were done" %
          (jobs[0]["spec"]["completions"], done_before))
    res = junit(proj)
    check(len(res) == 24, "every test once after the Job was replaced: %d" % len(res))


def test_watch_expiry_relists():
    """The API server restarts (its watch cache starts anew) and etcd's
    history is compacted while kpar watches: the watch kpar resumes from its
    last resourceVersion expires (410), kpar lists again and loses nothing."""
    c = cluster()
    proj = sleep_suite(tmpdir("kpar-k8s-expiry-"), 12, seconds=lambda i: 4)
    args = k8s_vars(c, "kpar-test/expiry", workers=3, KPAR_BUCKETS=12)
    log = os.path.join(proj, "make.log")
    m = spawn_make(proj, "k8s-test", *args, c=c, log=log)
    wait_for("a collected bucket", lambda: os.path.exists(os.path.join(proj, ".kpar", "state.db"))
             and db_collected(proj) >= 1, timeout=300)
    # The coordinator is held still while the history it would resume from
    # goes: a write moves the revision past its last one, etcd compacts it
    # away, and the API server restarts under its watch.  Resumed, it must
    # get 410 and list again.
    for attempt in range(3):
        coord = wait_for("the coordinator", lambda: coordinator_pids(proj), timeout=60)
        for pid in coord:
            os.kill(pid, signal.SIGSTOP)
        try:
            c.kubectl("create", "configmap", "kpar-expiry-%d-%d" % (os.getpid(), attempt), "--from-literal=a=b")
            c.hook("compact")
            c.hook("restart-apiserver")
        finally:
            for pid in coord:
                os.kill(pid, signal.SIGCONT)
        # the restarted API server may still serve that history (its watch
        # cache is filled from a list): then hold it again
        try:
            wait_for("the relist", lambda: "listing again" in open(log).read() or m.poll() is not None,
                     timeout=30)
        except Failure:
            pass
        if "listing again" in open(log).read() or m.poll() is not None:
            break
    check(m.wait(timeout=600) == 0, "the run completes:\n" + open(log).read()[-3000:])
    out = open(log).read()
    res = junit(proj)
    check(len(res) == 12 and set(res.values()) == {"pass"}, "every test once: %r" % res)
    if "watch expired (410); listing again" not in out:
        # seen on CI: the restarted API server served the compacted history
        # from its new watch cache; the relist path is then not reached here
        # (the client's 410 handling is tested in tests/k8s/client.py)
        from testlib import Skip
        raise Skip("the API server never answered 410 after 3 holds; the run completed intact")


def test_api_outage_longer_than_a_request_is_ridden_through():
    """The API server is gone for longer than one request retries (60 s, here 130 s):
    the Job runs on meanwhile, so the coordinator waits for it to come back
    (up to KPAR_K8S_STALL_TIMEOUT) and collects everything, never giving
    the run up as failed."""
    c = cluster()
    proj = sleep_suite(tmpdir("kpar-k8s-outage-"), 6, seconds=lambda i: 25)
    args = k8s_vars(c, "kpar-test/outage", workers=2, KPAR_BUCKETS=6)
    make(proj, "k8s-image", *args, c=c)
    log = os.path.join(proj, "make.log")
    m = spawn_make(proj, "k8s-test", *args, c=c, log=log)
    wait_for("a running pod", lambda: run_label(proj) and pods(c, run_label(proj), "Running"), timeout=300)
    c.hook("stop-apiserver")
    try:
        time.sleep(130)
    finally:
        c.hook("start-apiserver")
    check(m.wait(timeout=600) == 0, "the run completes:\n" + open(log).read()[-3000:])
    out = open(log).read()
    check_in("the API server does not answer", out, "make's output")
    res = junit(proj)
    check(len(res) == 6 and set(res.values()) == {"pass"}, "every test once: %r" % res)


def test_ctrl_c_leaves_job_status_and_cancel():
    c = cluster()
    proj = sleep_suite(tmpdir("kpar-k8s-cancel-"), 8, seconds=lambda i: 20)
    args = k8s_vars(c, "kpar-test/cancel", workers=2, KPAR_BUCKETS=8)
    log = os.path.join(proj, "make.log")
    m = spawn_make(proj, "k8s-test", *args, c=c, log=log)
    wait_for("a running pod", lambda: run_label(proj) and pods(c, run_label(proj), "Running"), timeout=300)
    os.killpg(m.pid, signal.SIGINT)
    m.wait(timeout=60)
    out = open(log).read()
    check_in("the Job keeps running", out, "Ctrl-C's message")
    check_in("k8s-cancel", out, "Ctrl-C's message")
    label = run_label(proj)
    check(len(c.json("get", "jobs", "-l", label)["items"]) == 1, "the Job is left running")
    p = make(proj, "k8s-status", *args, c=c)
    check_in("Job kpar-", p.stdout)
    check_in("Running", p.stdout)
    p = make(proj, "k8s-cancel", *args, c=c)
    check_in("cancelled run", p.stdout)
    wait_for("the run's pods gone", lambda: not pods(c, label), timeout=120)
    check(not c.json("get", "jobs", "-l", label)["items"], "the Job is deleted")


def test_unpullable_image_stops_with_the_reason():
    c = cluster()
    proj = sleep_suite(tmpdir("kpar-k8s-pull-"), 2)
    args = k8s_vars(c, "kpar-test/pull", workers=2, KPAR_K8S_STALL_TIMEOUT=25)
    make(proj, "k8s-image", *args, c=c)
    make(proj, "k8s-plan", *args, c=c)
    ref = open(os.path.join(proj, ".kpar", "image", "ref")).read().strip()
    # the same repository, a digest nobody pushed
    with open(os.path.join(proj, ".kpar", "image", "ref"), "w") as f:
        f.write(ref.split("@")[0] + "@sha256:" + "0" * 64 + "\n")
    env = make_env(c, KPAR_BACKEND="k8s", KPAR_K8S_STALL_TIMEOUT="25")
    p = run([KPAR, "run"], cwd=proj, env=env, ok=False, timeout=300)
    check(p.returncode == 2, "the run stops: %d" % p.returncode)
    check("ErrImagePull" in p.stderr or "ImagePullBackOff" in p.stderr, "names the pull error:\n" + p.stderr)
    check_in("KPAR_K8S_STALL_TIMEOUT", p.stderr)
    run([KPAR, "cancel"], cwd=proj, env=env)


def test_unschedulable_stops_with_the_reason():
    c = cluster()
    proj = sleep_suite(tmpdir("kpar-k8s-sched-"), 2)
    args = k8s_vars(c, "kpar-test/sched", workers=2, KPAR_K8S_STALL_TIMEOUT=20,
                    KPAR_K8S_NODE_SELECTOR="kpar.dev/no-such-node=1")
    p = make(proj, "k8s-test", *args, ok=False, c=c)
    check(p.returncode == 2, "the run stops: %d" % p.returncode)
    check_in("Unschedulable", p.stderr)
    check_in("no progress for 20 s", p.stderr)
    check_in("Unschedulable", open(os.path.join(proj, ".kpar", "state.db"), "rb").read().decode("latin-1"),
             "the run's recorded events")
    make(proj, "k8s-cancel", *args, c=c)


def write_kubeconfig(d, name, text):
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def test_bad_kubeconfigs_name_file_and_field():
    c = cluster()
    proj = sleep_suite(tmpdir("kpar-k8s-kc-"), 2)
    args = k8s_vars(c, "kpar-test/kc", workers=2)
    make(proj, "k8s-image", *args, c=c)
    good = open(c.kubeconfig).read()
    d = tmpdir("kpar-k8s-kcfiles-")
    other_ca = os.path.join(d, "other-ca.pem")
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", os.path.join(d, "k.pem"),
         "-out", other_ca, "-days", "1", "-subj", "/CN=not-the-cluster"])
    import base64
    import re
    wrong_ca = re.sub(r"certificate-authority-data: \S+",
                      "certificate-authority-data: " + base64.b64encode(open(other_ca, "rb").read()).decode(), good)
    if wrong_ca == good:
        wrong_ca = re.sub(r"certificate-authority: \S+", "certificate-authority: " + other_ca, good)
    cases = [
        ("missing-context", good.replace("current-context:", "current-context: nowhere\n#"), "nowhere"),
        ("bad-base64", re.sub(r"client-key-data: \S+", "client-key-data: QUJD$$notbase64", good)
         if "client-key-data" in good else re.sub(r"client-key: \S+", "client-key-data: QUJD$$notbase64", good),
         "client-key-data"),
        ("missing-key-file", re.sub(r"client-key(-data)?: \S+", "client-key: /nonexistent/key.pem", good),
         "client-key"),
        ("wrong-ca", wrong_ca, "certificate"),
        ("not-yaml", "clusters: [\n  - name: x\n\tserver: y\n", "line"),
    ]
    for name, text, field in cases:
        path = write_kubeconfig(d, name, text)
        env = make_env(c, KPAR_BACKEND="k8s", KUBECONFIG=path)
        p = run([KPAR, "run"], cwd=proj, env=env, ok=False, timeout=120)
        check(p.returncode == 2, "%s: exit 2, got %d" % (name, p.returncode))
        if name != "wrong-ca":
            check_in(path, p.stderr, "%s's error" % name)
        check_in(field, p.stderr, "%s's error" % name)
    # exec plugin that fails: named with its command
    plugin = os.path.join(d, "cred-plugin")
    with open(plugin, "w") as f:
        f.write("#!/bin/sh\necho 'token service unreachable' >&2\nexit 3\n")
    os.chmod(plugin, 0o755)
    server = re.search(r"server: (\S+)", good).group(1)
    ca = re.search(r"certificate-authority(?:-data)?: (\S+)", good)
    text = ("apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: k\n  cluster:\n"
            "    server: %s\n    %s\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\nusers:\n"
            "- name: u\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n"
            "      command: %s\n      interactiveMode: Never\n" % (server, ca.group(0), plugin))
    path = write_kubeconfig(d, "exec-fails", text)
    p = run([KPAR, "run"], cwd=proj, env=make_env(c, KPAR_BACKEND="k8s", KUBECONFIG=path), ok=False, timeout=120)
    check(p.returncode == 2, "exec failing: exit 2")
    check_in("cred-plugin", p.stderr)
    check_in("token service unreachable", p.stderr)


def test_image_per_bucket_runs_single_pod_jobs():
    c = cluster()
    proj = sleep_suite(tmpdir("kpar-k8s-perbucket-"), 6, fail={2}, seconds=lambda i: 0.5)
    args = k8s_vars(c, "kpar-test/perbucket", workers=2, KPAR_BUCKETS=6, KPAR_IMAGE_PER_BUCKET=1)
    p = make(proj, "k8s-test", *args, ok=False, c=c)
    check(p.returncode == 2, "one test fails: %d\n%s" % (p.returncode, p.stderr[-3000:]))
    res = junit(proj)
    check(len(res) == 6 and list(res.values()).count("failure") == 1, "every test once: %r" % res)
    jobs = c.json("get", "jobs", "-l", run_label(proj))["items"]
    check(len(jobs) == 6, "a Job per bucket: %d" % len(jobs))
    images = {j["spec"]["template"]["spec"]["containers"][0]["image"] for j in jobs}
    check(len(images) == 6, "each on its own image: %r" % images)


if __name__ == "__main__":
    from faults import test_disruptions_exactly_once   # last: it kills a node of the cluster
    run_tests([test_hello_c_same_as_local, test_sleep_suite_200_same_as_local,
               test_killed_coordinator_resumes_and_deleted_job_is_replaced,
               test_watch_expiry_relists, test_api_outage_longer_than_a_request_is_ridden_through,
               test_ctrl_c_leaves_job_status_and_cancel,
               test_unpullable_image_stops_with_the_reason, test_unschedulable_stops_with_the_reason,
               test_bad_kubeconfigs_name_file_and_field, test_image_per_bucket_runs_single_pod_jobs,
               test_disruptions_exactly_once])
