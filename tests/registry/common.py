"""common.py - shared bits of the registry tests: paths and running regtool.

The runner and the checks are tests/lib/testlib.py's.
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOP_SRC = os.environ.get("KPAR_TOP_SRCDIR") or os.path.dirname(os.path.dirname(HERE))
TOP_BUILD = os.environ.get("KPAR_TOP_BUILDDIR") or TOP_SRC
sys.path.insert(0, os.path.join(TOP_SRC, "tests", "lib"))
sys.path.insert(0, HERE)
REGTOOL = os.path.join(TOP_BUILD, "tests", "registry", "regtool")

from testlib import (Failure, Skip, check, check_in, check_not_in, need, run,  # noqa: E402,F401
                     run_tests as _run_tests, tmpdir as _tmpdir)


def tmpdir():
    return _tmpdir("kpar-regtest-")


class Result:
    def __init__(self, p):
        self.rc, self.out, self.err = p.returncode, p.stdout, p.stderr
        self.kv = {}
        for line in self.out.split("\n"):
            for word in line.split():
                if "=" in word:
                    k, v = word.split("=", 1)
                    self.kv[k] = v

    def __getitem__(self, k):
        return self.kv[k]

    def __repr__(self):
        return "rc=%d\nstdout:\n%s\nstderr:\n%s" % (self.rc, self.out, self.err[-4000:])


def regtool(*args, ok=True, env=None, extra_env=None):
    """Runs regtool with fast retries; checks the exit status unless ok is None."""
    e = dict(os.environ if env is None else env)
    e.update(extra_env or {})
    argv = [REGTOOL]
    if not any(a == "--retry-ms" for a in args):
        argv += ["--retry-ms", "50"]
    p = subprocess.run(argv + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, env=e, timeout=300)
    r = Result(p)
    if ok is True and r.rc != 0:
        raise Failure("regtool %s failed:\n%r" % (" ".join(args), r))
    if ok is False and r.rc == 0:
        raise Failure("regtool %s should have failed:\n%r" % (" ".join(args), r))
    return r


def run_tests(tests):
    _run_tests(tests, needs=(REGTOOL,))
