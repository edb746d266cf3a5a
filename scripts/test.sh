#!/usr/bin/env bash
# The whole test suite against real PostgreSQL, Redis, Celery workers, Dovecot, Cyrus and an SMTP sink.
# One pytest run; browser tests (marked e2e) are ordered last by tests/conftest.py. Extra
# arguments go to pytest (e.g. `make test ARGS="-k sync"` or `scripts/test.sh -x`).
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/pytest "$@"
