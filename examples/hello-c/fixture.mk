# fixture.mk - hello-c's test fixture, fetched through kpar's artifact cache.
# (Included by the Makefile after kpar.mk, which provides $(kpar-fetch ...).)
#
# tests/greet_fixture checks greet() against a table of expected greetings.
# The table is a versioned artifact, named like any third-party download by
# URL and SHA-256: make fetches it once into the cache (~/.cache/kpar) and
# never again while the checksum stays the same; `make -n` fetches nothing.
# To watch a real download, serve the table over HTTP:
#
#   (cd fixtures && python3 -m http.server 8000 --bind 127.0.0.1) &
#   make check HELLO_FIXTURE_URL=http://127.0.0.1:8000/greetings-1.0.txt
#   kpar cache stats        # one miss; run make again for hits
#
# A wrong HELLO_FIXTURE_SHA256 stops the build with both checksums and
# stores nothing.  For k8s-test the fixture is part of the build's used-list
# and ships in the image's read-only cache layer.

HELLO_C_DIR := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
# Where the table is published, and its checksum (pinned: verified, immutable).
HELLO_FIXTURE_URL ?= file://$(HELLO_C_DIR)/fixtures/greetings-1.0.txt
HELLO_FIXTURE_SHA256 ?= 834b96d841c2c6c70502db1466c468023eed190f41e4e3caf663cc6a906a7730
# Its path in the cache.  The function only names it; the rule it defines
# runs `kpar fetch` when the file is not there yet.
HELLO_FIXTURE := $(kpar-fetch $(HELLO_FIXTURE_URL),$(HELLO_FIXTURE_SHA256),greetings-1.0.txt)
export HELLO_FIXTURE

TESTS += tests/greet_fixture
KPAR_TEST_ENV += HELLO_FIXTURE
# Fetched (and the test built) before the tests run, by `make check` and
# `make k8s-test` alike.
check: tests/greet_fixture $(HELLO_FIXTURE)
$(KPAR_STATE_DIR)/tests.list: tests/greet_fixture $(HELLO_FIXTURE)

# In the image the cache is a read-only layer at /kpar/cache holding what
# this build fetched: the tests find the fixture there, without network.
KPAR_CACHE_LAYER_DIR = $(KPAR_CACHE_LAYER)
$(KPAR_STATE_DIR)/image/digest: $(KPAR_CACHE_LAYER_STAMP)
KPAR_IMAGE_ENV += HELLO_FIXTURE=$(patsubst $(KPAR_CACHE_DIR)/%,/kpar/cache/%,$(HELLO_FIXTURE))
