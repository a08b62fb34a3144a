#!/bin/sh
# report/index.html in a real browser (Debian's headless Chromium): the page
# of a run with failures, errors, skips, a flaky test, a bucket whose
# worker died once and a bucket lost for good renders with no console
# message, shows the totals junit.xml counts, shows a hostile test id as
# text, filters by status and name, and draws a non-blank screenshot; a
# generated page of 10,000 tests renders too.
. "${KPAR_TOP_SRCDIR}/tests/lib/common.sh"

CHROMIUM=
for c in chromium chromium-browser; do
	command -v "$c" >/dev/null 2>&1 && { CHROMIUM=$c; break; }
done
[ -n "$CHROMIUM" ] || skip "no chromium (apt-get install chromium)"
PNG="$KPAR_TOP_SRCDIR/tests/lib/png.py"

# browse OUT ERR URL [chromium options...]: the DOM after the page's script
# ran, with the browser's own log (console messages are "CONSOLE" lines).
# --no-sandbox: the tests may run as root, where Chromium's sandbox will not.
browse() {
	out=$1 err=$2 url=$3
	shift 3
	timeout 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu --no-first-run \
		--user-data-dir="$T/chromium-profile" --enable-logging=stderr --v=0 \
		--virtual-time-budget=10000 "$@" "$url" >"$out" 2>"$err"
}

# The console check must be able to fail: a page that logs is caught.
printf '<!DOCTYPE html><p id=x>x</p><script>console.error("caught")</script>\n' > "$T/noisy.html"
browse "$T/noisy.dom" "$T/noisy.err" "file://$T/noisy.html" --dump-dom || fail "chromium did not run"
grep -q 'CONSOLE.*caught' "$T/noisy.err" || { cat "$T/noisy.err"; skip "chromium does not log console messages here"; }

P=$T/h
mkdir -p "$P"
cd "$P" || exit 99
HOSTILE='</script><img src=x onerror="document.title=1"> & "q" '"'s'"' ünï <!--'
cat > names.txt <<NAMES
pass-a
pass-b
pass-c
fail-one
err-one
skip-one
flaky-one
dies-once
dies-always
$HOSTILE
NAMES
cat > run-one <<'SH'
#!/bin/sh
# A test per name: what it does is in its name.
worker() {  # the pid of the kpar worker running this test
	p=$$
	while [ "$p" -gt 1 ]; do
		tr '\0' ' ' < /proc/$p/cmdline 2>/dev/null | grep -Eq ' worker (--bucket-file|--serve)' && { echo "$p"; return; }
		p=$(awk '{print $4}' /proc/$p/stat)
	done
}
case "$1" in
pass-*) echo "fine"; exit 0 ;;
fail-one) echo "expected 2, got 3"; exit 1 ;;
err-one) echo "cannot set up"; exit 99 ;;
skip-one) echo "probing"; echo "SKIP: needs network"; exit 77 ;;
flaky-one) [ -e flaky.mark ] && exit 0; : > flaky.mark; echo "first try fails"; exit 1 ;;
dies-once) [ -e dies.mark ] || { : > dies.mark; kill -9 "$(worker)"; sleep 5; }; exit 0 ;;
dies-always) kill -9 "$(worker)"; sleep 5; exit 0 ;;
*) echo "output with </script><script>document.title=2</script> in it"; exit 1 ;;
esac
SH
chmod +x run-one
cat > Makefile <<'MK'
KPAR_LIST_CMD = cat names.txt
KPAR_RUN_CMD = ./run-one
include $(KPAR_MK)
MK
kmake k8s-test KPAR_WORKERS=3 KPAR_BUCKETS=10 KPAR_RETRIES=1 KPAR_WORKER_RETRIES=1 >out 2>&1 &&
	{ cat out; fail "a failing suite passed"; }
cat out
R=.kpar/report
[ -s $R/index.html ] || fail "no report/index.html beside junit.xml"
expect_no_grep 'https?://' $R/index.html "the page refers to the network"

# The run has what the page must mark: a bucket retried, a bucket lost.
python3 - $R/index.html <<'PY' || fail "the page's data lacks the retried or the lost bucket"
import json, re, sys
page = open(sys.argv[1], encoding='utf-8').read()
m = re.search(r'<script type="application/json" id="kpar-data">(.*?)</script>', page, re.S)
d = json.loads(m.group(1))
buckets = d['buckets']
assert any(b['a'] > 1 and not b.get('lost') for b in buckets), buckets
assert any(b.get('lost') for b in buckets), buckets
PY

browse dom err "file://$P/$R/index.html" --dump-dom || { cat err; fail "chromium failed on the report"; }
grep 'CONSOLE' err && fail "the report logged to the console (an error, a refused request)"
python3 - dom $R/junit.xml "$HOSTILE" <<'PY' || fail "the page disagrees with junit.xml"
import sys, xml.etree.ElementTree as ET
from html.parser import HTMLParser

class Dom(HTMLParser):
    """text by element id and by class, and every tag seen"""
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.by_id, self.by_class, self.tags = [], {}, {}, []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag in ('meta', 'input', 'br', 'link', 'img', 'hr'):
            return
        self.stack.append((a.get('id'), (a.get('class') or '').split(), []))
    def handle_endtag(self, tag):
        if tag in ('meta', 'input', 'br', 'link', 'img', 'hr') or not self.stack:
            return
        id_, classes, text = self.stack.pop()
        s = ''.join(text)
        if id_:
            self.by_id[id_] = s
        for c in classes:
            self.by_class.setdefault(c, []).append(s)
        if self.stack:
            self.stack[-1][2].append(s)
    def handle_data(self, data):
        if self.stack:
            self.stack[-1][2].append(data)

dom = Dom()
dom.feed(open(sys.argv[1], encoding='utf-8').read())
hostile = sys.argv[3]
root = ET.parse(sys.argv[2]).getroot()
cases = list(root.iter('testcase'))
def has(tc, tag): return tc.find(tag) is not None
failed = [tc.get('name') for tc in cases if has(tc, 'failure')]
errors = [tc.get('name') for tc in cases if has(tc, 'error')]
skipped = [tc for tc in cases if has(tc, 'skipped')]
flaky = [tc for tc in cases if any(p.get('name') == 'status' and p.get('value') == 'flaky' for p in tc.iter('property'))]
want = {'tests': len(cases), 'failed': len(failed), 'errors': len(errors), 'skipped': len(skipped),
        'flaky': len(flaky), 'passed': len(cases) - len(failed) - len(errors) - len(skipped)}
got = {k: int(dom.by_id['total-' + k]) for k in want}
print('junit.xml:', want)
print('page:     ', got)
assert got == want
assert dom.by_id['verdict'] == 'FAIL', dom.by_id['verdict']
# failures and errors first, each named as text, the hostile id among them
assert sorted(dom.by_class['fail-id']) == sorted(failed + errors), dom.by_class['fail-id']
assert hostile in dom.by_class['fail-id'], dom.by_class['fail-id']
assert any('output with </script><script>document.title=2</script> in it\n' in o for o in dom.by_class['out']), \
    dom.by_class['out']
# the skip's reason, as junit.xml has it
reason = [s.find('skipped').get('message') for s in skipped]
assert reason == ['SKIP: needs network'], reason
assert 'skip-one' in dom.by_id['skipped'] and 'SKIP: needs network' in dom.by_id['skipped'], dom.by_id['skipped']
# nothing from the data became markup
assert not [t for t, a in dom.tags if t == 'img' or 'onerror' in a], [t for t in dom.tags if t[0] == 'img']
assert [t for t, a in dom.tags if t == 'script'] == ['script', 'script']
assert dom.by_id['tests-count'] == '%d of %d tests match' % (len(cases), len(cases)), dom.by_id['tests-count']
# each failure links its log, and every link opens a file that is there,
# the hostile id's too (its href percent-encoded)
import os, urllib.parse
links = [a['href'] for t, a in dom.tags if t == 'a' and a.get('class') == 'log']
assert len(links) == len(failed + errors), links
report = os.path.dirname(sys.argv[2])
for h in links:
    assert not h.startswith('/') and '..' not in h.split('/'), h
    path = os.path.join(report, urllib.parse.unquote(h))
    assert os.path.isfile(path), (h, path)
print('ok: totals, failures, skip reason, hostile id as text, logs linked')
PY

# Filters, through the address: by status, then by name.
browse dom2 err2 "file://$P/$R/index.html#st=fail,error" --dump-dom || fail "chromium failed on the report"
grep 'CONSOLE' err2 && fail "the report logged to the console"
n=$(grep -o 'id="tests-count">[^<]*' dom2 | sed 's/.*>//')
nbad=$(junit_tests $R/junit.xml | grep -cE '^(failure|error)	')
expect_eq "$n" "$nbad of 10 tests match" "tests listed with #st=fail,error"
browse dom3 err3 "file://$P/$R/index.html#q=%C3%BCn%C3%AF" --dump-dom || fail "chromium failed on the report"
grep 'CONSOLE' err3 && fail "the report logged to the console"
expect_grep 'id="tests-count">1 of 10 tests match' dom3 "the name filter"
grep -qF '&lt;/script&gt;&lt;img src=x onerror="document.title=1"&gt;' dom3 || fail "the hostile id is not shown as text"

# A page of 10,000 tests on 64 workers, with long failure outputs.
KPAR_HTML_GEN_DIR=$T/big "$KPAR_TOP_BUILDDIR/tests/unit/test_html" big >big.out 2>&1 ||
	{ cat big.out; fail "could not generate the 10,000-test page"; }

cat > noisy-csp.html <<'EOF'
<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'"></head>
<body><img src="http://example.invalid/x.png"><script>console.error("caught"); undefinedFn();</script></body></html>
EOF

# Used as a user would (over the DevTools protocol on a pipe): status and
# name filters, a row's output, the timeline's tooltip and click; and not a
# single console message, exception or refused request on the way.
python3 - "$CHROMIUM" "$T/cdp-profile" "file://$P/$R/index.html" "file://$T/big/index.html" $R/junit.xml \
	"$HOSTILE" "$KPAR_TOP_SRCDIR/tests/lib" "$KPAR_TOP_BUILDDIR/tests/unit/test_html" "$T/big" <<'PY' ||
import os, subprocess, sys, xml.etree.ElementTree as ET
chromium, profile, url, big_url, junit, hostile, lib, gen, big_dir = sys.argv[1:]
sys.path.insert(0, lib)
from cdp import Browser

cases = list(ET.parse(junit).getroot().iter('testcase'))
n = len(cases)
passed_plain = sum(1 for tc in cases if not any(tc.find(t) is not None for t in ('failure', 'error', 'skipped'))
                   and not any(p.get('value') == 'flaky' for p in tc.iter('property')))

with Browser(chromium, profile, 1280, 900) as b:
    # the listening must be able to fail: a console message, an exception
    # and a request the policy refused are each heard
    b.open(url.rsplit('/.kpar/', 1)[0] + '/noisy-csp.html')
    b.eval('1')
    heard = '\n'.join(b.problems)
    assert 'console.error: caught' in heard and 'exception:' in heard and 'Content Security Policy' in heard, heard
    b.problems = []
    b.open(url)
    q = lambda js: b.eval(js)
    count = lambda: q('document.getElementById("tests-count").textContent')
    assert count() == '%d of %d tests match' % (n, n), count()
    # status: passing tests off
    q('document.getElementById("f-pass").click()')
    assert count() == '%d of %d tests match' % (n - passed_plain, n), (count(), passed_plain)
    assert q('location.hash') == '#st=fail,xpass,error,flaky,skip,xfail', q('location.hash')
    q('document.getElementById("f-pass").click()')
    # name: a substring of the hostile id, typed
    q('var s = document.getElementById("f-name"); s.focus()')
    b.call('Input.insertText', session=True, text='ünï')
    assert count() == '1 of %d tests match' % n, count()
    cells = q('Array.from(document.querySelectorAll("#tests-body tr.row td")).map(function (t) { return t.textContent; })')
    assert hostile in cells, cells
    # the only match is opened with its output, as text
    out = q('document.querySelector("#tests-body tr.detail pre").textContent')
    assert 'output with </script><script>document.title=2</script> in it' in out, out
    q('var s = document.getElementById("f-name"); s.value = ""; s.dispatchEvent(new Event("input"))')
    assert count() == '%d of %d tests match' % (n, n), count()
    # the timeline: hover until a test's tooltip shows, then click it
    q('document.querySelector("canvas").scrollIntoView()')
    r = q('(function () { var r = document.querySelector("canvas").getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })()')
    found = None
    for y in range(int(r[1]) + 30, int(r[1] + r[3]) - 2, 6):
        for x in range(int(r[0]) + 150, int(r[0] + r[2]) - 8, 3):
            b.mouse('mouseMoved', x, y)
            tip = q('var t = document.querySelector(".tip"); t.style.display === "block" ? t.textContent : ""')
            if tip and '\n' in tip and 'worker local-w' in tip:
                found = (x, y, tip)
                break
        if found:
            break
    assert found, 'no tooltip anywhere on the timeline'
    print('tooltip:', repr(found[2]))
    name = found[2].split('\n')[0]
    b.mouse('mousePressed', found[0], found[1])
    b.mouse('mouseReleased', found[0], found[1])
    assert q('document.getElementById("f-name").value') == name, q('document.getElementById("f-name").value')
    assert name in q('Array.from(document.querySelectorAll("#tests-body tr.row td")).map(function (t) { return t.textContent; })')
    assert q('document.title').startswith('kpar run '), q('document.title')
    assert not b.problems, b.problems

    # 10,000 tests: pages of 100, sorting, a filter that matches nothing
    b.open(big_url)
    assert count() == '10000 of 10000 tests match', count()
    first = q('document.querySelector("#tests-body tr.row td:nth-child(2)").textContent')
    q('Array.from(document.querySelectorAll("button")).filter(function (x) { return x.textContent.indexOf("next") === 0; }).pop().click()')
    assert q('document.querySelectorAll("#tests-body tr.row").length') == 100
    assert q('document.querySelector("#tests-body tr.row td:nth-child(2)").textContent') != first
    q('document.querySelectorAll("#tests th")[2].click()')  # seconds, ascending
    secs = q('Array.from(document.querySelectorAll("#tests-body tr.row td:nth-child(3)")).map(function (t) { return parseFloat(t.textContent); })')
    assert secs == sorted(secs) and len(secs) == 100, secs
    q('var s = document.getElementById("f-name"); s.value = "no such test"; s.dispatchEvent(new Event("input"))')
    assert count() == '0 of 10000 tests match', count()
    assert not b.problems, b.problems
print('ok: filters, output, tooltip, click, pages, sorting; no console message')
PY
	fail "the report does not work as a user uses it"

# A screenshot: a PNG of the window's size with something drawn on it.
browse shot.out shot.err "file://$P/$R/index.html" --window-size=1280,2000 --screenshot="$T/report.png" \
	|| { cat shot.err; fail "chromium could not take a screenshot"; }
grep 'CONSOLE' shot.err && fail "the report logged to the console"
info=$(python3 "$PNG" info "$T/report.png") || fail "the screenshot is not a PNG"
note "screenshot: $info (width height colors ink)"
set -- $info
expect_eq "$1x$2" "1280x2000" "screenshot size"
[ "$3" -ge 20 ] || fail "the screenshot has only $3 colors: blank"
python3 -c "import sys; sys.exit(not 0.02 < float(sys.argv[1]) < 0.9)" "$4" || fail "the screenshot is blank ($4 inked)"
[ -n "${KPAR_HTML_SCREENSHOT:-}" ] && cp "$T/report.png" "$KPAR_HTML_SCREENSHOT"

# The 10,000 tests: no console message, every test counted, the list
# paginated.
browse bigdom bigerr "file://$T/big/index.html" --dump-dom || { cat bigerr; fail "chromium failed on 10,000 tests"; }
grep 'CONSOLE' bigerr && fail "the 10,000-test page logged to the console"
expect_grep 'id="total-tests">10000<' bigdom "10,000 tests counted"
expect_grep 'id="tests-count">10000 of 10000 tests match' bigdom
rows=$(grep -o '<tr class="row">' bigdom | wc -l)
expect_eq "$rows" 100 "rows of the first page of the test list"
browse bigshot.out bigshot.err "file://$T/big/index.html" --window-size=1280,1000 --screenshot="$T/big.png" ||
	fail "no screenshot of 10,000 tests"
grep 'CONSOLE' bigshot.err && fail "the 10,000-test page logged to the console"
set -- $(python3 "$PNG" info "$T/big.png")
expect_eq "$1x$2" "1280x1000" "screenshot size"
exit 0
