/* archive_load.h - libarchive, loaded the first time a layer is written.
 *
 * libarchive brings libxml2, ICU (libicuuc, libicudata), libstdc++,
 * nettle, acl, lzma, lz4 and bzip2 with it; only image layers need it, so
 * the tool does not link it (base/lazylib.h says why).  layer.c includes
 * this header in place of <archive.h> and calls kpar_archive_load() in
 * kpar_layer_write() before its first libarchive call.
 */
#ifndef KPAR_ARCHIVE_LOAD_H
#define KPAR_ARCHIVE_LOAD_H

#include <archive.h>
#include <archive_entry.h>

#include "base/lazylib.h"

/* Every libarchive function kpar calls: X(member, name). */
#define KPAR_ARCHIVE_FUNCTIONS(X) \
	X(set_error, archive_set_error) \
	X(error_string, archive_error_string) \
	X(write_new, archive_write_new) \
	X(write_set_format_pax_restricted, archive_write_set_format_pax_restricted) \
	X(write_add_filter_none, archive_write_add_filter_none) \
	X(write_set_bytes_per_block, archive_write_set_bytes_per_block) \
	X(write_open, archive_write_open) \
	X(write_header, archive_write_header) \
	X(write_data, archive_write_data) \
	X(write_close, archive_write_close) \
	X(write_free, archive_write_free) \
	X(entry_new, archive_entry_new) \
	X(entry_clear, archive_entry_clear) \
	X(entry_free, archive_entry_free) \
	X(entry_set_pathname_utf8, archive_entry_set_pathname_utf8) \
	X(entry_set_filetype, archive_entry_set_filetype) \
	X(entry_set_perm, archive_entry_set_perm) \
	X(entry_set_uid, archive_entry_set_uid) \
	X(entry_set_gid, archive_entry_set_gid) \
	X(entry_set_mtime, archive_entry_set_mtime) \
	X(entry_set_size, archive_entry_set_size) \
	X(entry_set_symlink_utf8, archive_entry_set_symlink_utf8)

struct kpar_archive_api {
	KPAR_ARCHIVE_FUNCTIONS(KPAR_LAZYLIB_MEMBER)
};

extern struct kpar_archive_api kpar_archive_api;

/* Loads libarchive (the library configure found), once per process;
 * thread-safe.  Returns 0, or KPAR_ELIB with a message naming the library.
 * Until it has succeeded, the calls below jump through NULL. */
int kpar_archive_load(void);

/* from here on a call to archive_write_new() etc. goes through the table */
#define archive_set_error (*kpar_archive_api.set_error)
#define archive_error_string (*kpar_archive_api.error_string)
#define archive_write_new (*kpar_archive_api.write_new)
#define archive_write_set_format_pax_restricted (*kpar_archive_api.write_set_format_pax_restricted)
#define archive_write_add_filter_none (*kpar_archive_api.write_add_filter_none)
#define archive_write_set_bytes_per_block (*kpar_archive_api.write_set_bytes_per_block)
#define archive_write_open (*kpar_archive_api.write_open)
#define archive_write_header (*kpar_archive_api.write_header)
#define archive_write_data (*kpar_archive_api.write_data)
#define archive_write_close (*kpar_archive_api.write_close)
#define archive_write_free (*kpar_archive_api.write_free)
#define archive_entry_new (*kpar_archive_api.entry_new)
#define archive_entry_clear (*kpar_archive_api.entry_clear)
#define archive_entry_free (*kpar_archive_api.entry_free)
#define archive_entry_set_pathname_utf8 (*kpar_archive_api.entry_set_pathname_utf8)
#define archive_entry_set_filetype (*kpar_archive_api.entry_set_filetype)
#define archive_entry_set_perm (*kpar_archive_api.entry_set_perm)
#define archive_entry_set_uid (*kpar_archive_api.entry_set_uid)
#define archive_entry_set_gid (*kpar_archive_api.entry_set_gid)
#define archive_entry_set_mtime (*kpar_archive_api.entry_set_mtime)
#define archive_entry_set_size (*kpar_archive_api.entry_set_size)
#define archive_entry_set_symlink_utf8 (*kpar_archive_api.entry_set_symlink_utf8)

#endif
