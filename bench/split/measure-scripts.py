#!/usr/bin/env python3
"""measure-scripts.py - records per-test durations of a suite of test scripts.

For suites whose tests are one script each (git's t/t*.sh, a Perl
distribution's t/**/*.t): each script runs as its own process, J at a time
in a shuffled (seeded) order, as kpar runs each test of a Make-driven suite,
and its wall time, outcome and the size of its file are written as TSV:
    id  seconds  size  status
The id is the script's path relative to --dir (t/t0000-basic.sh).
status: pass (exit 0), skip (exit 0 and TAP "1..0 # SKIP" or a git
"# passed all 0 test(s)"-style empty plan), fail otherwise (a timeout too).

usage:
  measure-scripts.py OUT.tsv --dir D --glob 't/t[0-9]*.sh' --cmd 'sh {} --root={tmp}'
                     [-j 2] [--seed 1] [--timeout 900] [--budget SECONDS] [--only PREV.tsv]
  measure-scripts.py --merge RUN1.tsv RUN2.tsv OUT.tsv

--cmd is a shell command run in --dir; {} is the script's path, {tmp} a fresh
temporary directory for this test.  --budget stops handing out tests after
that many seconds of wall time (those running finish): with the shuffled
order, the tests reached are a random sample of the suite, for suites too
slow to record whole.  --only restricts the run to the ids of an earlier
run's TSV (the second pass of a sampled suite).  --merge writes the rows
present in both runs as the data format of bench/split/data (id, seconds
run 1, size, seconds run 2, status of run 1).
"""
import argparse
import glob
import os
import random
import re
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

SKIP_RE = re.compile(r"^1\.\.0\b.*#\s*skip", re.M | re.I)


def run_one(cmd, cwd, timeout):
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, shell=True, cwd=cwd, timeout=timeout, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           errors="replace")
    except subprocess.TimeoutExpired:
        return time.monotonic() - t0, "fail"
    dt = time.monotonic() - t0
    if p.returncode != 0:
        return dt, "fail"
    if SKIP_RE.search(p.stdout):
        return dt, "skip"
    return dt, "pass"


def read_tsv(path):
    rows = {}
    with open(path) as f:
        for line in f:
            f_ = line.rstrip("\n").split("\t")
            if len(f_) >= 4:
                rows[f_[0]] = f_
    return rows


def merge(a, b, out):
    r1, r2 = read_tsv(a), read_tsv(b)
    with open(out + ".tmp", "w") as f:
        for tid in sorted(r1):
            if tid in r2:
                _, s1, size, st = r1[tid][:4]
                f.write(f"{tid}\t{s1}\t{size}\t{r2[tid][1]}\t{st}\n")
    os.replace(out + ".tmp", out)


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "--merge":
        merge(sys.argv[2], sys.argv[3], sys.argv[4])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--dir", required=True)
    ap.add_argument("--glob", required=True)
    ap.add_argument("--cmd", required=True)
    ap.add_argument("-j", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--budget", type=float, default=0)
    ap.add_argument("--only")
    a = ap.parse_args()
    d = os.path.abspath(a.dir)
    ids = sorted(os.path.relpath(p, d) for p in glob.glob(os.path.join(d, a.glob), recursive=True))
    if a.only:
        keep = read_tsv(a.only)
        ids = [i for i in ids if i in keep]
    if not ids:
        sys.exit(f"measure-scripts: no test matches {a.glob!r} under {d}")
    random.Random(a.seed).shuffle(ids)
    rows = {}
    lock = threading.Lock()
    t_start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kpar-measure-") as tmp:
        def job(tid):
            if a.budget and time.monotonic() - t_start > a.budget:
                return
            work = tempfile.mkdtemp(dir=tmp)
            cmd = a.cmd.replace("{tmp}", shlex.quote(work)).replace("{}", shlex.quote(tid))
            dt, status = run_one(cmd, d, a.timeout)
            subprocess.run(["rm", "-rf", work])
            with lock:
                rows[tid] = (dt, os.path.getsize(os.path.join(d, tid)), status)
                print(f"[{len(rows)}/{len(ids)} {time.monotonic() - t_start:.0f}s] {tid} "
                      f"{status} {dt:.2f}s", file=sys.stderr, flush=True)
        with ThreadPoolExecutor(max_workers=a.j) as ex:
            list(ex.map(job, ids))
    with open(a.out + ".tmp", "w") as f:
        for tid in sorted(rows):
            dt, size, status = rows[tid]
            f.write(f"{tid}\t{dt:.3f}\t{size}\t{status}\n")
    os.replace(a.out + ".tmp", a.out)


if __name__ == "__main__":
    main()
