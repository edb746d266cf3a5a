"""manage.py backfill_analysis: pending (and failed) messages analysed, resumable, per user."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from analysis.models import MessageAnalysis

pytestmark = pytest.mark.django_db


def _run(command: str, *args: str) -> str:
    out = io.StringIO()
    call_command(command, *args, stdout=out)
    return out.getvalue()


def test_backfill_analysis_is_resumable(five_synced, bob):
    assert MessageAnalysis.objects.filter(owner=five_synced.owner, state="pending").count() == 5
    assert "Analysed 5 message(s), 0 failed." in _run("backfill_analysis", "--user", "alice")
    assert MessageAnalysis.objects.filter(owner=five_synced.owner, state="done").count() == 5
    assert "Analysed 0 message(s)" in _run("backfill_analysis")
    MessageAnalysis.objects.filter(owner=five_synced.owner).update(state="failed")
    assert "Analysed 0 message(s)" in _run("backfill_analysis")  # failed ones only with --failed
    assert "Analysed 5 message(s)" in _run("backfill_analysis", "--failed", "--since", "2025-12-31")
    assert "Analysed 0 message(s)" in _run("backfill_analysis", "--failed")
    assert "Analysed 5 message(s)" in _run("backfill_analysis", "--all")
    assert "Analysed 0 message(s)" in _run("backfill_analysis", "--user", "bob", "--all")
    with pytest.raises(CommandError, match="no user named"):
        _run("backfill_analysis", "--user", "nobody")
