#!/bin/sh
# gen-suite.sh - turns a recorded suite into a suite of sleeping tests.
#
# usage: gen-suite.sh DATA.tsv DIR SCALE [RUN]
#   DATA.tsv  id, seconds (run 1), size, seconds (run 2), status (bench/split/data/)
#   DIR       where to write DIR/tests/<name>.sh and DIR/tests.list
#   SCALE     factor applied to the durations (0.03 turns ~50 min into ~90 s)
#   RUN       1 (default) or 2: which recorded run's durations to sleep;
#             noise: run 1 x lognormal noise (sigma 0.2, seeded), a steady
#             machine's next run, as bench_split's "steady" second run
#
# Each test sleeps its scaled duration, so many workers fit on 2 cores, and
# exits 77 (skip) if it was skipped when recorded, else 0.  The script is
# padded with comment lines to the recorded source size, so the size signal
# kpar uses on a first run is the real suite's.  Regenerating with RUN=2
# rewrites only the scripts, as a code change between two runs would.
set -eu
[ $# -ge 3 ] || { echo "usage: gen-suite.sh DATA.tsv DIR SCALE [RUN]" >&2; exit 2; }
data=$1 dir=$2 scale=$3 run=${4:-1}
[ -r "$data" ] || { echo "gen-suite.sh: cannot read '$data'" >&2; exit 2; }
case $run in 1|2|noise) ;; *) echo "gen-suite.sh: RUN must be 1, 2 or noise, not '$run'" >&2; exit 2;; esac
mkdir -p "$dir/tests"
LC_ALL=C awk -F '\t' -v dir="$dir" -v scale="$scale" -v run="$run" '
BEGIN { srand(20261127) }
/^#/ || NF < 3 { next }
{
	id = $1
	# Ids become file names: refuse anything but a plain relative path.
	if (id !~ /^[A-Za-z0-9_.\/-]+$/ || id ~ /(^|\/)\.\.(\/|$)/ || id ~ /^\//) {
		printf "gen-suite.sh: %s:%d: unusable test id \"%s\"\n", FILENAME, NR, id > "/dev/stderr"
		exit 2
	}
	secs = (run == 2 && NF >= 4 && $4 != "") ? $4 : $2
	if (run == "noise") {
		u1 = rand(); u2 = rand()
		if (u1 < 1e-12) u1 = 1e-12
		secs *= exp(0.2 * sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2))
	}
	name = id
	sub(/\/$/, "", name)
	sub(/\.py$/, "", name)
	path = dir "/tests/" name ".sh"
	d = path
	sub(/\/[^\/]*$/, "", d)
	if (!(d in made)) { system("mkdir -p \"" d "\""); made[d] = 1 }
	head = sprintf("#!/bin/sh\n# replayed %s: %.3f s, run %s\nsleep %.4f\nexit %d\n",
		       id, secs, run, secs * scale, ($5 == "skip") ? 77 : 0)
	printf "%s", head > path
	pad = $3 - length(head)
	line = "# ..............................................................................."
	ll = length(line) + 1
	while (pad > ll) { print line > path; pad -= ll }
	if (pad > 1) printf "#%s\n", substr(line, 2, pad - 2) > path
	else if (pad == 1) printf "\n" > path
	close(path)
	system("chmod +x \"" path "\"")
	print "tests/" name ".sh" > (dir "/tests.list.tmp")
}
END { close(dir "/tests.list.tmp") }
' "$data"
sort "$dir/tests.list.tmp" > "$dir/tests.list"
rm -f "$dir/tests.list.tmp"
echo "gen-suite.sh: $(wc -l < "$dir/tests.list") tests in $dir (run $run, scale $scale)"
