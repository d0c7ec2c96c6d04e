#!/bin/sh
# Install Debian packages (the common set plus the family's) and drop apt's lists.
set -eu
apt-get update -qq
apt-get install -y -qq --no-install-recommends "$@" >/tmp/apt.log 2>&1 || { tail -n 40 /tmp/apt.log; exit 1; }
rm -rf /var/lib/apt/lists/* /tmp/apt.log
