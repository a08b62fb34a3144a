"""k8stest.py - what kpar's tests against the real test cluster share.

One cluster for a whole test script: `cluster()` starts tests/k8s/cluster in
a directory of its own (stopped when the script exits), or reuses the one
named by KPAR_K8S_REUSE_DIR (a developer's running cluster, left running).
Projects are made in temporary directories and driven through make with
the build tree's kpar, plugin and kpar.mk, as a user's project would be.
"""
import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
TOP_SRC = os.environ.get("KPAR_TOP_SRCDIR") or os.path.dirname(os.path.dirname(HERE))
TOP_BUILD = os.environ.get("KPAR_TOP_BUILDDIR") or TOP_SRC
sys.path.insert(0, os.path.join(TOP_SRC, "tests", "lib"))

from testlib import (Failure, Skip, check, check_in, check_not_in, need, run,  # noqa: E402,F401
                     run_tests, tmpdir)

KPAR = os.environ.get("KPAR_BIN") or os.path.join(TOP_BUILD, "kpar")
PLUGIN = os.environ.get("KPAR_PLUGIN") or os.path.join(TOP_BUILD, ".libs", "kpar.so")
MK = os.environ.get("KPAR_MK") or os.path.join(TOP_BUILD, "mk", "kpar.mk")
CLUSTER = os.path.join(HERE, "cluster")

_CLUSTER = None


class Cluster:
    def __init__(self, d, owned):
        self.dir = d
        self.owned = owned
        self.env = {}
        with open(os.path.join(d, "env")) as f:
            for line in f:
                line = line.strip()
                if "=" in line and not line.startswith("export"):
                    k, v = line.split("=", 1)
                    self.env[k] = v.strip("'")
        self.registry = self.env["KPAR_K8S_REGISTRY"]
        self.kubeconfig = self.env["KUBECONFIG"]
        self.nodes = self.env["KPAR_K8S_NODES"].split()
        # libc, dash and a few coreutils from this machine: what the
        # example projects' tests need at run time
        self.base = self.env["KPAR_K8S_BASE_IMAGE"]

    def hook(self, *args, ok=True, timeout=300):
        return run([sys.executable, CLUSTER] + list(args) + ["--dir", self.dir], ok=ok, timeout=timeout)

    def kubectl(self, *args, ok=True, stdin=None):
        return run([self.env["KCLUSTER"], "kubectl", "--kubeconfig", self.kubeconfig] + list(args),
                   ok=ok, input=stdin)

    def json(self, *args):
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def down(self):
        if self.owned:
            run([sys.executable, CLUSTER, "down", "--dir", self.dir], ok=None, timeout=300)


def cluster():
    """The cluster of this script (started on first use)."""
    global _CLUSTER
    if _CLUSTER:
        return _CLUSTER
    need("skopeo", "make")
    if os.environ.get("KPAR_K8S_TESTS") == "skip":
        raise Skip("KPAR_K8S_TESTS=skip")
    reuse = os.environ.get("KPAR_K8S_REUSE_DIR")
    if reuse:
        _CLUSTER = Cluster(reuse, False)
    else:
        d = tmpdir("kpar-k8s-")
        p = subprocess.run([sys.executable, CLUSTER, "up", "--dir", d], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=3600)
        if p.returncode == 77:
            raise Skip("the test cluster cannot run here:\n" + p.stdout[-2000:])
        if p.returncode != 0:
            subprocess.run([sys.executable, CLUSTER, "down", "--dir", d])
            raise Failure("tests/k8s/cluster up failed:\n" + p.stdout[-6000:])
        _CLUSTER = Cluster(d, True)
        import atexit
        atexit.register(_CLUSTER.down)
    return _CLUSTER


def _sanitized_make_env():
    """A plugin built with AddressSanitizer loads only into a make that has
    the ASan runtime first (as tests/lib/common.sh does for the shell tests);
    make's own leaks are not ours to report."""
    try:
        syms = subprocess.run(["nm", "-D", PLUGIN], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True).stdout
    except OSError:
        return {}
    if "__asan_init" not in syms:
        return {}
    lib = subprocess.run([os.environ.get("CC", "cc"), "-print-file-name=libasan.so"],
                         stdout=subprocess.PIPE, text=True).stdout.strip()
    return {"LD_PRELOAD": lib, "ASAN_OPTIONS": "detect_leaks=0"}


_SAN_ENV = None


def make_env(c, **extra):
    """make's environment: the cluster, and nothing of a developer's own kpar
    settings or of the outer make check (its MAKEFLAGS would reach the
    project's make: TESTS=... would override the project's own TESTS)."""
    global _SAN_ENV
    if _SAN_ENV is None:
        _SAN_ENV = _sanitized_make_env()
    e = {k: v for k, v in os.environ.items() if not k.startswith("KPAR_") and
         k not in ("RESUME", "KUBECONFIG", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    e.update(_SAN_ENV)
    e.update({"KUBECONFIG": c.kubeconfig, "KPAR_PROGRESS": "never"})
    e.update({k: str(v) for k, v in extra.items()})
    return e


def k8s_vars(c, image, workers=4, **extra):
    """make variables that put a project on the cluster."""
    v = {"KPAR_BACKEND": "k8s", "KPAR_REGISTRY": c.registry, "KPAR_IMAGE": image,
         "KPAR_BASE_IMAGE": c.base, "KPAR_WORKERS": workers}
    v.update(extra)
    return ["%s=%s" % (k, val) for k, val in v.items()]


def make(proj, *args, c=None, ok=True, env=None, timeout=900):
    argv = ["make", "-C", proj, "KPAR=" + KPAR, "KPAR_PLUGIN=" + PLUGIN, "KPAR_MK=" + MK] + list(args)
    return run(argv, ok=ok, env=env if env is not None else make_env(c), timeout=timeout)


def spawn_make(proj, *args, c=None, env=None, log=None):
    argv = ["make", "-C", proj, "KPAR=" + KPAR, "KPAR_PLUGIN=" + PLUGIN, "KPAR_MK=" + MK] + list(args)
    out = open(log, "w") if log else subprocess.DEVNULL
    return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env if env is not None else make_env(c),
                            start_new_session=True)


def junit(proj, state=".kpar"):
    """{test id: (status, message)} from the merged report."""
    root = ET.parse(os.path.join(proj, state, "report", "junit.xml")).getroot()
    out = {}
    for tc in root.iter("testcase"):
        name = tc.get("name")
        status = "pass"
        for kind in ("failure", "error", "skipped"):
            if tc.find(kind) is not None:
                status = kind
        if name in out:
            raise Failure("test %r twice in the merged report" % name)
        out[name] = status
    return out


def sleep_suite(d, n, fail=(), skip=(), seconds=lambda i: 0.05, payload_extra=""):
    """n tests t/tNNN: each sleeps, then passes, fails (exit 1) or skips (77)."""
    os.makedirs(os.path.join(d, "t"), exist_ok=True)
    for i in range(n):
        rc = 1 if i in fail else 77 if i in skip else 0
        path = os.path.join(d, "t", "t%03d" % i)
        with open(path, "w") as f:
            f.write("#!/bin/sh\nsleep %.2f\necho 'test %d done'\nexit %d\n" % (seconds(i), i, rc))
        os.chmod(path, 0o755)
    with open(os.path.join(d, "Makefile"), "w") as f:
        f.write("KPAR_TESTS = $(sort $(wildcard t/t*))\nKPAR_PAYLOAD = t\n%s\ninclude $(KPAR_MK)\n"
                % payload_extra)
    return d


def run_label(proj, state=".kpar"):
    import sqlite3
    path = os.path.join(proj, state, "state.db")
    if not os.path.exists(path):
        return None
    db = sqlite3.connect(path)
    try:
        row = db.execute("SELECT value FROM run_meta WHERE key='k8s.token' ORDER BY run DESC LIMIT 1").fetchone()
    except sqlite3.OperationalError:
        row = None   # no run yet
    finally:
        db.close()
    return "kpar.dev/run=%s" % row[0] if row else None


def wait_for(what, fn, timeout=120, step=0.5):
    end = time.time() + timeout
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(step)
    raise Failure("timed out waiting for " + what)


def pods(c, label, phase=None):
    items = c.json("get", "pods", "-l", label)["items"]
    if phase:
        items = [p for p in items if p["status"].get("phase") == phase]
    return items


def coordinator_pids(proj):
    """The `kpar run` processes working in proj."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                argv = f.read().split(b"\0")
            cwd = os.readlink("/proc/%s/cwd" % pid)
        except OSError:
            continue
        if len(argv) >= 2 and argv[0].endswith(b"kpar") and argv[1] == b"run" and cwd == proj:
            out.append(int(pid))
    return out
