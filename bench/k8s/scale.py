#!/usr/bin/env python3
"""scale.py - kpar's Kubernetes backend at scale, on kwok: 1,000 buckets at parallelism 200.

    bench/k8s/scale.py [--buckets 1000] [--workers 200] [--seconds 10] [--nodes 4] [--runs 2]
                       [--dir /tmp/kpar-kwok] [--keep]

A real control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler from
tests/k8s/build's kcluster) without kubelets; kwok fakes the nodes and the pods: a pod is
Running as soon as it is bound and Succeeded --seconds later (a kwok Stage with a fixed
delay), and its log is served by kwok's kubelet endpoint from a Logs object naming the
pod.  Each log is the real result record of the pod's bucket, made beforehand by
`kpar worker` (KPAR_RUN_CMD=true), in the CRI log format kwok reads.  Pod names are only
known once the Job controller makes the pods, so a binder thread here watches the run's
pods and creates each pod's Logs object when the pod appears (its index -> its bucket's
record); it also timestamps each pod's creation and completion as a watcher sees them.

Measured around `kpar run` (KPAR_BACKEND=k8s): /usr/bin/time -v (user+sys CPU, peak RSS),
kpar's own API counter line (requests and watches per bucket), wall time, and the ideal
makespan ceil(buckets / workers) * seconds.  The Job controller's pace (first pod created
-> last pod Succeeded) is reported apart from kpar's own overhead (start -> first pod, last
pod Succeeded -> kpar's exit).

Reuses tests/k8s/cluster (certificates, etcd, kube-apiserver, process and cgroup handling)
by importing it.  Needs root (as tests/k8s/cluster does), openssl, Go (to build kwok once
into ~/.cache/kpar-k8s/bin) and a built tree (build/kpar).  Exit 0 when the runs completed
(goals met or not: the table says), 1 on a failure, 77 when it cannot run here.
"""
import argparse
import hashlib
import http.client
import importlib.machinery
import importlib.util
import json
import math
import os
import re
import shutil
import ssl
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True   # importing tests/k8s/cluster leaves nothing behind
HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.abspath(os.path.join(HERE, "..", ".."))
CLUSTER_SCRIPT = os.path.join(TOP, "tests", "k8s", "cluster")
KWOK_VERSION = "v0.7.0"
GO = shutil.which("go") or "/usr/local/go/bin/go"
SKIP = 77
NODE_PREFIX = "kwok-node-"
NS = "default"
GOALS = {"req_per_bucket": 3.0, "overhead": 0.05, "rss_mb": 50.0}


def load_cluster():
    loader = importlib.machinery.SourceFileLoader("kpar_k8s_cluster", CLUSTER_SCRIPT)
    spec = importlib.util.spec_from_loader(loader.name, loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


cl = load_cluster()
log = lambda msg: (sys.stderr.write("scale: %s\n" % msg), sys.stderr.flush())  # noqa: E731


# ---------------------------------------------------------------- kwok

def kwok_binary():
    cache = os.environ.get("KPAR_K8S_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "kpar-k8s")
    d = os.path.join(cache, "bin", "kwok-" + KWOK_VERSION)
    path = os.path.join(d, "kwok")
    if os.access(path, os.X_OK):
        return path
    if not os.access(GO, os.X_OK) and not shutil.which(GO):
        raise cl.Skip("no Go toolchain to build kwok")
    log("building kwok %s into %s (once)" % (KWOK_VERSION, d))
    os.makedirs(d, exist_ok=True)
    env = dict(os.environ, GOBIN=d, GOFLAGS="-mod=mod", CGO_ENABLED="0")
    cl.run([GO, "install", "sigs.k8s.io/kwok/cmd/kwok@" + KWOK_VERSION], env=env, cwd=d)
    return path


def kwok_module_dir():
    p = cl.run([GO, "env", "GOMODCACHE"]).stdout.strip()
    d = os.path.join(p, "sigs.k8s.io", "kwok@" + KWOK_VERSION)
    if not os.path.isdir(d):
        cl.run([GO, "mod", "download", "sigs.k8s.io/kwok@" + KWOK_VERSION], env=dict(os.environ, GOFLAGS="-mod=mod"),
               cwd=os.path.dirname(kwok_binary()))
    return d


def pod_stages(seconds):
    """kwok's 'fast' pod stages (Running at once, deleted when asked), pod-complete with a fixed
    delay: every pod of a Job Succeeds `seconds` after it started running."""
    return """apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-ready
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.podIP'
      operator: 'DoesNotExist'
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Initialized
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Ready
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: ContainersReady
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: true
        restartCount: 0
        state:
          running:
            startedAt: {{ $now | Quote }}
      {{ end }}
      hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
      podIP: {{ PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) | Quote }}
      phase: Running
      startTime: {{ $now | Quote }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-complete
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values:
      - 'Running'
    - key: '.metadata.ownerReferences.[].kind'
      operator: 'In'
      values:
      - 'Job'
  delay:
    durationMilliseconds: %d
  next:
    statusTemplate: |
      {{ $now := Now }}
      {{ $root := . }}
      conditions:
      - lastTransitionTime: {{ $now | Quote }}
        status: "False"
        type: Ready
        reason: PodCompleted
      - lastTransitionTime: {{ $now | Quote }}
        status: "False"
        type: ContainersReady
        reason: PodCompleted
      containerStatuses:
      {{ range $index, $item := .spec.containers }}
      {{ $origin := index $root.status.containerStatuses $index }}
      - image: {{ $item.image | Quote }}
        name: {{ $item.name | Quote }}
        ready: false
        restartCount: 0
        started: false
        state:
          terminated:
            exitCode: 0
            finishedAt: {{ $now | Quote }}
            reason: Completed
            startedAt: {{ $origin.state.running.startedAt | Quote }}
      {{ end }}
      phase: Succeeded
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-delete
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'Exists'
  next:
    finalizers:
      empty: true
    delete: true
""" % int(seconds * 1000)


def kwok_cert(c, nodes):
    """kwok's kubelet endpoint: one serving certificate for every fake node's name (the
    apiserver reaches a node by Hostname, which its private /etc/hosts maps to 127.0.0.1)."""
    d = c.pki
    key, csr, crt, ext = (os.path.join(d, "kwok" + s) for s in (".key", ".csr", ".crt", ".ext"))
    cl.openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
               "-keyout", key, "-out", csr, "-subj", "/CN=kwok")
    cl.write(ext, "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                  "extendedKeyUsage=serverAuth\nsubjectAltName=%s\n"
             % ",".join(["IP:127.0.0.1", "DNS:localhost"] + ["DNS:" + n for n in nodes]))
    cl.openssl("x509", "-req", "-in", csr, "-CA", os.path.join(d, "ca.crt"), "-CAkey", os.path.join(d, "ca.key"),
               "-CAcreateserial", "-out", crt, "-days", "30", "-extfile", ext)
    os.unlink(csr)
    os.unlink(ext)
    os.chmod(key, 0o600)
    return crt, key


# ---------------------------------------------------------------- control plane

def start_controllers(c, job_syncs, qps):
    """tests/k8s/cluster's controller manager and scheduler, with the client rate limits
    raised (defaults: 20 QPS/30 burst and 50/100) and more Job workers, so neither the Job
    controller nor the scheduler paces 200 pods a wave."""
    ports, pki = c.state["ports"], c.pki
    cm_kc, sch_kc = c.p("controller-manager.kubeconfig"), c.p("scheduler.kubeconfig")
    cl.kubeconfig(c, cm_kc, "system:kube-controller-manager", "controller-manager")
    cl.kubeconfig(c, sch_kc, "system:kube-scheduler", "scheduler")
    rate = ["--kube-api-qps=%d" % qps, "--kube-api-burst=%d" % (2 * qps)]
    cl.spawn(c, "controller-manager",
             [c.kcluster, "controller-manager", "--kubeconfig=" + cm_kc,
              "--authentication-kubeconfig=" + cm_kc, "--authorization-kubeconfig=" + cm_kc,
              "--bind-address=127.0.0.1", "--secure-port=%d" % ports["controller_manager"],
              "--cert-dir=" + c.p("controller-manager"),
              "--leader-elect=false", "--controllers=*",
              "--service-account-private-key-file=%s/sa.key" % pki, "--root-ca-file=%s/ca.crt" % pki,
              "--use-service-account-credentials=true",
              "--cluster-signing-cert-file=%s/ca.crt" % pki, "--cluster-signing-key-file=%s/ca.key" % pki,
              "--node-monitor-period=5s", "--node-monitor-grace-period=60s",
              "--concurrent-job-syncs=%d" % job_syncs, "--profiling=false"] + rate,
             c.cg + "/control")
    cl.spawn(c, "scheduler",
             [c.kcluster, "scheduler", "--kubeconfig=" + sch_kc,
              "--authentication-kubeconfig=" + sch_kc, "--authorization-kubeconfig=" + sch_kc,
              "--bind-address=127.0.0.1", "--secure-port=%d" % ports["scheduler"],
              "--cert-dir=" + c.p("scheduler"), "--leader-elect=false", "--profiling=false"] + rate,
             c.cg + "/control")


def kubectl(c, *args, input=None):
    return cl.run([c.kcluster, "kubectl", "--kubeconfig", c.p("kubeconfig")] + list(args), input=input)


def up(c, args):
    """Control plane + kwok + fake nodes, in DIR (torn down by cl.cmd_down)."""
    if os.path.isdir(c.dir) and not cl.is_cluster_dir(c) and \
            set(os.listdir(c.dir)) - cl.OUR_ENTRIES - {"kwok", "bench", "kwok.yaml"}:
        raise cl.Fail("%s exists and was not made by this script; refusing to use it" % c.dir)
    cl.cmd_down(c, quiet=True)
    if os.geteuid() != 0:
        raise cl.Skip("needs root (the control plane runs in its own cgroup and mount namespace)")
    if not shutil.which("openssl"):
        raise cl.Skip("needs openssl")
    kwok = kwok_binary()
    crd_dir = os.path.join(kwok_module_dir(), "kustomize", "crd", "bases")
    bp = subprocess.run([os.path.join(TOP, "tests", "k8s", "build")], stdout=subprocess.PIPE, text=True)
    if bp.returncode == SKIP:
        raise cl.Skip("cannot build kcluster (no Go toolchain)")
    if bp.returncode != 0:
        raise cl.Fail("tests/k8s/build failed")
    os.makedirs(c.dir, exist_ok=True)
    cl.write(os.path.join(c.dir, cl.MARKER), "bench/k8s/scale.py\n")
    shutil.rmtree(c.logs, ignore_errors=True)
    os.makedirs(c.logs)
    nodes = [NODE_PREFIX + str(i + 1) for i in range(args.nodes)]
    c.state = {"kcluster": bp.stdout.strip().splitlines()[-1], "version": cl.K8S_VERSION, "nodes": nodes,
               "pids": {}, "cgroup": c.cg, "apiserver_flags": os.environ.get("KPAR_K8S_APISERVER_FLAGS", "")}
    taken = set()
    c.state["ports"] = {k: cl.free_port(taken) for k in ("etcd", "etcd_peer", "apiserver", "controller_manager",
                                                         "scheduler", "kwok")}
    c.save()
    t0 = time.time()
    cl.cgroup_create(c.cg + "/control")
    # make_pki also makes kubelet certificates for the (fake) nodes; kwok gets its own below
    cl.make_pki(c)
    kwok_crt, kwok_key = kwok_cert(c, nodes)
    cl.start_etcd(c)
    cl.start_apiserver(c)
    cl.kubeconfig(c, c.p("kubeconfig"), "kpar-admin", "admin")
    start_controllers(c, args.job_syncs, args.qps)
    kubectl(c, "apply", "--server-side", "-f", crd_dir)
    kubectl(c, "wait", "--for=condition=Established", "--timeout=60s", "crd/logs.kwok.x-k8s.io")
    cfg = c.p("kwok.yaml")
    cl.write(cfg, pod_stages(args.seconds))
    port = c.state["ports"]["kwok"]
    cl.spawn(c, "kwok", [kwok, "--config=" + cfg, "--kubeconfig=" + c.p("kubeconfig"),
                         "--manage-all-nodes=false",
                         "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                         "--server-address=127.0.0.1:%d" % port, "--node-port=%d" % port,
                         "--node-ip=127.0.0.1", "--cidr=10.244.0.1/16",
                         "--tls-cert-file=" + kwok_crt, "--tls-private-key-file=" + kwok_key,
                         "--node-lease-duration-seconds=40", "--enable-crds=Logs", "-v=WARN"],
             c.cg + "/control")
    per_node = max(110, math.ceil(args.workers / len(nodes)) + 10)
    for n in nodes:
        cl.api(c, "POST", "/api/v1/nodes", {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": n, "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                         "labels": {"kubernetes.io/hostname": n, "kubernetes.io/os": "linux",
                                    "kubernetes.io/arch": "amd64", "type": "kwok"}},
            # kwok's node-initialize keeps these addresses; the apiserver reaches a node by Hostname
            "status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                                     {"type": "Hostname", "address": n}],
                       "allocatable": {"cpu": "64", "memory": "256Gi", "pods": str(per_node)},
                       "capacity": {"cpu": "64", "memory": "256Gi", "pods": str(per_node)}}})
    watch = ["apiserver", "controller-manager", "scheduler", "kwok"]
    cl.wait_for("nodes %s Ready" % " ".join(nodes), lambda: cl.nodes_ready(c, nodes), 120, c, watch)
    cl.wait_for("nodes untainted", lambda: not any(n["spec"].get("taints") for n in
                                                   cl.api(c, "GET", "/api/v1/nodes")["items"]), 60, c, watch)
    cl.wait_for("ServiceAccount default/default", lambda: cl.default_sa(c), 60, c, watch)
    c.state["up_seconds"] = round(time.time() - t0, 1)
    c.save()
    log("control plane + kwok up in %.1fs: %d fake nodes, %d pods each; logs in %s"
        % (time.time() - t0, len(nodes), per_node, c.logs))


# ---------------------------------------------------------------- project and records

def make_project(c, args):
    """DIR/bench/template: tests.list, plan with `buckets` buckets, and each bucket's record
    (kpar worker, KPAR_RUN_CMD=true) as a CRI-format log file DIR/bench/records/N.log."""
    kpar = args.kpar_bin
    base = c.p("bench")
    shutil.rmtree(base, ignore_errors=True)
    tmpl, recs = os.path.join(base, "template"), os.path.join(base, "records")
    os.makedirs(tmpl)
    os.makedirs(recs)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KPAR_") and k != "KUBECONFIG"}
    env.update(KPAR_TESTS=" ".join("t/t%05d" % i for i in range(1, args.tests + 1)),
               KPAR_BUCKETS=str(args.buckets), KPAR_WORKERS=str(args.workers), KPAR_PROGRESS="never")
    cl.run([kpar, "list"], cwd=tmpl, env=env)
    cl.run([kpar, "plan"], cwd=tmpl, env=env)
    with open(os.path.join(tmpl, ".kpar", "plan.json")) as f:
        plan = json.load(f)
    nb = len(plan["buckets"])
    if nb != args.buckets:
        raise cl.Fail("the plan has %d buckets, not %d" % (nb, args.buckets))
    t0 = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime())
    wenv = dict(env, KPAR_RUN_CMD="true")
    for b in range(1, nb + 1):
        p = cl.run([kpar, "worker", "--buckets-dir", ".kpar/buckets", "--bucket", str(b), "--plan", plan["plan"],
                    "--name", "kwok"], cwd=tmpl, env=wenv)
        if "KPAR-RECORD-END" not in p.stdout:
            raise cl.Fail("bucket %d: no record from kpar worker" % b)
        with open(os.path.join(recs, "%d.log" % b), "w") as f:
            for line in p.stdout.splitlines():
                f.write("%s stdout F %s\n" % (stamp, line))
    # kwok pulls nothing: any digest reference will do
    img = os.path.join(tmpl, ".kpar", "image")
    os.makedirs(img, exist_ok=True)
    cl.write(os.path.join(img, "ref"), "127.0.0.1:5000/bench/scale@sha256:%s\n" % ("5ca1e" * 13)[:64])
    log("project: %d tests in %d buckets, records made in %.1fs" % (args.tests, nb, time.time() - t0))
    return tmpl, recs


# ---------------------------------------------------------------- the binder / pod timeline

class Binder(threading.Thread):
    """Watches the run's pods (label kpar.dev/run) on its own connection: creates each new
    pod's kwok Logs object (the pod's index -> its bucket's record file) and notes when the
    pod was first seen and when it was seen Succeeded."""

    def __init__(self, c, recs):
        super().__init__(daemon=True)
        self.c, self.recs = c, recs
        self.stop = threading.Event()
        self.created, self.done, self.bound, self.bucket = {}, {}, set(), {}
        self.errors = []
        self.ctx = cl.api_ctx(c)
        self.port = c.state["ports"]["apiserver"]
        self.lock = threading.Lock()

    def conn(self, timeout=30):
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=timeout)

    def bind(self, pc, pod):
        md = pod["metadata"]
        name = md["name"]
        idx = int(md.get("labels", {}).get("batch.kubernetes.io/job-completion-index", "-1"))
        bucket = idx + 1
        for e in pod["spec"]["containers"][0].get("env", []):
            if e.get("name") == "KPAR_BUCKET_LIST" and e.get("value"):
                bucket = int(e["value"].split(",")[idx])
        self.bucket[name] = bucket
        body = json.dumps({"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Logs",
                           "metadata": {"name": name, "namespace": md["namespace"]},
                           "spec": {"logs": [{"logsFile": os.path.join(self.recs, "%d.log" % bucket)}]}})
        pc.request("POST", "/apis/kwok.x-k8s.io/v1alpha1/namespaces/%s/logs" % md["namespace"], body,
                   {"Content-Type": "application/json"})
        r = pc.getresponse()
        r.read()
        if r.status not in (200, 201, 409):
            self.errors.append("Logs for %s: HTTP %d" % (name, r.status))

    def run(self):
        rv = None
        pc = self.conn()
        while not self.stop.is_set():
            try:
                if rv is None:
                    wc = self.conn()
                    wc.request("GET", "/api/v1/namespaces/%s/pods?labelSelector=kpar.dev/run" % NS)
                    lst = json.loads(wc.getresponse().read())
                    wc.close()
                    rv = lst["metadata"]["resourceVersion"]
                    for p in lst["items"]:
                        self.on(pc, "ADDED", p)
                wc = self.conn(timeout=5)
                wc.request("GET", "/api/v1/namespaces/%s/pods?labelSelector=kpar.dev/run&watch=1"
                                  "&allowWatchBookmarks=true&resourceVersion=%s" % (NS, rv))
                r = wc.getresponse()
                if r.status != 200:
                    rv = None
                    continue
                while not self.stop.is_set():
                    try:
                        line = r.readline()
                    except TimeoutError:
                        continue
                    except OSError:
                        break
                    if not line:
                        break
                    ev = json.loads(line)
                    if ev["type"] == "ERROR":
                        rv = None
                        break
                    rv = ev["object"]["metadata"]["resourceVersion"]
                    if ev["type"] != "BOOKMARK":
                        self.on(pc, ev["type"], ev["object"])
                wc.close()
            except (OSError, http.client.HTTPException, ValueError) as e:
                self.errors.append("watch: %s" % e)
                time.sleep(0.2)
                pc = self.conn()

    def on(self, pc, typ, pod):
        now = time.time()
        name = pod["metadata"]["name"]
        with self.lock:
            self.created.setdefault(name, now)
            if pod.get("status", {}).get("phase") == "Succeeded":
                self.done.setdefault(name, now)
        if name not in self.bound and typ != "DELETED":
            self.bound.add(name)
            self.bind(pc, pod)


# ---------------------------------------------------------------- one measured run

TIME_RE = {"user": r"User time \(seconds\): ([\d.]+)", "sys": r"System time \(seconds\): ([\d.]+)",
           "rss_kb": r"Maximum resident set size \(kbytes\): (\d+)"}
API_RE = re.compile(r"Kubernetes API: (\d+) requests \((\d+) retried\) and (\d+) watches for (\d+) buckets, "
                    r"(\d+) watch events")


def one_run(c, args, tmpl, recs, i):
    proj = c.p("bench", "run%d" % i)
    shutil.rmtree(proj, ignore_errors=True)
    shutil.copytree(tmpl, proj, symlinks=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KPAR_") and k != "KUBECONFIG"}
    env.update(KUBECONFIG=c.p("kubeconfig"), KPAR_BACKEND="k8s", KPAR_WORKERS=str(args.workers),
               KPAR_BUCKETS=str(args.buckets), KPAR_PROGRESS="never", KPAR_NAMESPACE=NS,
               KPAR_K8S_STALL_TIMEOUT="120", KPAR_K8S_DEBUG="1" if args.debug else "0")
    binder = Binder(c, recs)
    binder.start()
    time.sleep(0.5)
    tfile = os.path.join(proj, "time.txt")
    t0 = time.time()
    p = subprocess.run(["/usr/bin/time", "-v", "-o", tfile, args.kpar_bin, "run"],
                       cwd=proj, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=args.timeout)
    t1 = time.time()
    time.sleep(1.0)   # the binder's last events
    binder.stop.set()
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "kpar-run%d.log" % i), "w") as f:
        f.write(p.stdout + p.stderr)
    if p.returncode != 0:
        raise cl.Fail("kpar run exited %d (see %s):\n%s" % (p.returncode, os.path.join(args.out, "kpar-run%d.log" % i),
                                                            (p.stdout + p.stderr)[-3000:]))
    with open(tfile) as f:
        tv = f.read()
    m = {k: float(re.search(rx, tv).group(1)) for k, rx in TIME_RE.items()}
    a = API_RE.search(p.stderr + p.stdout)
    if not a:
        raise cl.Fail("no 'Kubernetes API:' line in kpar's output")
    req, retried, watches, nb, events = (int(x) for x in a.groups())
    with binder.lock:
        created, done = dict(binder.created), dict(binder.done)
    if len(done) < args.buckets:
        log("warning: the binder saw %d of %d pods Succeeded" % (len(done), args.buckets))
    ideal = math.ceil(args.buckets / args.workers) * args.seconds
    first_pod = min(created.values()) if created else t0
    last_done = max(done.values()) if done else t1
    jobs = json.loads(kubectl(c, "get", "jobs", "-n", NS, "-o", "json").stdout)["items"]
    if jobs and not getattr(args, "job_spec", None):
        args.job_spec = jobs[0]
    res = {"run": i, "rc": p.returncode, "requests": req, "retried": retried, "watches": watches, "buckets": nb,
           "events": events, "req_per_bucket": (req + watches) / nb,
           "cpu": m["user"] + m["sys"], "user": m["user"], "sys": m["sys"], "rss_mb": m["rss_kb"] / 1024.0,
           "wall": t1 - t0, "ideal": ideal, "ratio": (t1 - t0) / ideal,
           "startup": first_pod - t0, "job_pace": last_done - first_pod, "tail": t1 - last_done,
           "pods": len(created), "jobs": len(jobs), "binder_errors": binder.errors[:5]}
    res.update(refill_stats(created, done, args.workers))
    res.update(collect_lag(proj, done, binder.bucket))
    done_line = re.search(r"complete: (\d+) tests, (\d+) failed, (\d+) errors", p.stderr + p.stdout)
    if not done_line or int(done_line.group(1)) != args.tests or done_line.group(2, 3) != ("0", "0"):
        raise cl.Fail("kpar did not collect every test as passed: %s" % (done_line.group(0) if done_line else "?"))
    res["kpar_vs_job_pace"] = (t1 - t0) / res["job_pace"] if res["job_pace"] > 0 else 0
    # the run's Job and pods go before the next run
    kubectl(c, "delete", "jobs", "--all", "-n", NS, "--cascade=background", "--wait=false")
    kubectl(c, "delete", "logs.kwok.x-k8s.io", "--all", "-n", NS, "--wait=false")
    cl.wait_for("the run's pods deleted", lambda: not cl.api(c, "GET", "/api/v1/namespaces/%s/pods?limit=1" % NS)
                ["items"], 180)
    return res


def refill_stats(created, done, workers):
    """How long a freed slot stays empty: the k-th pod created after the first `workers`
    replaces the (k - workers)-th pod to finish; its creation minus that finish is the
    control plane's latency (Job controller's 1 s sync batching, pod creation, scheduling)."""
    c, d = sorted(created.values()), sorted(done.values())
    lat = sorted(c[k] - d[k - workers] for k in range(workers, min(len(c), len(d) + workers)))
    if not lat:
        return {}
    q = lambda f: lat[min(len(lat) - 1, int(f * len(lat)))]  # noqa: E731
    waves = math.ceil(len(c) / workers)
    return {"refill_p50": q(0.5), "refill_p90": q(0.9), "refill_max": lat[-1], "waves": waves}


def collect_lag(proj, done, bucket_of):
    """kpar keeps each collected record as .kpar/results/test-group-N.rec, written when it is
    collected: its mtime minus the time the binder saw the pod Succeeded is the collection lag
    (watch delivery + kpar's queue of log fetches + the fetch)."""
    lag = []
    for pod, t in done.items():
        b = bucket_of.get(pod)
        try:
            lag.append(os.stat(os.path.join(proj, ".kpar", "results", "test-group-%d.rec" % b)).st_mtime - t)
        except (OSError, TypeError):
            pass
    if not lag:
        return {}
    lag.sort()
    q = lambda f: lag[min(len(lag) - 1, int(f * len(lag)))]  # noqa: E731
    return {"lag_p50": q(0.5), "lag_p90": q(0.9), "lag_max": lag[-1], "lag_n": len(lag)}


def baseline(c, args, recs):
    """The same Job as kpar's (its spec, a new name), created with no coordinator at all:
    the control plane's own pace for these pods, timed by the binder's watch."""
    job = args.job_spec
    md = job["metadata"]
    tmpl = job["spec"]["template"]
    for k in ("controller-uid", "batch.kubernetes.io/controller-uid", "job-name", "batch.kubernetes.io/job-name"):
        tmpl["metadata"].get("labels", {}).pop(k, None)
    spec = {k: v for k, v in job["spec"].items() if k != "selector"}
    body = {"apiVersion": "batch/v1", "kind": "Job", "spec": spec,
            "metadata": {"name": "baseline-" + md["name"], "namespace": md["namespace"],
                         "labels": md.get("labels", {}), "annotations": md.get("annotations", {})}}
    binder = Binder(c, recs)
    binder.start()
    time.sleep(0.5)
    t0 = time.time()
    cl.api(c, "POST", "/apis/batch/v1/namespaces/%s/jobs" % md["namespace"], body)
    n = spec["completions"]
    cl.wait_for("the baseline Job's %d pods Succeeded" % n, lambda: len(binder.done) >= n, args.timeout)
    binder.stop.set()
    with binder.lock:
        created, done = dict(binder.created), dict(binder.done)
    res = {"run": "Job alone", "wall": max(done.values()) - t0, "startup": min(created.values()) - t0,
           "job_pace": max(done.values()) - min(created.values()), "ideal": math.ceil(n / args.workers) * args.seconds}
    res["ratio"] = res["wall"] / res["ideal"]
    res.update(refill_stats(created, done, args.workers))
    kubectl(c, "delete", "jobs", "--all", "-n", NS, "--cascade=background", "--wait=false")
    kubectl(c, "delete", "logs.kwok.x-k8s.io", "--all", "-n", NS, "--wait=false")
    cl.wait_for("the baseline's pods deleted", lambda: not cl.api(c, "GET", "/api/v1/namespaces/%s/pods?limit=1" % NS)
                ["items"], 180)
    return res


def table(results, args):
    rows = [("run", "req/bucket", "requests", "watches", "CPU s", "peak RSS MB", "wall s", "ideal s", "wall/ideal",
             "start->1st pod", "Job pace", "wall/Job pace", "last pod->exit", "collect lag p50/p90/max s",
             "refill p50/p90/max s")]
    for r in results:
        g = lambda k, f: (f % r[k]) if k in r else "-"  # noqa: E731
        rows.append((str(r["run"]), g("req_per_bucket", "%.2f"), g("requests", "%d"), g("watches", "%d"),
                     g("cpu", "%.2f"), g("rss_mb", "%.1f"), g("wall", "%.1f"), g("ideal", "%.0f"),
                     g("ratio", "%.3f"), g("startup", "%.2f"), g("job_pace", "%.1f"), g("kpar_vs_job_pace", "%.3f"),
                     g("tail", "%.2f"), "%s/%s/%s" % (g("lag_p50", "%.3f"), g("lag_p90", "%.3f"), g("lag_max", "%.2f")),
                     "%s/%s/%s" % (g("refill_p50", "%.2f"), g("refill_p90", "%.2f"),
                                                      g("refill_max", "%.2f"))))
    w = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
    out = ["| " + " | ".join(x.ljust(w[k]) for k, x in enumerate(row)) + " |" for row in rows]
    out.insert(1, "| " + " | ".join("-" * x for x in w) + " |")
    return "\n".join(out)


def git_head():
    p = subprocess.run(["git", "-C", TOP, "rev-parse", "--short", "HEAD"], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, text=True)
    return p.stdout.strip() or "?"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--buckets", type=int, default=1000)
    ap.add_argument("--tests", type=int, default=0, help="tests (default: one per bucket)")
    ap.add_argument("--workers", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=10.0, help="each pod's run time")
    ap.add_argument("--nodes", type=int, default=4)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--job-syncs", type=int, default=50, help="kube-controller-manager --concurrent-job-syncs")
    ap.add_argument("--qps", type=int, default=1000, help="controller manager and scheduler --kube-api-qps "
                                                          "(burst: twice that)")
    ap.add_argument("--timeout", type=int, default=1200)
    ap.add_argument("--dir", default=os.environ.get("KPAR_KWOK_DIR", "/tmp/kpar-kwok"))
    ap.add_argument("--no-baseline", dest="baseline", action="store_false",
                    help="skip the run of kpar's Job with no coordinator")
    ap.add_argument("--debug", action="store_true", help="KPAR_K8S_DEBUG=1 (traces every request; costs CPU)")
    ap.add_argument("--kpar", default=os.path.join(TOP, "build", "kpar"), help="the kpar binary (copied at start)")
    ap.add_argument("--keep", action="store_true", help="leave the cluster running")
    ap.add_argument("--out", default=os.environ.get("KPAR_KWOK_OUT", "/tmp/kpar-kwok-out"),
                    help="kpar's output of each run and results.json go here (kept after teardown)")
    args = ap.parse_args()
    args.tests = args.tests or args.buckets
    c = cl.Cluster(args.dir)
    results = []
    try:
        up(c, args)
        # a private copy: others may rebuild the tree while this runs
        for _ in range(60):
            if os.access(args.kpar, os.X_OK):
                break
            time.sleep(1)
        else:
            raise cl.Skip("no %s (build the project first)" % args.kpar)
        args.kpar_bin = c.p("kpar-bin", "kpar")
        os.makedirs(os.path.dirname(args.kpar_bin), exist_ok=True)
        shutil.copy2(args.kpar, args.kpar_bin)
        with open(args.kpar_bin, "rb") as f:
            args.kpar_sha = hashlib.sha256(f.read()).hexdigest()[:12]
        tmpl, recs = make_project(c, args)
        for i in range(1, args.runs + 1):
            r = one_run(c, args, tmpl, recs, i)
            results.append(r)
            log("run %d: %s" % (i, json.dumps(r)))
        if args.baseline and getattr(args, "job_spec", None):
            r = baseline(c, args, recs)
            results.append(r)
            log("baseline: %s" % json.dumps(r))
    except cl.Skip as e:
        log("SKIP: %s" % e)
        return SKIP
    except (cl.Fail, subprocess.TimeoutExpired) as e:
        log("FAILED: %s" % e)
        log("logs: %s/*.log" % c.logs)
        return 1
    finally:
        if not args.keep:
            try:
                cl.cmd_down(c, quiet=True)
            except Exception as e:  # noqa: BLE001
                log("teardown: %s" % e)
    if not results:
        return 0
    print("%d buckets, %d tests, parallelism %d, %g s per pod, %d kwok nodes; kube-controller-manager "
          "--concurrent-job-syncs=%d, controller manager and scheduler --kube-api-qps=%d --kube-api-burst=%d; "
          "kpar sha256 %s, git %s"
          % (args.buckets, args.tests, args.workers, args.seconds, args.nodes, args.job_syncs, args.qps, 2 * args.qps,
             args.kpar_sha, git_head()))
    print(table(results, args))
    kp = [r for r in results if isinstance(r["run"], int)]
    worst = {"req_per_bucket": max(r["req_per_bucket"] for r in kp),
             "overhead": max(r["ratio"] for r in kp) - 1, "rss_mb": max(r["rss_mb"] for r in kp)}
    print("kpar's own overhead over the Job's pace (wall / (first pod created -> last pod Succeeded)): "
          "worst %.3f" % max(r["kpar_vs_job_pace"] for r in kp))
    for k, goal in GOALS.items():
        print("goal %-15s <= %-6g worst %.3f  %s" % (k, goal, worst[k], "met" if worst[k] <= goal else "MISSED"))
    if results:
        with open(os.path.join(args.out, "results.json"), "w") as f:
            json.dump({"args": vars(args), "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
