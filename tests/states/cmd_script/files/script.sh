#!/bin/sh
echo "args: $*"
echo written > script-output.txt
