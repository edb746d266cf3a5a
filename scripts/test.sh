#!/usr/bin/env bash
# The whole test suite against real PostgreSQL, Redis, Celery workers, Dovecot and an SMTP sink.
# Browser tests (marked e2e) run last. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/pytest -m "not e2e" "$@"
status=0
.venv/bin/pytest -m e2e "$@" || status=$?
# pytest exits 5 when no test was collected (no e2e tests yet): that is not a failure.
if [ "$status" -ne 0 ] && [ "$status" -ne 5 ]; then exit "$status"; fi
