#!/bin/sh
# junit.sh - the JUnit report of real worker records, checked with an
# independent parser (python's xml.etree): well-formed whatever the tests
# printed, every test exactly once with its bucket/worker/attempt, counts
# consistent, flaky tests visible, ids and text escaped faithfully.
. "$KPAR_TOP_SRCDIR/tests/lib/common.sh"

PY=${PYTHON:-python3}
command -v "$PY" >/dev/null 2>&1 || skip "no python3"
P=$T/project
mkdir -p "$P"
cd "$P" || fail "cd"

mk() { printf '#!/bin/sh\n%s\n' "$2" > "$1" && chmod +x "$1"; }
mk 'a <b> & "c"' 'printf "ok \\033[1mbold\\033[0m\\n"'
mk binary.sh 'printf "bin\\000ary \\001\\002\\377\\376 end <&>\\n"; exit 1'
mk crash.sh 'kill -KILL $$'
mk skip.sh 'exit 77'
mk flaky.sh 'n=$(cat "$KPAR_WORKDIR/n" 2>/dev/null || echo 0); echo $((n+1)) > "$KPAR_WORKDIR/n"; echo "try $n"; [ $n -ge 1 ]'
mk "$(printf 'caf\303\251')" 'echo "unicode fine"'

"$KPAR_BIN" worker --bucket 1 --name w-one --workdir "$T/w1" --retries 1 \
	'a <b> & "c"' binary.sh flaky.sh > "$T/r1" || fail "worker 1"
"$KPAR_BIN" worker --bucket 2 --attempt 2 --name w-two --workdir "$T/w2" \
	crash.sh skip.sh "$(printf 'caf\303\251')" > "$T/r2" || fail "worker 2"
"$KPAR_BIN" worker --decode --junit "$T/junit.xml" "$T/r1" "$T/r2" ||
	fail "cannot write the report"

"$PY" - "$T/junit.xml" <<'EOF' || fail "report check failed"
import sys
import xml.etree.ElementTree as ET

root = ET.parse(sys.argv[1]).getroot()
assert root.tag == "testsuites", root.tag
suites = root.findall("testsuite")
assert [s.get("name") for s in suites] == ["bucket-1", "bucket-2"], suites

cases = {}
for s in suites:
    tcs = s.findall("testcase")
    # Attributes agree with the elements.
    assert int(s.get("tests")) == len(tcs)
    assert int(s.get("failures")) == sum(1 for c in tcs if c.find("failure") is not None)
    assert int(s.get("errors")) == sum(1 for c in tcs if c.find("error") is not None)
    assert int(s.get("skipped")) == sum(1 for c in tcs if c.find("skipped") is not None)
    for c in tcs:
        assert c.get("classname") == "kpar"
        float(c.get("time"))
        props = {p.get("name"): p.get("value") for p in c.find("properties")}
        assert c.get("name") not in cases, "duplicate " + c.get("name")
        cases[c.get("name")] = (c, props)

assert int(root.get("tests")) == len(cases) == 6, (root.get("tests"), sorted(cases))
cafe = "caf\u00e9"
assert sorted(cases) == sorted(['a <b> & "c"', "binary.sh", "flaky.sh", "crash.sh",
                                "skip.sh", cafe]), sorted(cases)

c, p = cases['a <b> & "c"']
assert p["bucket"] == "1" and p["worker"] == "w-one" and p["attempt"] == "1", p
assert p["status"] == "pass" and c.find("failure") is None
# The escape character is not allowed in XML 1.0: dropped, the rest kept.
assert c.find("system-out").text == "ok [1mbold[0m\n", repr(c.find("system-out").text)

c, p = cases["binary.sh"]
assert p["status"] == "fail" and c.find("failure") is not None
assert c.find("failure").get("message") == "exit status 1"
out = c.find("system-out").text
# Retried once; the last attempt's output is kept, NUL dropped.
assert out.startswith("[kpar: attempt 2 of 2]\nbinary ") and out.endswith(" end <&>\n"), repr(out)
assert "\ufffd\ufffd" in out, repr(out)

c, p = cases["flaky.sh"]
assert p["status"] == "flaky" and p["attempts"] == "2" and p["failed_attempts"] == "1", p
assert c.find("failure") is None and c.find("error") is None
assert "try 0" in c.find("system-out").text and "try 1" in c.find("system-out").text

c, p = cases["crash.sh"]
assert p["bucket"] == "2" and p["worker"] == "w-two" and p["attempt"] == "2", p
assert p["status"] == "error" and p["exit_code"] == "-1"
assert c.find("error") is not None
assert "SIGKILL" in c.find("system-out").text

c, p = cases["skip.sh"]
assert p["status"] == "skip" and c.find("skipped") is not None

c, p = cases[cafe]
assert p["status"] == "pass" and c.find("system-out").text == "unicode fine\n"
print("report ok:", len(cases), "tests")
EOF
exit 0
