#!/bin/sh
echo "a hard error at the top"
exit 99
