#!/usr/bin/env bash
# `make up`: PostgreSQL and Redis (started project-locally if nothing answers on their loopback URLs),
# migrations, then web, workers, watcher and beat under honcho; Ctrl-C stops all, local servers included.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}

$PY manage.py local_services ensure
trap '$PY manage.py local_services stop' EXIT
$PY manage.py ensure_database
$PY manage.py migrate --no-input
echo ""
echo "  Mailhelper is starting at http://127.0.0.1:${PORT:-8000}/  (web, workers, watcher and beat; Ctrl-C stops all)"
echo ""
.venv/bin/honcho -f Procfile start
