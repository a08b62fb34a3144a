/* kpar.h - libkpar's modules, for code that wants all of them.
 *
 * libkpar is the core of kpar, with no dependency on Make: the plugin
 * (plugin/) and the kpar tool (src/tool/) are thin layers over it.
 * Module prefixes: kpar_error_, kpar_buf_, kpar_fs_, kpar_sha256_/digest_,
 * kpar_conf_, kpar_testlist_, kpar_state_, kpar_plan_, kpar_split/estimate,
 * kpar_record_, kpar_worker_, kpar_junit_, kpar_local_, kpar_report_,
 * kpar_registry_, kpar_dockercfg_, kpar_imageref_ (registry client).
 */
#ifndef KPAR_H
#define KPAR_H

#include "base/error.h"
#include "base/buf.h"
#include "base/fs.h"
#include "base/digest.h"

#endif
