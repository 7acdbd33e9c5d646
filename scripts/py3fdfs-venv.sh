#!/usr/bin/env bash
# Print the python of a virtualenv holding the PyPI client py3fdfs (target/py3fdfs-venv),
# creating it first when missing (python3-venv installed from Debian when needed).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/py3fdfs-venv
if ! "$venv/bin/python" -c 'import fdfs_client.client' 2>/dev/null; then
    echo "== creating $venv with py3fdfs" >&2
    if ! python3 -m venv "$venv" 2>/dev/null; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2 && apt-get install -y -qq python3-venv >/dev/null
        rm -rf "$venv"
        python3 -m venv "$venv"
    fi
    "$venv/bin/pip" install -q --disable-pip-version-check py3fdfs >&2
fi
echo "$PWD/$venv/bin/python"
