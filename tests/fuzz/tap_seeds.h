/* tap_seeds.h - the seed corpus of the TAP fuzz tests: one input for each
 * construct the reader knows, and the malformed shapes around them. */
#ifndef KPAR_TAP_SEEDS_H
#define KPAR_TAP_SEEDS_H

static const char *const kpar_tap_seeds[] = {
	"1..3\nok 1\nok 2 - two\nok 3 three\n",
	"1..0 # SKIP no network\n",
	"1..0 # Skipped: prerequisite\n",
	"1..0\n",
	"TAP version 13\n1..2 # SKIP why\nok 1\nok 2\n",
	"1..5\nok 1\nnot ok 2 # TODO later\nok 3 # todo x\nok 4 # skip y\nnot ok 5 # SKIP z\n",
	"1..2 todo 2\nok 1\nnot ok 2\n",
	"1..3\nok 1\nBail out! db down\nok 2\n",
	"ok 1\nok 2\n1..2\n",
	"ok 1\n1..2\nok 2\n1..2\n",
	"1..2\nok 2\nok 1\nok\n",
	"TAP version 13\n1..2\nok 1\nnot ok 2 - bad\n  ---\n  message: 'boom'\n  data:\n    - 1\n  ...\n# after\n",
	"TAP version 13\n1..1\nnot ok 1\n  ---\n  a: b\nok 2\n",
	"TAP version 14\n1..2\n# Subtest: a\n    1..2\n    ok 1\n    not ok 2\nnot ok 1 - a\nok 2 - b \\# c \\\\\n",
	"TAP version 13\npragma +strict, -foo\n1..1\nok 1\nnoise\n",
	"1..1\r\nok 1 - x\r\n# c\r\n",
	"TAP version 12\n1..1\nTAP version 13\nok 99999999999999999999999 x\n",
	"okay\nok1\nnot  ok\nNOT OK\nok: x\n    Bail out!\n1..1",
};

#define KPAR_TAP_NSEEDS (sizeof kpar_tap_seeds / sizeof kpar_tap_seeds[0])

#endif
