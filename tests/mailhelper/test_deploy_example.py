"""deploy/env.example is a production configuration Django's own `check --deploy` finds nothing in.

The check runs in a fresh process with only the example's values (plus the two secrets the example leaves
blank), so a setting that drifts from the documented production value, or a new security default that
Django starts warning about, fails here instead of in an operator's first deployment.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deploy" / "env.example"
SYNC_KEY = "dGVzdHMtb25seS1zeW5jLWtleS0zMi1ieXRlcyEhISE="


def _example_values() -> dict[str, str]:
    """The example's active lines (KEY=value); commented-out "#KEY=" lines keep their defaults."""
    values = {}
    for line in EXAMPLE.read_text().splitlines():
        match = re.fullmatch(r"([A-Z][A-Z0-9_]*)=(.*)", line)
        if match:
            values[match[1]] = match[2]
    return values


def _check_deploy(tmp_path: Path, **overrides: str) -> subprocess.CompletedProcess[str]:
    environment = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        # No developer .env may leak into the production check.
        "MAILHELPER_ENV_FILE": str(tmp_path / "absent.env"),
        **_example_values(),
        "SECRET_KEY": secrets.token_urlsafe(50),
        "MAILHELPER_SYNC_KEY": SYNC_KEY,
        **overrides,
    }
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_production_example_passes_check_deploy_without_a_warning(tmp_path):
    values = _example_values()
    assert values["DEBUG"] == "0" and values["ALLOWED_HOSTS"], "the example must describe production"

    result = _check_deploy(tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (2 silenced)." in result.stdout


def test_without_the_proxy_the_check_names_what_django_would_have_to_do(tmp_path):
    result = _check_deploy(tmp_path, MAILHELPER_PROXY_ENFORCES_HTTPS="0")

    assert result.returncode != 0
    assert "security.W004" in result.stderr and "security.W008" in result.stderr


def test_debug_in_production_is_reported(tmp_path):
    result = _check_deploy(tmp_path, DEBUG="1")

    assert result.returncode != 0
    assert "security.W018" in result.stderr  # DEBUG=True in deployment
