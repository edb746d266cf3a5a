"""The post-analysis pipeline: stages isolated per owner, failures recorded, the sweep retrying them.

Mail is synced from the real Dovecot and analysed by the real pipeline; the stages are the real
ones where the order is under test, and small recording ones (tests/analysis/flaky_stages.py) where
isolation and retries are.
"""

from datetime import timedelta

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from analysis import pipeline, post_analysis
from analysis import tasks as analysis_tasks
from analysis.models import MessageAnalysis
from mail.models import Message
from rules.models import Rule
from tags import service as tag_service
from tags.models import Tag, TagAssignment, TagSettings
from tests.analysis import flaky_stages
from tests.plugins.mail import create_account, make_raw, run_sync

pytestmark = pytest.mark.django_db

FIRST, FLAKY, LAST = (f"tests.analysis.flaky_stages.{name}" for name in ("first", "flaky", "last"))


@pytest.fixture
def recording_stages():
    flaky_stages.calls.clear()
    flaky_stages.failing_owners.clear()
    with override_settings(MAILHELPER_POST_ANALYSIS_STAGES=[FIRST, FLAKY, LAST]):
        yield flaky_stages
    flaky_stages.calls.clear()
    flaky_stages.failing_owners.clear()


def synced_rows(dovecot, imap_user, owner, raws) -> list[MessageAnalysis]:
    account = create_account(owner, imap_user, dovecot)
    for raw in raws:
        dovecot.deliver(imap_user, raw)
    run_sync(account)
    return list(MessageAnalysis.objects.filter(message__account=account).select_related("message"))


def stage_state(rows) -> dict:
    return {
        r.message_id: (r.stages_pending, r.stage_attempts, r.stage_error)
        for r in MessageAnalysis.objects.filter(pk__in=[r.pk for r in rows])
    }


def test_a_stage_failing_for_one_owner_lets_the_other_stages_and_owners_complete(
    recording_stages, dovecot, imap_user, alice, bob, caplog
):
    secret = [make_raw(n, subject=f"Secret merger {n}") for n in (1, 2)]
    alice_rows = synced_rows(dovecot, imap_user, alice.user, secret)
    bob_rows = synced_rows(dovecot, dovecot.add_user(), bob.user, [make_raw(3)])
    recording_stages.failing_owners.add(alice.user.pk)

    assert pipeline.analyse_many(alice_rows + bob_rows) == (3, 0)  # alice first: her failure must not end the batch

    alice_ids = {r.message_id for r in alice_rows}
    bob_ids = {r.message_id for r in bob_rows}
    assert recording_stages.calls == [
        ("first", alice.user.pk, alice_ids),
        ("flaky", alice.user.pk, alice_ids),
        ("last", alice.user.pk, alice_ids),
        ("first", bob.user.pk, bob_ids),
        ("flaky", bob.user.pk, bob_ids),
        ("last", bob.user.pk, bob_ids),
    ]
    failed = ([FLAKY], 1, f"{FLAKY}: StageBroke")
    assert stage_state(alice_rows) == dict.fromkeys(alice_ids, failed)
    assert stage_state(bob_rows) == dict.fromkeys(bob_ids, ([], 0, ""))
    assert not Tag.objects.filter(name="half-done").exists()  # the failed stage's own write was rolled back
    assert FLAKY in caplog.text and "StageBroke" in caplog.text
    assert "merger" not in caplog.text  # the exception's text quoted the subject: logged without it


def test_the_sweep_retries_only_the_failed_stage_once_it_stops_failing(recording_stages, dovecot, imap_user, alice):
    rows = synced_rows(dovecot, imap_user, alice.user, [make_raw(1), make_raw(2)])
    ids = {r.message_id for r in rows}
    recording_stages.failing_owners.add(alice.user.pk)
    pipeline.analyse_many(rows)

    recording_stages.calls.clear()
    assert post_analysis.sweep().failed == 1  # still failing: a second attempt is counted
    assert recording_stages.calls == [("flaky", alice.user.pk, ids)]
    assert {s[1] for s in stage_state(rows).values()} == {2}

    recording_stages.calls.clear()
    recording_stages.failing_owners.clear()
    result = analysis_tasks.analyse_stragglers()  # the periodic task runs the sweep
    assert result == {"done": 0, "failed": 0, "stages_retried": 2, "stages_failed": 0}
    assert recording_stages.calls == [("flaky", alice.user.pk, ids)]  # not first, not last: they had succeeded
    assert stage_state(rows) == dict.fromkeys(ids, ([], 2, ""))  # done; the error of the earlier runs is gone

    recording_stages.calls.clear()
    assert post_analysis.sweep().messages == 0 and recording_stages.calls == []


def test_the_sweep_gives_up_after_the_last_attempt_and_keeps_the_error(recording_stages, dovecot, imap_user, alice):
    rows = synced_rows(dovecot, imap_user, alice.user, [make_raw(1)])
    recording_stages.failing_owners.add(alice.user.pk)
    pipeline.analyse_many(rows)  # attempt 1
    for _ in range(post_analysis.MAX_ATTEMPTS - 1):
        assert post_analysis.sweep().failed == 1

    recording_stages.calls.clear()
    assert post_analysis.sweep().messages == 0 and recording_stages.calls == []
    [(pending, attempts, error)] = stage_state(rows).values()
    assert (pending, attempts) == ([FLAKY], post_analysis.MAX_ATTEMPTS)
    assert error == f"{FLAKY}: StageBroke"  # for operators

    pipeline.analyse_many(MessageAnalysis.objects.filter(pk=rows[0].pk).select_related("message"))
    [(_, attempts, _)] = stage_state(rows).values()
    assert attempts == 1  # analysing the message again starts its stages afresh


def test_stages_left_by_a_dead_worker_wait_for_the_grace_period(recording_stages, dovecot, imap_user, alice):
    rows = synced_rows(dovecot, imap_user, alice.user, [make_raw(1)])
    pipeline.analyse_many(rows)
    # What a worker killed between the analysis commit and the stages leaves behind:
    MessageAnalysis.objects.filter(pk=rows[0].pk).update(stages_pending=[FIRST, FLAKY, LAST])
    recording_stages.calls.clear()

    assert post_analysis.sweep().messages == 0  # it may still be running
    MessageAnalysis.objects.filter(pk=rows[0].pk).update(
        analysed_at=timezone.now() - post_analysis.GRACE - timedelta(minutes=1)
    )
    assert post_analysis.sweep().messages == 1
    assert [call[0] for call in recording_stages.calls] == ["first", "flaky", "last"]
    assert stage_state(rows) == {rows[0].message_id: ([], 0, "")}


def test_a_stage_no_longer_configured_is_dropped_from_pending_rows(recording_stages, dovecot, imap_user, alice):
    rows = synced_rows(dovecot, imap_user, alice.user, [make_raw(1)])
    pipeline.analyse_many(rows)
    gone = "tests.analysis.flaky_stages.removed_since"
    MessageAnalysis.objects.filter(pk=rows[0].pk).update(stages_pending=[gone, LAST], stage_attempts=1)
    recording_stages.calls.clear()

    post_analysis.sweep()
    assert [call[0] for call in recording_stages.calls] == ["last"]
    assert stage_state(rows)[rows[0].message_id][0] == []


def test_a_locked_strict_mode_user_keeps_their_stages_pending(recording_stages, dovecot, imap_user, db):
    from accounts import keyring
    from tests.plugins.accounts import create_test_user

    carol = create_test_user("carol", strict=True)
    rows = synced_rows(dovecot, imap_user, carol.user, [make_raw(1)])
    recording_stages.failing_owners.add(carol.user.pk)
    pipeline.analyse_many(rows)
    keyring.drop_session_key(carol.user)
    recording_stages.calls.clear()

    assert post_analysis.sweep().messages == 0 and recording_stages.calls == []
    assert stage_state(rows)[rows[0].message_id][:2] == ([FLAKY], 1)


def test_the_real_stages_are_topics_then_tags_then_rules_then_translations_and_all_import():
    assert settings.MAILHELPER_POST_ANALYSIS_STAGES == [
        "analysis.stages.learn_topics",
        "tags.stages.suggest_tags",
        "analysis.stages.show_category_keywords",  # before rules: a rule's move keeps the keyword
        "rules.stages.run_rules",
        "analysis.stages.queue_translations",  # last: it only queues, after the rules have moved mail
    ]
    assert all(callable(stage.function) for stage in post_analysis.stages())


def test_a_rule_sees_the_tag_suggested_in_the_same_run(dovecot, imap_user, alice):
    def invoice(n):
        raw = make_raw(
            n, subject=f"Invoice {n} for your order", sender="billing@shop.example", body_kb=0,
            message_id=f"invoice-{n}@shop.example",
        )  # fmt: skip
        return raw.replace(b"Hello,", b"Hello, the invoice with the amount due is attached, payment within 30 days.")

    account = create_account(alice.user, imap_user, dovecot)
    for n in range(1, 5):
        dovecot.deliver(imap_user, invoice(n))
    run_sync(account)
    analysis_tasks.analyse_account(str(account.pk))
    money = Tag.objects.create(owner=alice.user, name="money")
    tag_service.assign(alice.user.pk, money, list(Message.objects.filter(account=account)))  # learned from
    TagSettings.objects.create(owner=alice.user, auto_apply=True, auto_apply_threshold=0.6)
    Rule.objects.create(
        owner=alice.user, name="money first", order=1,
        definition={"match": "all", "conditions": [{"field": "has_tag", "op": "equals", "value": money.pk}],
                    "actions": [{"type": "flag"}]},
    )  # fmt: skip

    dovecot.deliver(imap_user, invoice(5))
    run_sync(account)
    analysis_tasks.analyse_account(str(account.pk))
    new = Message.objects.get(account=account, message_id="invoice-5@shop.example")
    assert TagAssignment.objects.get(message=new, tag=money).source == "suggestion"  # tags ran ...
    assert list(Message.objects.filter(account=account, flagged=True)) == [new]  # ... before rules
