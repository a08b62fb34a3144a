/* curl_load.h - libcurl, loaded the first time a transfer is needed.
 *
 * Linking libcurl pulls about 35 shared objects (TLS, HTTP/2, IDN, LDAP,
 * Kerberos, ...) into every kpar process; mapping and relocating them costs
 * about 14 ms, which was more than half of a no-op `kpar image build` and
 * is paid by every `kpar plan`, `kpar run` and `kpar report` that never
 * touches the network.  So the tool does not link libcurl: the few modules
 * that transfer (registry.c, cache_http.c, cache.c) include this header in
 * place of <curl/curl.h>, call kpar_curl_load() at their entry points, and
 * reach libcurl through a table of its functions (base/lazylib.h).  The
 * header still comes from libcurl's own package, so the types and
 * constants are libcurl's.
 */
#ifndef KPAR_CURL_LOAD_H
#define KPAR_CURL_LOAD_H

/* curl's option type checks are macros over the very functions this header
 * turns into pointers, so they have to go */
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>

#include "base/lazylib.h"

/* Every libcurl function kpar calls: X(member, name). */
#define KPAR_CURL_FUNCTIONS(X) \
	X(global_init, curl_global_init) \
	X(easy_init, curl_easy_init) \
	X(easy_setopt, curl_easy_setopt) \
	X(easy_getinfo, curl_easy_getinfo) \
	X(easy_perform, curl_easy_perform) \
	X(easy_reset, curl_easy_reset) \
	X(easy_cleanup, curl_easy_cleanup) \
	X(easy_strerror, curl_easy_strerror) \
	X(easy_header, curl_easy_header) \
	X(slist_append, curl_slist_append) \
	X(slist_free_all, curl_slist_free_all) \
	X(free, curl_free) \
	X(multi_init, curl_multi_init) \
	X(multi_setopt, curl_multi_setopt) \
	X(multi_add_handle, curl_multi_add_handle) \
	X(multi_remove_handle, curl_multi_remove_handle) \
	X(multi_perform, curl_multi_perform) \
	X(multi_poll, curl_multi_poll) \
	X(multi_info_read, curl_multi_info_read) \
	X(multi_cleanup, curl_multi_cleanup) \
	X(url, curl_url) \
	X(url_set, curl_url_set) \
	X(url_get, curl_url_get) \
	X(url_cleanup, curl_url_cleanup)

struct kpar_curl_api {
	KPAR_CURL_FUNCTIONS(KPAR_LAZYLIB_MEMBER)
};

extern struct kpar_curl_api kpar_curl_api;

/* Which libcurl kpar_curl_load() opens (the tool passes KPAR_LIBCURL); NULL
 * or "" = the library configure found.  The string is copied.  Takes effect
 * only before the first kpar_curl_load(). */
void kpar_curl_set_library(const char *path);

/* Loads libcurl (the kpar_curl_set_library() path, else the library
 * configure found) and runs curl_global_init, once per process;
 * thread-safe.  Returns 0, or KPAR_ENET with a message naming the library.
 * Until it has succeeded, the calls below jump through NULL. */
int kpar_curl_load(void);

/* from here on a call to curl_easy_init() etc. goes through the table */
#undef curl_easy_setopt    /* curl.h's argument-count checks */
#undef curl_easy_getinfo
#undef curl_multi_setopt
#define curl_global_init (*kpar_curl_api.global_init)
#define curl_easy_init (*kpar_curl_api.easy_init)
#define curl_easy_setopt (*kpar_curl_api.easy_setopt)
#define curl_easy_getinfo (*kpar_curl_api.easy_getinfo)
#define curl_easy_perform (*kpar_curl_api.easy_perform)
#define curl_easy_reset (*kpar_curl_api.easy_reset)
#define curl_easy_cleanup (*kpar_curl_api.easy_cleanup)
#define curl_easy_strerror (*kpar_curl_api.easy_strerror)
#define curl_easy_header (*kpar_curl_api.easy_header)
#define curl_slist_append (*kpar_curl_api.slist_append)
#define curl_slist_free_all (*kpar_curl_api.slist_free_all)
#define curl_free (*kpar_curl_api.free)
#define curl_multi_init (*kpar_curl_api.multi_init)
#define curl_multi_setopt (*kpar_curl_api.multi_setopt)
#define curl_multi_add_handle (*kpar_curl_api.multi_add_handle)
#define curl_multi_remove_handle (*kpar_curl_api.multi_remove_handle)
#define curl_multi_perform (*kpar_curl_api.multi_perform)
#define curl_multi_poll (*kpar_curl_api.multi_poll)
#define curl_multi_info_read (*kpar_curl_api.multi_info_read)
#define curl_multi_cleanup (*kpar_curl_api.multi_cleanup)
#define curl_url (*kpar_curl_api.url)
#define curl_url_set (*kpar_curl_api.url_set)
#define curl_url_get (*kpar_curl_api.url_get)
#define curl_url_cleanup (*kpar_curl_api.url_cleanup)

#endif
