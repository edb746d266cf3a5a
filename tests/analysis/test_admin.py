"""Operators see each analysis's state and its post-analysis stages in the admin, never what the mail says."""

import pytest
from django.urls import reverse

from analysis import tasks as analysis_tasks
from analysis.models import MessageAnalysis
from tests.analysis.factories import URGENT, synced
from tests.plugins.accounts import create_test_user, verified_client

pytestmark = pytest.mark.django_db


def test_the_admin_shows_stage_errors_but_no_summary(dovecot, imap_user, alice):
    account = synced(dovecot, imap_user, alice.user, [URGENT % 1])
    analysis_tasks.analyse_account(str(account.pk))
    analysis = MessageAnalysis.objects.get(owner=alice.user)
    summary = analysis.summary
    assert summary
    MessageAnalysis.objects.filter(pk=analysis.pk).update(
        stages_pending=["rules.stages.run_rules"], stage_attempts=2, stage_error="rules.stages.run_rules: KeyError"
    )
    operator = create_test_user("operator")
    operator.user.is_staff = operator.user.is_superuser = True
    operator.user.save()
    client = verified_client(operator)
    for url in (
        reverse("admin:analysis_messageanalysis_changelist"),
        reverse("admin:analysis_messageanalysis_change", args=[analysis.pk]),
    ):
        page = client.get(url)
        assert page.status_code == 200, url
        html = page.content.decode()
        assert "rules.stages.run_rules: KeyError" in html
        assert summary not in html and "contract" not in html.lower()
    assert client.post(reverse("admin:analysis_messageanalysis_change", args=[analysis.pk]), {}).status_code == 403
