#!/bin/sh
# kpar's TAP reader against Perl's own TAP::Parser (what prove runs) on the
# same generated inputs: the seeds of tests/fuzz/tap_seeds.h mutated with a
# fixed random seed (the same inputs every run), printable ASCII only, each
# read by both; every verdict (pass, fail, skip, as prove decides it, a
# bail-out failing) and every count of test lines must agree.  Skipped (77)
# without perl's TAP::Parser.  Left out, as the known differences tap.h
# names: inputs naming TAP version 14 and later (prove 3.44 refuses them,
# kpar reads 14), and YAML blocks whose content TAP::Parser's YAMLish
# reader rejects (it fails the script there and reads no further; kpar
# keeps a block as text and reads on).
set -u
: "${KPAR_TOP_SRCDIR:?run through make check}" "${KPAR_TOP_BUILDDIR:?}"
perl -MTAP::Parser -e 1 2>/dev/null || { echo "SKIP: perl's TAP::Parser is not installed"; exit 77; }
T=$(mktemp -d "${TMPDIR:-/tmp}/kpar-tapdiff.XXXXXX")
trap 'rm -rf "$T"' EXIT
N=${KPAR_TAP_DIFF_INPUTS:-3000}   # KPAR_TAP_DIFF_SEED picks other inputs

python3 - "$KPAR_TOP_SRCDIR/tests/fuzz/tap_seeds.h" "$T" "$N" "${KPAR_TAP_DIFF_SEED:-20261129}" <<'PY' || exit 99
import ast, random, re, sys
src = open(sys.argv[1]).read()
body = src[src.index('{') + 1:src.index('};')]
seeds = [ast.literal_eval(l.strip().rstrip(',')) for l in body.splitlines()
         if l.strip().startswith('"')]
tokens = ['ok', 'not ok', ' ', '1..', '0', '1', '2', '3', '#', ' # SKIP ', ' # TODO ', ' # skip',
          '\n', '\r', '\\', '\\#', '  ---\n', '  ...\n', 'Bail out!', 'TAP version 13\n',
          'pragma +strict\n', '    ', '-', '\t', 'todo 2', 'Skipped: x']
rng = random.Random(int(sys.argv[4]))
def mutate(s):
    for _ in range(rng.randint(1, 6)):
        at = rng.randint(0, len(s))
        op = rng.randrange(5)
        if op == 0 and s:
            i = rng.randrange(len(s))
            s = s[:i] + chr(rng.randint(32, 126)) + s[i + 1:]
        elif op in (1, 2):
            s = s[:at] + rng.choice(tokens) + s[at:]
        elif op == 3:
            s = s[:at] + s[at + rng.randint(0, len(s) - at):]
        else:
            o = rng.choice(seeds)
            a = rng.randint(0, len(o))
            s = s[:at] + o[a:a + rng.randint(0, len(o) - a)] + s[at:]
    return s
n = 0
for k in range(int(sys.argv[3])):
    s = mutate(rng.choice(seeds)) if k >= len(seeds) else seeds[k]
    if any(ord(c) >= 127 or (ord(c) < 32 and c not in '\n\r\t') for c in s):
        continue
    if re.search(r'(?im)^TAP\s+version\s+0*(1[4-9]|[2-9]\d|\d{3,})\s*$', s):
        continue
    open('%s/in%05d' % (sys.argv[2], k), 'w', newline='').write(s)
    n += 1
print('# %d inputs' % n)
PY

cd "$T" || exit 99
perl -MTAP::Parser -MTAP::Parser::Iterator::Array -e '
for my $f (sort @ARGV) {
    open(my $fh, "<:raw", $f) or die "$f: $!";
    # the lines as prove reads them from a pipe (readline, chomp)
    my @lines = map { chomp; $_ } <$fh>;
    my $p = TAP::Parser->new({ iterator => TAP::Parser::Iterator::Array->new(\@lines) });
    my $bail = 0;
    while (my $r = $p->next) { if ($r->is_bailout) { $bail = 1; last } }
    my $v = ($bail || $p->has_problems) ? "fail" : $p->skip_all ? "skip" : "pass";
    my $run = $bail ? "-" : $p->tests_run;
    # YAML its YAMLish reader rejects: it fails the script and stops
    # reading there; kpar keeps a block as text (tap.h), so these differ
    my $yaml = grep { /YAMLish/ } $p->parse_errors;
    print $yaml ? "$f yaml\n" : "$f $v $run\n";
}' in* 2>/dev/null > perl.all || { echo "TAP::Parser failed"; exit 99; }
grep -v ' yaml$' perl.all > perl.out
nyaml=$(grep -c ' yaml$' perl.all)
"$KPAR_TOP_BUILDDIR/tests/tap/tap_verdict" $(awk '{print $1}' perl.out) > kpar.out || exit 99
# after a bail-out prove stops reading: the count is not compared
awk '{ if ($3 == "-") $3 = "*"; print }' perl.out > perl.cmp
awk 'NR == FNR { if ($3 == "*") bail[$1] = 1; next } { if ($1 in bail) $3 = "*"; print }' \
	perl.cmp kpar.out > kpar.cmp
total=$(wc -l < perl.cmp)
if ! diff perl.cmp kpar.cmp > diff.out; then
	head -n 40 diff.out
	for f in $(grep '^>' diff.out | awk '{print $2}' | head -n 5); do
		echo "--- $f:"; od -c "$f" | head -n 12
	done
	echo "FAIL: kpar and TAP::Parser disagree on $(grep -c '^>' diff.out) of $total inputs (< perl, > kpar)"
	exit 1
fi
echo "# kpar and TAP::Parser agree on all $total inputs ($nyaml more with YAML TAP::Parser's reader rejects were left out)"
exit 0
