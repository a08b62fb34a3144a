"""am_verdicts.py - per-test verdicts of an automake `make check` and of
kpar's JUnit report, in automake's words, for comparing them.

    am_verdicts.py trs BUILDDIR 'TEST_EXTENSIONS' [--exeext=EXT] TEST...
        one "test<TAB>RESULT" line per test, its .trs file's
        :global-test-result: (the log name automake gives it: $(EXEEXT)
        is stripped, then a registered extension is replaced by .trs,
        else .trs is appended); a test with no .trs is NONE
    am_verdicts.py junit JUNIT.xml
        the same from kpar's junit.xml (the status property of each
        test's own testcase, classname kpar)
    am_verdicts.py subs BUILDDIR 'TEST_EXTENSIONS' [--exeext=EXT] TEST...
        each result of a test whose driver gave several (or named ones),
        "test<TAB>position<TAB>RESULT<TAB>description": the RESULTs
        from its .trs, the descriptions from the driver's "RESULT: test
        details" lines in its .log (details without the TAP number, a
        leading "- " and the " # SKIP/TODO" directive)
    am_verdicts.py junitsubs JUNIT.xml
        the same from kpar's junit.xml: a test's subtest testcases (a
        failure says FAIL, or XPASS or ERROR when its message starts so;
        a skip SKIP, or XFAIL for a TODO)

A .trs without a :global-test-result: line (no automake driver leaves
it out) is summed up from its results: ERROR, else FAIL, else XPASS,
else PASS, XFAIL or SKIP when all are.
"""
import os
import re
import sys
import xml.etree.ElementTree as ET

KPAR_WORDS = {'pass': 'PASS', 'fail': 'FAIL', 'skip': 'SKIP', 'error': 'ERROR',
              'xfail': 'XFAIL', 'xpass': 'XPASS', 'flaky': 'FLAKY'}


def trs_name(test, exts, exeext=''):
    # automake: $(TESTS:=.log), then @EXEEXT@.log=.log, then each extension
    if exeext and test.endswith(exeext):
        test = test[:-len(exeext)]
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


def trs_results(path):
    res = []
    try:
        with open(path, encoding='utf-8', errors='replace') as f:
            for line in f:
                if line.startswith(':test-result:'):
                    words = line.split(':', 2)[2].split()
                    if words:
                        res.append(words[0])
    except FileNotFoundError:
        pass
    return res


WORDS = ('PASS', 'FAIL', 'SKIP', 'XFAIL', 'XPASS', 'ERROR')


def description(details):
    d = re.sub(r' # (SKIP|TODO)( .*)?$', '', re.sub(r'^[0-9]+', '', details)).strip()
    return re.sub(r'^- *', '', d)


def from_subs(builddir, exts, exeext, tests):
    rows = []
    for t in tests:
        trs = os.path.join(builddir, trs_name(t, exts, exeext))
        words = trs_results(trs)
        named = []
        with open(trs[:-4] + '.log', encoding='utf-8', errors='replace') as f:
            for line in f:
                line = line.rstrip('\n')
                for w in WORDS:
                    head = w + ': ' + t
                    if line == head or line.startswith(head + ' '):
                        named.append((w, line[len(head) + 1:]))
        if [w for w, _ in named] != words:
            raise SystemExit('%s: its .log results %s are not its .trs results %s'
                             % (t, [w for w, _ in named], words))
        if len(named) == 1 and (not named[0][1] or named[0][1].startswith('- ')):
            continue   # the script's own result: no subtests
        for i, (w, d) in enumerate(named):
            rows.append('%s\t%d\t%s\t%s' % (t, i + 1, w, description(d)))
    return rows


def from_junitsubs(path):
    rows = {}
    for tc in ET.parse(path).getroot().iter('testcase'):
        if tc.get('classname') == 'kpar':
            continue
        fl, sk = tc.find('failure'), tc.find('skipped')
        if fl is not None:
            msg = fl.get('message') or ''
            w = 'XPASS' if msg.startswith('XPASS') else 'ERROR' if msg.startswith('ERROR') else 'FAIL'
        elif sk is not None:
            w = 'XFAIL' if (sk.get('message') or '').startswith('TODO') else 'SKIP'
        else:
            w = 'PASS'
        t = tc.get('classname')
        rows.setdefault(t, []).append((w, re.sub(r'^[0-9]+( - )?', '', tc.get('name'))))
    return ['%s\t%d\t%s\t%s' % (t, i + 1, w, d)
            for t in sorted(rows) for i, (w, d) in enumerate(rows[t])]


def from_trs(builddir, exts, tests, exeext=''):
    out = {}
    for t in tests:
        path = os.path.join(builddir, trs_name(t, exts, exeext))
        res, glob = set(), None
        try:
            with open(path, encoding='utf-8', errors='replace') as f:
                for line in f:
                    if line.startswith(':test-result:'):
                        words = line.split(':', 2)[2].split()
                        if words:
                            res.add(words[0])
                    elif line.startswith(':global-test-result:'):
                        words = line.split(':', 2)[2].split()
                        if words:
                            glob = words[0]
        except FileNotFoundError:
            pass
        out[t] = glob or summed(res)
    return out


def from_junit(path):
    out = {}
    for tc in ET.parse(path).getroot().iter('testcase'):
        if tc.get('classname') != 'kpar':
            continue   # a subtest (junitsubs)
        st = None
        for p in tc.iter('property'):
            if p.get('name') == 'status':
                st = p.get('value')
        out[tc.get('name')] = KPAR_WORDS.get(st, str(st))
    return out


def main(argv):
    exeext = ''
    if len(argv) >= 5 and argv[4].startswith('--exeext='):
        exeext = argv[4][len('--exeext='):]
        argv = argv[:4] + argv[5:]
    if len(argv) >= 3 and argv[1] == 'subs':
        print('\n'.join(sorted(from_subs(argv[2], argv[3].split(), exeext, argv[4:]))))
        return 0
    if len(argv) == 3 and argv[1] == 'junitsubs':
        print('\n'.join(sorted(from_junitsubs(argv[2]))))
        return 0
    if len(argv) >= 3 and argv[1] == 'trs':
        v = from_trs(argv[2], argv[3].split(), argv[4:], exeext)
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
