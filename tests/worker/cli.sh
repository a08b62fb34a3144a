#!/bin/sh
# cli.sh - `kpar worker` end to end: bucket sources, options and their
# environment defaults, the record on stdout (and nothing else), exit
# statuses, odd test ids, interrupts, and the wire format read back both
# by `kpar worker --decode` and independently (base64 + zstd + sha256).
. "$KPAR_TOP_SRCDIR/tests/lib/common.sh"

PY=${PYTHON:-python3}
P=$T/project
mkdir -p "$P/buckets" "$T/out"
cd "$P" || fail "cd"

mk() { printf '#!/bin/sh\n%s\n' "$2" > "$1" && chmod +x "$1"; }
mk pass.sh 'echo "pass says hi"'
mk fail.sh 'echo "fail says no" >&2; exit 1'
mk skip.sh 'exit 77'
mk slow.sh 'echo $$ > "$KPAR_WORKDIR/slow.pid"; exec sleep 300'

# json FILE EXPR: evaluates a Python expression over the decoded record r.
json() {
	"$KPAR_BIN" worker --decode "$1" > "$T/out/json" || fail "cannot decode $1"
	"$PY" -c 'import json,sys
r = json.loads(open(sys.argv[1]).readline())
t = {x["id"]: x for x in r["tests"]}
print(eval(sys.argv[2]))' "$T/out/json" "$2"
}

# --- a bucket file, its number taken from the name --------------------------
printf 'pass.sh\n\nfail.sh\nskip.sh\n\n' > buckets/test-group-7
"$KPAR_BIN" worker --bucket-file buckets/test-group-7 --workdir "$T/w" \
	--plan sha256:1234 --name tester > "$T/out/rec" 2> "$T/out/err" ||
	fail "worker exited $? on a bucket with a failing test"
expect_eq "$(head -n 1 "$T/out/rec" | cut -d' ' -f1-3)" "KPAR-RECORD 1 zstd" "first line"
expect_eq "$(tail -n 1 "$T/out/rec")" "KPAR-RECORD-END" "last line"
sed '1d;$d' "$T/out/rec" > "$T/out/body"
expect_no_grep '[^A-Za-z0-9+/=]' "$T/out/body" "stdout holds only the record"
[ -s "$T/out/err" ] && fail "stderr not empty without --progress"
expect_eq "$(json "$T/out/rec" 'r["bucket"], r["plan"], r["worker"], len(r["tests"])')" \
	"(7, 'sha256:1234', 'tester', 3)" "record header fields"
expect_eq "$(json "$T/out/rec" '[x["id"] + ":" + x["status"] for x in r["tests"]]')" \
	"['pass.sh:pass', 'fail.sh:fail', 'skip.sh:skip']" "statuses"
expect_eq "$(json "$T/out/rec" 't["fail.sh"]["output"]')" "fail says no" "failure output"

# --- independent decoding of the wire format --------------------------------
if command -v zstd >/dev/null 2>&1 && command -v base64 >/dev/null 2>&1; then
	set -- $(head -n 1 "$T/out/rec")
	sed '1d;$d' "$T/out/rec" | base64 -d > "$T/out/z" || fail "body is not base64"
	expect_eq "$(sha256sum < "$T/out/z" | cut -d' ' -f1)" "$5" "header checksum"
	zstd -q -d -c < "$T/out/z" > "$T/out/raw.json" || fail "body is not zstd"
	expect_eq "$(wc -c < "$T/out/raw.json" | tr -d ' ')" "$4" "header raw length"
	"$PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["kpar_record"] == 1' \
		"$T/out/raw.json" || fail "payload is not the documented JSON"
else
	note "zstd or base64 missing: independent decoding skipped"
fi

# --- --output writes the file atomically, stdout stays empty ----------------
"$KPAR_BIN" worker --bucket-file buckets/test-group-7 --workdir "$T/w" \
	--output "$T/out/rec2" > "$T/out/stdout" || fail "--output run failed"
[ -s "$T/out/stdout" ] && fail "stdout not empty with --output"
expect_eq "$(json "$T/out/rec2" 'len(r["tests"])')" 3 "--output record"
ls "$T/out" | grep -q tmp && fail "temporary file left behind"

# --- --buckets-dir with the indexed Job's JOB_COMPLETION_INDEX ---------------
printf 'pass.sh\n' > buckets/test-group-2
JOB_COMPLETION_INDEX=1 "$KPAR_BIN" worker --buckets-dir buckets --workdir "$T/w" \
	> "$T/out/rec3" || fail "--buckets-dir run failed"
expect_eq "$(json "$T/out/rec3" 'r["bucket"], [x["id"] for x in r["tests"]]')" \
	"(2, ['pass.sh'])" "bucket from JOB_COMPLETION_INDEX"
"$KPAR_BIN" worker --buckets-dir buckets --bucket 7 --attempt 3 --workdir "$T/w" \
	> "$T/out/rec4" || fail "--bucket run failed"
expect_eq "$(json "$T/out/rec4" 'r["bucket"], r["attempt"], len(r["tests"])')" "(7, 3, 3)" \
	"--bucket wins"

# --- odd ids on the command line, through a run command ---------------------
"$KPAR_BIN" worker --run-cmd "printf '<%s>'" --workdir "$T/w" -- \
	'sp ace' "qu'ote" 'dq"uote' 'dol$HOME' 'se;mi' 'back\slash' "$(printf 'caf\303\251')" \
	'$(touch pwned)' > "$T/out/rec5" || fail "odd ids run failed"
[ -e pwned ] && fail "an id reached a shell unquoted"
expect_eq "$(json "$T/out/rec5" 'all(x["output"] == "<" + x["id"] + ">" for x in r["tests"]), len(r["tests"])')" \
	"(True, 8)" "odd ids reach the command as one argument each"

# --- environment defaults, and flags winning over them ----------------------
KPAR_RUN_CMD='echo env-cmd' KPAR_RETRIES=2 "$KPAR_BIN" worker --workdir "$T/w" x \
	> "$T/out/rec6" || fail "env defaults run failed"
expect_eq "$(json "$T/out/rec6" 't["x"]["output"]')" "env-cmd x" "KPAR_RUN_CMD"
KPAR_RUN_CMD='echo env-cmd' "$KPAR_BIN" worker --run-cmd 'echo flag-cmd' --workdir "$T/w" x \
	> "$T/out/rec7" || fail "flag run failed"
expect_eq "$(json "$T/out/rec7" 't["x"]["output"]')" "flag-cmd x" "--run-cmd wins"
mk flaky.sh 'n=$(cat "$KPAR_WORKDIR/n" 2>/dev/null || echo 0); echo $((n+1)) > "$KPAR_WORKDIR/n"; [ $n -ge 1 ]'
KPAR_RETRIES=1 "$KPAR_BIN" worker --workdir "$T/wf" flaky.sh > "$T/out/rec8" || fail "retry run"
expect_eq "$(json "$T/out/rec8" 't["flaky.sh"]["status"], t["flaky.sh"]["attempts"]')" \
	"('flaky', 2)" "KPAR_RETRIES"
KPAR_TEST_TIMEOUT=0.5 "$KPAR_BIN" worker --workdir "$T/w" slow.sh > "$T/out/rec9" ||
	fail "timeout run"
expect_eq "$(json "$T/out/rec9" 't["slow.sh"]["status"]')" "error" "KPAR_TEST_TIMEOUT"
KPAR_RUN_MODE=batch "$KPAR_BIN" worker --run-cmd 'echo batch:' --workdir "$T/w" a b \
	> "$T/out/rec10" || fail "batch run"
expect_eq "$(json "$T/out/rec10" 't["a"]["output"], t["a"]["status"], t["b"]["status"]')" \
	"('batch: a b\n', 'pass', 'pass')" "KPAR_RUN_MODE=batch"

# --- errors: exit 2, a message naming the input, nothing on stdout ----------
expect_error() {
	what=$1; pattern=$2; shift 2
	"$@" > "$T/out/eout" 2> "$T/out/eerr"
	st=$?
	expect_eq "$st" 2 "exit status for $what"
	[ -s "$T/out/eout" ] && fail "stdout not empty for $what"
	expect_grep "$pattern" "$T/out/eerr" "message for $what"
}
expect_error "missing bucket file" "kpar worker: bucket file: cannot open 'nope/test-group-1'" \
	"$KPAR_BIN" worker --bucket-file nope/test-group-1
expect_error "bad mode" "--mode 'fast' is neither" "$KPAR_BIN" worker --mode fast x
expect_error "bad env mode" "KPAR_RUN_MODE: 'x' is not 'each' or 'batch'" env KPAR_RUN_MODE=x "$KPAR_BIN" worker y
expect_error "bad timeout" "--timeout '-1'" "$KPAR_BIN" worker --timeout -1 x
expect_error "bad retries" "KPAR_RETRIES: 'lots' is not a whole number" env KPAR_RETRIES=lots "$KPAR_BIN" worker x
expect_error "no tests" "no tests" "$KPAR_BIN" worker
expect_error "dir without index" "needs --bucket N" env -u JOB_COMPLETION_INDEX \
	"$KPAR_BIN" worker --buckets-dir buckets
expect_error "batch without command" "batch mode needs a run command" \
	env -u KPAR_RUN_CMD "$KPAR_BIN" worker --mode batch x
expect_error "missing root" "test root '/nonexistent' is not a directory" \
	"$KPAR_BIN" worker --root /nonexistent x
expect_error "unknown option" "unknown option '--frobnicate'" "$KPAR_BIN" worker --frobnicate

# A test that cannot run is a result, not a worker error.
"$KPAR_BIN" worker --workdir "$T/w" missing.sh > "$T/out/rec11" || fail "missing test"
expect_eq "$(json "$T/out/rec11" 't["missing.sh"]["status"], t["missing.sh"]["exit_code"]')" \
	"('error', 127)" "missing test"

# --- damaged records are refused --------------------------------------------
sed '3s/^\(.\)/\1\1/' "$T/out/rec" > "$T/out/bad1"     # one more byte on a line
expect_error "damaged record" "result record at line 1" "$KPAR_BIN" worker --decode "$T/out/bad1"
head -n 3 "$T/out/rec" > "$T/out/bad2"
expect_error "truncated record" "truncated" "$KPAR_BIN" worker --decode "$T/out/bad2"
echo "just a log" > "$T/out/bad3"
expect_error "no record" "no result record" "$KPAR_BIN" worker --decode "$T/out/bad3"
{ echo "log before"; cat "$T/out/rec"; echo "log after"; } |
	"$KPAR_BIN" worker --decode > "$T/out/json2" || fail "record in log noise not found"

# --- SIGINT: the running test is stopped, exit 130, no record ---------------
printf 'pass.sh\nslow.sh\npass.sh\n' > buckets/test-group-9
rm -rf "$T/wi"
"$KPAR_BIN" worker --bucket-file buckets/test-group-9 --workdir "$T/wi" \
	> "$T/out/int.out" 2> "$T/out/int.err" &
wpid=$!
KPAR_TEST_PIDS=$wpid
i=0
while [ ! -s "$T/wi/slow.pid" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
[ -s "$T/wi/slow.pid" ] || fail "slow test never started"
kill -INT $wpid
wait $wpid
expect_eq "$?" 130 "exit status after SIGINT"
[ -s "$T/out/int.out" ] && fail "a record was printed for an interrupted bucket"
expect_grep "interrupted" "$T/out/int.err"
# The test's process (pid reused by exec sleep) is gone, not orphaned.
spid=$(cat "$T/wi/slow.pid")
i=0
while [ -e /proc/$spid ] && ! grep -q '^[0-9]* ([^)]*) [ZX]' /proc/$spid/stat 2>/dev/null &&
	[ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
if [ -e /proc/$spid ] && ! grep -q '^[0-9]* ([^)]*) [ZX]' /proc/$spid/stat 2>/dev/null; then
	fail "the interrupted test (pid $spid) is still running"
fi
KPAR_TEST_PIDS=

# --- --serve: many buckets, one process (the local backend's workers) -------
# Requests "BUCKET ATTEMPT N" + N ids; each answer is "BUCKET LENGTH" and
# the record, which decodes like a one-shot worker's.
printf '3 1 2\npass.sh\nfail.sh\n5 2 1\nskip.sh\n' |
	"$KPAR_BIN" worker --serve --workdir "$T/ws" --plan sha256:5678 --name server \
	> "$T/out/serve" 2> "$T/out/serve.err" || fail "worker --serve exited $?"
"$PY" - "$T/out/serve" "$T/out" <<'PY' || fail "--serve answers are not framed records"
import sys
data = open(sys.argv[1], "rb").read()
n = 0
while data:
    head, _, data = data.partition(b"\n")
    bucket, length = head.split()
    rec, data = data[:int(length)], data[int(length):]
    assert rec.startswith(b"KPAR-RECORD "), rec[:40]
    open("%s/serve-%s.rec" % (sys.argv[2], bucket.decode()), "wb").write(rec)
    n += 1
assert n == 2, n
PY
expect_eq "$(json "$T/out/serve-3.rec" 'r["bucket"], r["attempt"], r["plan"], r["worker"], [x["id"] + ":" + x["status"] for x in r["tests"]]')" \
	"(3, 1, 'sha256:5678', 'server', ['pass.sh:pass', 'fail.sh:fail'])" "first served bucket"
expect_eq "$(json "$T/out/serve-5.rec" 'r["bucket"], r["attempt"], [x["id"] + ":" + x["status"] for x in r["tests"]]')" \
	"(5, 2, ['skip.sh:skip'])" "second served bucket"
# A malformed request or a short list of ids: exit 2 naming the problem,
# after the buckets before it were answered.
printf '4 1 1\npass.sh\nnonsense\n' | "$KPAR_BIN" worker --serve --workdir "$T/ws" \
	> "$T/out/serve2" 2> "$T/out/serve2.err"
expect_eq "$?" 2 "exit status after a bad request"
expect_grep "bad request 'nonsense" "$T/out/serve2.err"
expect_grep "^4 " "$T/out/serve2"
printf '6 1 3\npass.sh\n' | "$KPAR_BIN" worker --serve --workdir "$T/ws" > /dev/null 2> "$T/out/serve3.err"
expect_eq "$?" 2 "exit status after a short bucket"
expect_grep "bucket 6: 1 of 3 tests" "$T/out/serve3.err"

echo "ok"
exit 0
