"""testlib.py - the little test runner the Python test scripts share.

Each script lists its test functions and calls run_tests(); a test can be
run alone by naming it on the command line.  A test raises Skip or Failure
(or fails any other way); run_tests prints "ok NAME (s)", "skip NAME: why" or
"FAIL NAME: why" and exits as automake's harness wants: 0 pass, 1 fail,
77 all skipped, 99 hard error.  Standard library only.
"""
import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback


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


def tmpdir(prefix="kpar-test-"):
    """A fresh directory, removed when the script exits (KPAR_KEEP_TEST_DIRS=1 keeps it)."""
    d = tempfile.mkdtemp(prefix=prefix)
    _DIRS.append(d)
    return d


@atexit.register
def _cleanup():
    if not os.environ.get("KPAR_KEEP_TEST_DIRS"):
        for d in _DIRS:
            shutil.rmtree(d, ignore_errors=True)


def run(argv, ok=True, timeout=600, **kw):
    """Runs argv and captures its output as text.  ok=True: it must succeed;
    ok=False: it must fail; ok=None: either."""
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       errors="replace", timeout=timeout, **kw)
    if ok is True and p.returncode != 0:
        raise Failure("%s failed (%d):\n%s\n%s" % (" ".join(argv), p.returncode, p.stdout,
                                                   p.stderr[-6000:]))
    if ok is False and p.returncode == 0:
        raise Failure("%s should have failed:\n%s\n%s" % (" ".join(argv), p.stdout, p.stderr))
    return p


def run_tests(tests, needs=()):
    """Runs tests (or those named in argv); needs: built files without which
    nothing can run (a hard error, not a skip)."""
    for path in needs:
        if not os.path.exists(path):
            print("not built: %s" % path)
            sys.exit(99)
    wanted = sys.argv[1:]
    failed = skipped = ran = 0
    for t in tests:
        if wanted and t.__name__ not in wanted:
            continue
        ran += 1
        t0 = time.time()
        try:
            t()
            print("ok %s (%.1f s)" % (t.__name__, time.time() - t0))
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
    print("%d passed, %d failed, %d skipped" % (ran - failed - skipped, failed, skipped))
    if failed:
        sys.exit(1)
    if ran == 0 or skipped == ran:
        sys.exit(77)
    sys.exit(0)
