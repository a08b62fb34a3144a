#!/bin/sh
# make check runs it in its own build directory, with its srcdir.
test -f Makefile && test -f answer || { echo "not in tests/: $(pwd)"; exit 1; }
test -f "$srcdir/wrap" || { echo "srcdir=$srcdir has no wrap"; exit 1; }
