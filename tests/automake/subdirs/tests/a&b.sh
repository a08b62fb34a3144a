#!/bin/sh
echo "a shell metacharacter in my name"
