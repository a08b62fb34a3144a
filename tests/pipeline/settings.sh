#!/bin/sh
# kpar.mk leaves a makefile's default goal alone; `make k8s-settings` shows
# the makefile's own settings; the README's settings tables, `kpar state
# --settings` and `kpar run --help` agree.
. "${KPAR_TOP_SRCDIR}/tests/lib/common.sh"

P=$T/g
mkdir -p "$P"
cd "$P" || exit 99

# `include kpar.mk` above the first target: a bare make still makes that target.
printf 'include $(KPAR_MK)\nfirst:\n\t@echo first target made\nsecond:\n\t@echo second\n' > Makefile
kmake >out 2>&1 || { cat out; fail "bare make with kpar.mk included first"; }
expect_grep '^first target made$' out "a bare make after include kpar.mk"
# ... also with an artifact named through the cache above the first target
printf 'hello\n' > data.txt
sha=$(sha256sum data.txt | cut -d' ' -f1)
printf 'include $(KPAR_MK)\nDATA := $(kpar-fetch file://%s/data.txt,%s)\nfirst: $(DATA)\n\t@echo first target made\n' \
	"$P" "$sha" > Makefile
kmake >out 2>&1 || { cat out; fail "bare make with a kpar-fetch above the first target"; }
expect_grep '^first target made$' out "a bare make after \$(kpar-fetch ...)"
# ... and a goal the makefile chose before the include is kept
printf '.DEFAULT_GOAL := second\ninclude $(KPAR_MK)\nfirst:\n\t@echo first\nsecond:\n\t@echo second target made\n' > Makefile
kmake >out 2>&1 || { cat out; fail "bare make with .DEFAULT_GOAL set before the include"; }
expect_grep '^second target made$' out ".DEFAULT_GOAL set before the include"

# make k8s-settings: the makefile's values and the command line's, over
# kpar's defaults; RESUME under the name make's command line uses.
printf 'KPAR_WORKERS = 3\nKPAR_IMAGE_COMPRESSION = zstd\nKPAR_CACHE_MAX_SIZE = 5G\ninclude $(KPAR_MK)\n' > Makefile
kmake k8s-settings KPAR_RETRIES=2 RESUME=1 >out 2>&1 || { cat out; fail "make k8s-settings"; }
for want in KPAR_WORKERS=3 KPAR_IMAGE_COMPRESSION=zstd KPAR_CACHE_MAX_SIZE=5G KPAR_RETRIES=2 \
	RESUME=1 KPAR_STATE_DIR=.kpar "KPAR_ROOT=$P" KPAR_CACHE_REVALIDATE=always; do
	grep -qxF -- "$want" out || { cat out; fail "make k8s-settings lacks $want"; }
done
expect_no_grep '^KPAR_RESUME=' out

# The README's defaults are kpar's: every row of its settings tables whose
# default is a literal value, against `kpar state --settings` from a shell
# with no KPAR_* set.
env -i PATH="$PATH" HOME=/home/nobody XDG_CACHE_HOME=/xdg "$KPAR_BIN" state --settings >settings \
	|| fail "kpar state --settings"
"$KPAR_BIN" run --help >help || fail "kpar run --help"
python3 - "$KPAR_TOP_SRCDIR/README.md" settings help <<'PY' || fail "the README, kpar state --settings and kpar run --help disagree"
import re, sys
readme, settings, help_text = open(sys.argv[1]).read(), open(sys.argv[2]).read(), open(sys.argv[3]).read()
shown = dict(l.split('=', 1) for l in settings.splitlines())
bad, checked = [], 0
for line in readme.splitlines():
    cells = [c.strip() for c in line.strip().strip('|').split('|')]
    if len(cells) != 3 or not cells[0].startswith('`'):
        continue
    names = re.findall(r'`([A-Z_]+)`', cells[0])
    if not names or not all(n == 'RESUME' or n.startswith('KPAR_') for n in names):
        continue
    values = re.findall(r'`([^`]*)`', cells[1])
    literal = re.fullmatch(r'(`[^`$]*`(, )?)*', cells[1]) is not None
    if cells[1] == '':
        values = [''] * len(names)
    elif not literal or len(values) != len(names):
        continue      # described, not a value: "CPUs", "8 per worker", "$(CURDIR)"
    for n, v in zip(names, values):
        if n not in shown:
            continue  # a Make-only setting (KPAR_TEST_DEPS, KPAR_IMAGE_DEPS, ...)
        checked += 1
        if shown[n] != v:
            bad.append('%s: README %r, kpar state --settings %r' % (n, v, shown[n]))
        # every setting kpar reads is an option of `kpar run`
        opt = '--' + (n[5:] if n.startswith('KPAR_') else n).lower().replace('_', '-')
        if not re.search(re.escape(opt) + r'\b', help_text):
            bad.append('%s: kpar run --help does not list %s' % (n, opt))
if shown.get('KPAR_CACHE_DIR') != '/xdg/kpar':
    bad.append('KPAR_CACHE_DIR: README $XDG_CACHE_HOME/kpar, kpar state --settings %r'
               % shown.get('KPAR_CACHE_DIR'))
if 'RESUME' not in shown or 'KPAR_RESUME' in shown:
    bad.append('kpar state --settings does not show RESUME as the README names it')
print('%d README defaults checked' % checked)
assert checked > 30 and not bad, '\n'.join(bad)
PY
exit 0
