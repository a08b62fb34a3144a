#!/bin/sh
echo "this one fails"
exit 1
