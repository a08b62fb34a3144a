#!/usr/bin/env python3
"""faults.py - a run of 40 buckets on the real test cluster while its pods
are disrupted through the real paths, the API server restarts under the
watch, the watch history is compacted away, and the coordinator is killed
with kill -9 twice and resumed.  The merged report must hold every test
exactly once with the verdicts of an undisturbed run, and the Job must show
the disruptions as ignored failures, not failed indexes.

Disruptions, on pods that are running at that moment:
  Eviction API (EvictionByEvictionAPI), preemption by a higher-priority pod
  (PreemptionByScheduler), the kubelet stopped long enough for the node
  lifecycle controller to taint the node (DeletionByTaintManager), and a
  node deleted for good (DeletionByPodGC).
"""
import json
import os
import random
import signal
import sqlite3
import time

from k8stest import (Failure, check, check_in, cluster, junit, k8s_vars, make, pods,
                     run_label, run_tests, sleep_suite, spawn_make, tmpdir, wait_for)

N = 40
FAIL = {11, 29}
SKIP = {17}


def expected():
    return {"t/t%03d" % i: "failure" if i in FAIL else "skipped" if i in SKIP else "pass" for i in range(N)}


def running_pods(c, label):
    return [p for p in pods(c, label, "Running") if not p["metadata"].get("deletionTimestamp")]


def evict(c, pod):
    body = json.dumps({"apiVersion": "policy/v1", "kind": "Eviction",
                       "metadata": {"name": pod["metadata"]["name"], "namespace": "default"}})
    c.kubectl("create", "--raw", "/api/v1/namespaces/default/pods/%s/eviction" % pod["metadata"]["name"],
              "-f", "-", stdin=body)


def preempt(c, pod):
    """A pod of higher priority that only fits where pod runs by taking its place."""
    node = pod["spec"]["nodeName"]
    c.kubectl("apply", "-f", "-", stdin=json.dumps({
        "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
        "metadata": {"name": "kpar-test-urgent"}, "value": 1000000}))
    name = "urgent-%d" % int(time.time() * 1000)
    c.kubectl("apply", "-f", "-", stdin=json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
        "spec": {"priorityClassName": "kpar-test-urgent", "nodeSelector": {"kubernetes.io/hostname": node},
                 "terminationGracePeriodSeconds": 0,
                 "containers": [{"name": "c", "image": c.env["KPAR_K8S_PAUSE_IMAGE"],
                                 "resources": {"requests": {"cpu": "1800m"}}}]}}))
    return name


def alive(m):
    return m.poll() is None


def test_disruptions_exactly_once():
    c = cluster()
    rng = random.Random(int(os.environ.get("KPAR_FAULT_SEED", "7")))
    proj = sleep_suite(tmpdir("kpar-k8s-faults-"), N, fail=FAIL, skip=SKIP,
                       seconds=lambda i: 8 + (i * 7) % 5)
    args = k8s_vars(c, "kpar-test/faults", workers=6, KPAR_BUCKETS=N, KPAR_K8S_REQUESTS="cpu=250m",
                    KPAR_WORKER_RETRIES=3)
    make(proj, "k8s-image", *args, c=c)
    log = os.path.join(proj, "make.log")
    m = spawn_make(proj, "k8s-test", *args, c=c, log=log)
    label = wait_for("the run's Job", lambda: run_label(proj), timeout=300)
    plan = ["evict", "evict", "kill-coordinator", "evict", "preempt", "evict", "kill-coordinator",
            "evict", "restart-apiserver", "evict", "evict", "stop-kubelet", "evict", "evict",
            "preempt", "evict", "evict", "kill-node", "evict", "evict", "evict"]
    disrupted, urgent, resumes = set(), [], 0
    step = 0
    while step < len(plan):
        if not alive(m):
            if m.returncode not in (0, 2, -9):
                raise Failure("make ended with %s:\n%s" % (m.returncode, open(log).read()[-4000:]))
            break
        what = plan[step]
        time.sleep(rng.uniform(0.5, 2.0))
        live = [p for p in running_pods(c, label) if p["metadata"]["name"] not in disrupted]
        if what in ("evict", "preempt", "stop-kubelet", "kill-node") and not live:
            continue
        pod = rng.choice(live) if live else None
        if what == "evict":
            evict(c, pod)
            disrupted.add(pod["metadata"]["name"])
        elif what == "preempt":
            disrupted.add(pod["metadata"]["name"])
            urgent.append(preempt(c, pod))
            time.sleep(5)
            c.kubectl("delete", "pod", urgent[-1], "--grace-period=0", "--wait=false")
        elif what == "kill-coordinator":
            os.killpg(m.pid, signal.SIGKILL)
            m.wait()
            time.sleep(rng.uniform(1, 4))
            resumes += 1
            m = spawn_make(proj, "k8s-test", "RESUME=1", *args, c=c, log=log + ".%d" % resumes)
        elif what == "restart-apiserver":
            c.hook("compact")
            c.hook("restart-apiserver")
        elif what == "stop-kubelet":
            node = pod["spec"]["nodeName"]
            disrupted.update(p["metadata"]["name"] for p in live if p["spec"]["nodeName"] == node)
            c.hook("stop-kubelet", node)
            time.sleep(45)   # NotReady after the grace period, tainted, pods evicted
            c.hook("start-kubelet", node)
        elif what == "kill-node":
            node = pod["spec"]["nodeName"]
            disrupted.update(p["metadata"]["name"] for p in live if p["spec"]["nodeName"] == node)
            c.hook("kill-node", node)
        step += 1
    print("campaign: %d of %d steps before the run ended" % (step, len(plan)))
    m.wait(timeout=900)
    out = open(log + (".%d" % resumes if resumes else "")).read()
    check(m.returncode == 2, "the final make reports the 2 failed tests (rc %s):\n%s" % (m.returncode, out[-4000:]))
    check(resumes == 2, "the coordinator was killed and resumed twice")
    check(os.path.exists(os.path.join(proj, ".kpar", "report", "junit.xml")),
          "the final make wrote no report (rc %s):\n%s" % (m.returncode, out[-6000:]))
    got = junit(proj)
    check(got == expected(), "every test exactly once, undisturbed verdicts:\n%r" %
          {k: (got.get(k), v) for k, v in expected().items() if got.get(k) != v})

    # the disruptions are on record as such
    all_pods = pods(c, label)
    reasons = {}
    for p in all_pods:
        for cond in p["status"].get("conditions", []):
            if cond["type"] == "DisruptionTarget" and cond["status"] == "True":
                reasons[cond.get("reason")] = reasons.get(cond.get("reason"), 0) + 1
    ignored = sum(int(p["metadata"].get("annotations", {}).get(
        "batch.kubernetes.io/job-index-ignored-failure-count", "0")) for p in all_pods)
    jobs = c.json("get", "jobs", "-l", label)["items"]
    print("disrupted %d pods of %d buckets, DisruptionTarget reasons still visible %r, "
          "ignored-failure annotations %d, resumes %d" % (len(disrupted), N, reasons, ignored, resumes))
    check(all(not j["status"].get("failedIndexes") for j in jobs),
          "no index failed for good: %r" % [j["status"] for j in jobs])
    check(len(disrupted) >= 0.3 * N, "30%% of the buckets' pods disrupted: %d" % len(disrupted))
    check(ignored >= 1 or sum(reasons.values()) >= 1,
          "the Job counts the disruptions as ignored failures: %r %d" % (reasons, ignored))
    summary = open(os.path.join(proj, ".kpar", "report", "summary.txt")).read()
    check_in("disrupted", summary, "the summary")
    db = sqlite3.connect(os.path.join(proj, ".kpar", "state.db"))
    check(db.execute("PRAGMA integrity_check").fetchone()[0] == "ok", "state database intact")
    db.close()


if __name__ == "__main__":
    run_tests([test_disruptions_exactly_once])
