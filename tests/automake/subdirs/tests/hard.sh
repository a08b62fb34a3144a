#!/bin/sh
echo "exit 99, a failure here"
exit 99
