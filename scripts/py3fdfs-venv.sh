#!/usr/bin/env bash
# Print the python of a virtualenv holding the PyPI clients the tests drive
# (target/py3fdfs-venv): py3fdfs (FastDFS), and boto3, awscli and s3cmd (S3), creating it or
# adding what is missing first (python3-venv installed from Debian when needed).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/py3fdfs-venv
if ! "$venv/bin/python" -c 'import fdfs_client.client, boto3' 2>/dev/null \
    || [ ! -x "$venv/bin/aws" ] || [ ! -x "$venv/bin/s3cmd" ]; then
    echo "== creating $venv with py3fdfs, boto3, awscli, s3cmd" >&2
    if [ ! -x "$venv/bin/pip" ] && ! python3 -m venv "$venv" 2>/dev/null; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2 && apt-get install -y -qq python3-venv >/dev/null
        rm -rf "$venv"
        python3 -m venv "$venv"
    fi
    "$venv/bin/pip" install -q --disable-pip-version-check py3fdfs boto3 awscli s3cmd >&2
fi
echo "$PWD/$venv/bin/python"
