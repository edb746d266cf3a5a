"""Per-account switches of the analysis (issue 18): analysis of new mail, the urgency booster, the language model."""

from datetime import timedelta

import pytest

from analysis import jobs, pipeline
from analysis import tasks as analysis_tasks
from analysis.models import MessageAnalysis, TrustedSender
from tests.analysis.factories import URGENT, configure_provider
from tests.plugins.mail import create_account, make_raw, run_sync

pytestmark = pytest.mark.django_db


def test_with_analysis_of_new_mail_off_mail_waits_deferred_until_a_reanalysis(dovecot, imap_user, alice):
    account = create_account(alice.user, imap_user, dovecot, analyse_on_fetch=False)
    dovecot.deliver(imap_user, URGENT % 1)
    run_sync(account)
    row = MessageAnalysis.objects.get(message__account=account)
    assert row.state == MessageAnalysis.State.DEFERRED
    assert analysis_tasks.analyse_account(str(account.pk)) == {"done": 0, "failed": 0}
    assert not pipeline.stragglers(older_than=timedelta(0)).filter(pk=row.pk).exists()

    assert jobs.reanalyse(jobs.selection(owner_id=alice.user.pk, account_id=account.pk)) == (1, 0)
    row.refresh_from_db()
    assert row.state == MessageAnalysis.State.DONE and row.final_urgency

    account.analyse_on_fetch = True
    account.save()
    dovecot.deliver(imap_user, URGENT % 2)
    run_sync(account)
    assert MessageAnalysis.objects.filter(message__account=account, state="pending").count() == 1


def test_the_urgency_booster_is_per_account(dovecot, imap_user, alice):

    boosted = create_account(alice.user, imap_user, dovecot, name="boosted")
    plain = create_account(alice.user, imap_user, dovecot, name="plain", urgency_booster=False)
    dovecot.deliver(imap_user, make_raw(1, sender="friend@pals.example", to="team@elsewhere.example"))
    TrustedSender.objects.create(owner=alice.user, pattern="@pals.example")
    run_sync(boosted)
    run_sync(plain)
    analysis_tasks.analyse_account(str(boosted.pk))
    analysis_tasks.analyse_account(str(plain.pk))
    with_boost = MessageAnalysis.objects.get(message__account=boosted)
    without = MessageAnalysis.objects.get(message__account=plain)
    assert "VIP sender" in with_boost.reasons and "VIP sender" not in without.reasons
    assert with_boost.final_urgency + with_boost.final_importance > without.final_urgency + without.final_importance


def test_an_account_can_keep_its_mail_away_from_the_language_model(fake_llm, dovecot, imap_user, alice):
    configure_provider(alice.user, fake_llm)
    private = create_account(alice.user, imap_user, dovecot, name="private", use_language_model=False)
    shared = create_account(alice.user, imap_user, dovecot, name="shared")
    dovecot.deliver(imap_user, URGENT % 3)
    run_sync(private)
    analysis_tasks.analyse_account(str(private.pk))
    row = MessageAnalysis.objects.get(message__account=private)
    assert row.method.startswith("builtin") and not row.fallback_reason
    assert fake_llm.requests == []

    run_sync(shared)
    analysis_tasks.analyse_account(str(shared.pk))
    assert MessageAnalysis.objects.get(message__account=shared).method.startswith("llm:")
    assert len(fake_llm.requests) == 1
