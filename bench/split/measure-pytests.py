#!/usr/bin/env python3
"""measure-pytests.py - records per-test durations of CPython's own test suite.

Each test module is run as its own process (`python3 -m test NAME`), as kpar
runs each test of a Make-driven suite, J at a time, and its wall time,
outcome and the size of its source (a package: all its .py files) are
written as TSV:  id  seconds  size  status
The id is the source path relative to the stdlib directory, e.g.
test/test_os.py or test/test_asyncio/test_events.py, which is what a
Make-driven suite's test ids look like.

usage: measure-pytests.py OUT.tsv [-j 2] [--timeout 900] [--seed 1] [--exclude A,B]
--exclude skips tests by name (e.g. ones that hung until the timeout in an
earlier run: a timeout is not a duration).
"""
import argparse
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import test as testpkg


def source_of(name, testdir):
    parts = name.split(".")
    if parts[0] != "test":
        parts = ["test"] + parts
    base = os.path.join(os.path.dirname(testdir), *parts)
    if os.path.isdir(base):
        size = 0
        for d, _, files in os.walk(base):
            size += sum(os.path.getsize(os.path.join(d, f)) for f in files if f.endswith(".py"))
        return "/".join(parts) + "/", size
    return "/".join(parts) + ".py", os.path.getsize(base + ".py")


def run_one(name, timeout, cwd):
    t0 = time.monotonic()
    try:
        p = subprocess.run([sys.executable, "-m", "test", name], cwd=cwd, timeout=timeout,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           errors="replace")
    except subprocess.TimeoutExpired:
        return time.monotonic() - t0, "error"
    dt = time.monotonic() - t0
    if p.returncode == 0 and re.search(r"^1 test skipped", p.stdout, re.M):
        return dt, "skip"
    if p.returncode == 0:
        return dt, "pass"
    return dt, "fail"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("-j", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--exclude", default="")
    a = ap.parse_args()
    testdir = os.path.dirname(testpkg.__file__)
    names = subprocess.run([sys.executable, "-m", "test", "--list-tests"], check=True,
                           stdout=subprocess.PIPE, text=True).stdout.split()
    skip = set(x for x in a.exclude.split(",") if x)
    names = [n for n in names if n not in skip]
    # A shuffled order, so which tests share the machine differs between runs.
    random.Random(a.seed).shuffle(names)
    rows = {}
    lock = threading.Lock()
    done = [0]
    with tempfile.TemporaryDirectory(prefix="kpar-measure-") as tmp:
        def job(name):
            cwd = tempfile.mkdtemp(dir=tmp)
            dt, status = run_one(name, a.timeout, cwd)
            tid, size = source_of(name, testdir)
            with lock:
                rows[tid] = (dt, size, status)
                done[0] += 1
                print(f"[{done[0]}/{len(names)}] {tid} {status} {dt:.2f}s", file=sys.stderr, flush=True)
        with ThreadPoolExecutor(max_workers=a.j) as ex:
            list(ex.map(job, names))
    with open(a.out + ".tmp", "w") as f:
        for tid in sorted(rows):
            dt, size, status = rows[tid]
            f.write(f"{tid}\t{dt:.3f}\t{size}\t{status}\n")
    os.replace(a.out + ".tmp", a.out)


if __name__ == "__main__":
    main()
