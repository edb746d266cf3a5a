#!/usr/bin/env bash
# `make demo`: everything `make up` runs, plus a local Dovecot with a sample mailbox and a demo user whose
# account is synced and analysed before the URL is printed (mailhelper/demo/setup.py).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}

if [ ! -x /usr/sbin/dovecot ]; then
    echo "make demo needs Dovecot: apt-get install dovecot-imapd (Debian/Ubuntu)" >&2
    exit 1
fi
export MAILHELPER_DEMO_IMAP_PORT=${MAILHELPER_DEMO_IMAP_PORT:-10143}
# The demo's mail server is on loopback, which the outbound policy refuses unless allowed by name.
export MAILHELPER_OUTBOUND_ALLOW="127.0.0.1:${MAILHELPER_DEMO_IMAP_PORT}${MAILHELPER_OUTBOUND_ALLOW:+,$MAILHELPER_OUTBOUND_ALLOW}"

$PY manage.py local_services ensure
trap '$PY manage.py local_services stop' EXIT
$PY manage.py ensure_database
$PY manage.py migrate --no-input
$PY manage.py demo --run
