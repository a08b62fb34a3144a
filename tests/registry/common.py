"""common.py - shared bits of the registry tests: paths, running regtool, a tiny runner.

Each test script lists its test functions; run_tests() runs them (or those
named on the command line), prints "ok NAME" / "FAIL NAME: why", and exits
the way automake's harness expects: 0 pass, 1 fail, 77 skip, 99 hard error.
"""
import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
TOP_SRC = os.environ.get("KPAR_TOP_SRCDIR") or os.path.dirname(os.path.dirname(HERE))
TOP_BUILD = os.environ.get("KPAR_TOP_BUILDDIR") or TOP_SRC
sys.path.insert(0, os.path.join(TOP_SRC, "tests", "lib"))
sys.path.insert(0, HERE)
REGTOOL = os.path.join(TOP_BUILD, "tests", "registry", "regtool")


class Skip(Exception):
    pass


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def check_in(needle, haystack, what="output"):
    if needle not in haystack:
        raise Failure("%r not in %s:\n%s" % (needle, what, haystack))


def check_not_in(needle, haystack, what="output"):
    if needle in haystack:
        raise Failure("%r must not be in %s:\n%s" % (needle, what, haystack))


def need(*tools):
    for t in tools:
        if not shutil.which(t):
            raise Skip("%s not installed" % t)


_DIRS = []


def tmpdir():
    """A fresh directory, removed when the test script exits (KPAR_KEEP_TEST_DIRS=1 keeps it)."""
    d = tempfile.mkdtemp(prefix="kpar-regtest-")
    _DIRS.append(d)
    return d


@atexit.register
def _cleanup():
    if not os.environ.get("KPAR_KEEP_TEST_DIRS"):
        for d in _DIRS:
            shutil.rmtree(d, ignore_errors=True)


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


def run(argv, ok=True, **kw):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=300, **kw)
    if ok and p.returncode != 0:
        raise Failure("%s failed (%d):\n%s\n%s" % (" ".join(argv), p.returncode, p.stdout,
                                                   p.stderr))
    return p


def run_tests(tests):
    if not os.path.exists(REGTOOL):
        print("regtool not built at %s" % REGTOOL)
        sys.exit(99)
    wanted = sys.argv[1:]
    failed = skipped = ran = 0
    for t in tests:
        if wanted and t.__name__ not in wanted:
            continue
        ran += 1
        try:
            t()
            print("ok %s" % t.__name__)
        except Skip as e:
            skipped += 1
            print("skip %s: %s" % (t.__name__, e))
        except Failure as e:
            failed += 1
            print("FAIL %s: %s" % (t.__name__, e))
        except Exception:
            failed += 1
            print("FAIL %s (error):\n%s" % (t.__name__, traceback.format_exc()))
        sys.stdout.flush()
    print("%d tests, %d failed, %d skipped" % (ran, failed, skipped))
    if failed:
        sys.exit(1)
    if ran == 0 or skipped == ran:
        sys.exit(77)
    sys.exit(0)
