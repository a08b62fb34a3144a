"""am_verdicts.py - per-test verdicts of an automake `make check` and of
kpar's JUnit report, in automake's words, for comparing them.

    am_verdicts.py trs BUILDDIR 'TEST_EXTENSIONS' TEST...
        one "test<TAB>RESULT" line per test, from its .trs file
        (the log name automake gives it: a registered extension is
        replaced by .trs, else .trs is appended); a test with no .trs
        is NONE
    am_verdicts.py junit JUNIT.xml
        the same from kpar's junit.xml (the status property)

A .trs with several results (a TAP driver) is summed up as automake's
test-suite.log does: ERROR, else FAIL, else XPASS, else PASS, XFAIL or
SKIP when all are.
"""
import os
import sys
import xml.etree.ElementTree as ET

KPAR_WORDS = {'pass': 'PASS', 'fail': 'FAIL', 'skip': 'SKIP', 'error': 'ERROR',
              'xfail': 'XFAIL', 'xpass': 'XPASS', 'flaky': 'FLAKY'}


def trs_name(test, exts):
    for e in exts:
        if e and test.endswith(e):
            return test[:-len(e)] + '.trs'
    return test + '.trs'


def summed(results):
    for worst in ('ERROR', 'FAIL', 'XPASS'):
        if worst in results:
            return worst
    if not results:
        return 'NONE'
    if results <= {'SKIP'}:
        return 'SKIP'
    if 'PASS' in results:
        return 'PASS'
    return sorted(results)[0]


def from_trs(builddir, exts, tests):
    out = {}
    for t in tests:
        path = os.path.join(builddir, trs_name(t, exts))
        res = set()
        try:
            with open(path, encoding='utf-8', errors='replace') as f:
                for line in f:
                    if line.startswith(':test-result:'):
                        words = line.split(':', 2)[2].split()
                        if words:
                            res.add(words[0])
        except FileNotFoundError:
            pass
        out[t] = summed(res)
    return out


def from_junit(path):
    out = {}
    for tc in ET.parse(path).getroot().iter('testcase'):
        st = None
        for p in tc.iter('property'):
            if p.get('name') == 'status':
                st = p.get('value')
        out[tc.get('name')] = KPAR_WORDS.get(st, str(st))
    return out


def main(argv):
    if len(argv) >= 3 and argv[1] == 'trs':
        v = from_trs(argv[2], argv[3].split(), argv[4:])
    elif len(argv) == 3 and argv[1] == 'junit':
        v = from_junit(argv[2])
    else:
        sys.stderr.write(__doc__)
        return 2
    for t in sorted(v):
        print('%s\t%s' % (t, v[t]))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
