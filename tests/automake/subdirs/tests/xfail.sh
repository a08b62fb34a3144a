#!/bin/sh
echo "fails, as expected"
exit 1
