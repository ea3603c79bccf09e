#!/usr/bin/env bash
# Install the peers the benchmark compares corral with, apart from the project's own venv:
# s6, runit and daemontools from Debian's packages; supervisor and circus (pinned) into
# bench/.venv. Safe to run again: what is there is kept.
set -euo pipefail
cd "$(dirname "$0")"

need=()
command -v s6-svscan >/dev/null 2>&1 || need+=(s6)
command -v runsvdir >/dev/null 2>&1 || need+=(runit)
command -v svscan >/dev/null 2>&1 || need+=(daemontools)
if ((${#need[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 \
        || { apt-get update -qq >/dev/null; apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }
fi

if [ ! -x .venv/bin/supervisord ] || [ ! -x .venv/bin/circusd ]; then
    python3 -m venv .venv
    .venv/bin/pip install --quiet supervisor==4.3.0 circus==0.19.0
fi
echo "peers installed: s6 runit daemontools (Debian), supervisor 4.3.0 and circus 0.19.0 (bench/.venv)"
