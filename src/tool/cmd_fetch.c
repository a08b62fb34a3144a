/* cmd_fetch.c - `kpar fetch`: an artifact's path in the cache, downloading
 * it first when needed.  Recipes run it (the Make function only names the
 * path), so the download happens in a child process, never inside make. */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "cache/cache.h"
#include "base/conf.h"
#include "base/curl_load.h"
#include "base/error.h"
#include "tool/cmds.h"

static void usage(FILE *out)
{
	fprintf(out,
"usage: kpar fetch [options] URL\n"
"\n"
"Prints the path of URL's content in the artifact cache, downloading it\n"
"first when it is not there.  With --sha256 the artifact is pinned: the\n"
"download is verified (a mismatch stores nothing) and never repeated.\n"
"Without, it is a snapshot, revalidated with ETag/If-Modified-Since.\n"
"\n"
"  --sha256 HEX          expected SHA-256 (64 hex digits, 'sha256:' optional)\n"
"  --name NAME           also expose the file under this name (a link)\n"
"  --mirror URL          another URL of the same artifact, tried after URL\n"
"                        (repeatable, in order)\n"
"  --mirrors 'BASE...'   mirror bases tried before URL for pinned artifacts:\n"
"                        BASE/<file name>, or BASE with {sha256} replaced\n"
"                        (default $KPAR_CACHE_MIRRORS)\n"
"  --cache-dir DIR       the cache (default $KPAR_CACHE_DIR, else\n"
"                        $XDG_CACHE_HOME/kpar, else ~/.cache/kpar)\n"
"  --revalidate POLICY   snapshots: always | never | SECONDS between checks\n"
"                        (default $KPAR_CACHE_REVALIDATE, else always)\n"
"  --retries N           extra attempts per URL on transient errors (2)\n"
"  --used-list FILE      add the artifact's key to this build's used-list\n"
"                        (default $KPAR_CACHE_USED_LIST)\n"
"  --lookup              never download: exit 1 when not cached\n"
"  --quiet               print nothing on success\n"
"  -v, --verbose         say what happens on stderr\n"
"\n"
"Exit status: 0 done, 1 not cached (--lookup), 2 error.\n");
}

int kpar_cmd_fetch(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "sha256", required_argument, NULL, 's' },
		{ "name", required_argument, NULL, 'n' },
		{ "mirror", required_argument, NULL, 'm' },
		{ "mirrors", required_argument, NULL, 'M' },
		{ "cache-dir", required_argument, NULL, 'd' },
		{ "revalidate", required_argument, NULL, 'r' },
		{ "retries", required_argument, NULL, 'R' },
		{ "used-list", required_argument, NULL, 'u' },
		{ "lookup", no_argument, NULL, 'l' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct kpar_cache_opts opts;
	struct kpar_conf conf;
	struct kpar_strv alternates = KPAR_STRV_INIT;
	struct kpar_cache_req req;
	struct kpar_cache_result res;
	struct kpar_cache *c = NULL;
	const char *sha256 = NULL, *name = NULL;
	int quiet = 0, lookup = 0, ch, rc;
	char *end;

	memset(&req, 0, sizeof req);
	memset(&res, 0, sizeof res);
	kpar_cache_opts_init(&opts);
	/* the KPAR_CACHE_* settings, then the options below over them */
	rc = kpar_conf_load(&conf);
	if (rc == 0)
		rc = kpar_cache_opts_conf(&opts, &conf);
	kpar_curl_set_library(conf.libcurl);
	kpar_conf_free(&conf);
	if (rc < 0)
		goto fail;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "qvh", longopts, NULL)) != -1) {
		switch (ch) {
		case 's': sha256 = optarg; break;
		case 'n': name = optarg; break;
		case 'm': kpar_strv_push(&alternates, optarg); break;
		case 'M': kpar_cache_opts_set_mirrors(&opts, optarg); break;
		case 'd':
			free(opts.dir);
			opts.dir = *optarg ? kpar_xstrdup(optarg) : NULL;
			break;
		case 'r':
			if ((rc = kpar_cache_parse_revalidate(optarg, &opts.revalidate)) < 0) {
				kpar_error_prefix(rc, "--revalidate");
				goto fail;
			}
			break;
		case 'R':
			opts.retries = (int)strtol(optarg, &end, 10);
			if (*end || opts.retries < 0 || opts.retries > 100) {
				rc = kpar_error_set(KPAR_EINVAL, "--retries: '%s' is not a number "
						    "from 0 to 100", optarg);
				goto fail;
			}
			break;
		case 'u':
			free(opts.used_list);
			opts.used_list = *optarg ? kpar_xstrdup(optarg) : NULL;
			break;
		case 'l': lookup = 1; break;
		case 'q': quiet = 1; break;
		case 'v': opts.verbose = 1; break;
		case 'h':
			usage(stdout);
			rc = 0;
			goto out;
		default:
			fprintf(stderr, "kpar fetch: unknown or incomplete option '%s'\n",
				argv[optind - 1]);
			usage(stderr);
			rc = 2;
			goto out;
		}
	}
	if (optind + 1 != argc) {
		if (optind >= argc)
			fprintf(stderr, "kpar fetch: no URL given\n");
		else
			fprintf(stderr, "kpar fetch: one URL at a time ('%s' is extra)\n",
				argv[optind + 1]);
		usage(stderr);
		rc = 2;
		goto out;
	}
	req.url = argv[optind];
	req.sha256 = sha256;
	req.name = name;
	req.alternates = (const char *const *)alternates.v;
	req.n_alternates = alternates.n;

	if ((rc = kpar_cache_open(&c, &opts)) < 0)
		goto fail;
	if (lookup) {
		rc = kpar_cache_lookup(c, &req, &res);
		if (rc == 0) {
			rc = 1;
			goto out;
		}
	} else {
		rc = kpar_cache_fetch(c, &req, &res);
	}
	if (rc < 0)
		goto fail;
	if (!quiet)
		printf("%s\n", res.path);
	rc = fflush(stdout) == 0 ? 0 : 2;
	goto out;
fail:
	rc = kpar_tool_fail("fetch", rc);
out:
	kpar_cache_result_free(&res);
	kpar_cache_close(c);
	kpar_cache_opts_free(&opts);
	kpar_strv_free(&alternates);
	return rc;
}
