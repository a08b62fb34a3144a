#!/bin/sh
echo "top: WHO=$WHO"
test "$WHO" = top
