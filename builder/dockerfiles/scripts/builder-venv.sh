#!/bin/sh
# A venv with builder's runtime requirements; builder's source is mounted at run time.
set -eu
if [ -s /opt/builder/ca.pem ]; then export PIP_CERT=/opt/builder/ca.pem; fi
python3 -m venv /opt/builder/venv
/opt/builder/venv/bin/pip install -q "$@"
