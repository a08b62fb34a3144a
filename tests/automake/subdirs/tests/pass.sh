#!/bin/sh
echo "WHO=$WHO"
test "$WHO" = tests
