"""Rules on stored mail: the editor, running once per message, dry-run, on demand, safety, scoping."""

import time

import pytest
from django.urls import reverse

from analysis import tasks as analysis_tasks
from analysis.models import MessageAnalysis, TrustedSender
from mail.actions import write_back
from mail.models import Message, PendingAction
from rules import service
from rules.models import Rule, RuleLog
from tags.models import Tag, TagAssignment
from tests.plugins import imap_helpers as srv
from tests.plugins.accounts import verified_client
from tests.plugins.mail import create_account, make_raw, run_sync, select_folders

pytestmark = pytest.mark.django_db

NEWSLETTER = (
    b"From: News <news@letters.example>\r\nTo: me@example.test\r\nSubject: Weekly digest %d\r\n"
    b"List-Id: <weekly.letters.example>\r\nList-Unsubscribe: <mailto:u@letters.example>\r\n"
    b"Message-ID: <nl-%d@letters.example>\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n\r\nTen articles this week.\r\n"
)


@pytest.fixture
def account(dovecot, imap_user, alice):
    account = create_account(alice.user, imap_user, dovecot)
    select_folders(account, "INBOX", "Archive")
    return account


def editor_post(client, name, conditions, actions, match="all", url=None):
    data = {
        "name": name,
        "enabled": "on",
        "match": match,
        "condition_rows": len(conditions),
        "action_rows": len(actions),
    }
    for i, (field, op, value, negate) in enumerate(conditions):
        data.update({f"c-{i}-field": field, f"c-{i}-op": op, f"c-{i}-value": value})
        if negate:
            data[f"c-{i}-negate"] = "on"
    for i, (kind, value) in enumerate(actions):
        data.update({f"a-{i}-type": kind, f"a-{i}-choice": value})
    return client.post(url or reverse("rules:new"), data)


def sync_and_analyse(account):
    run_sync(account)
    return analysis_tasks.analyse_account(str(account.pk))


def test_the_editor_builds_validated_rules_without_json(alice_client, alice):
    bad = editor_post(alice_client, "Broken", [("subject", "matches", "([a-z", False)], [("flag", "")])
    assert bad.status_code == 200 and "regular expression" in bad.content.decode()
    wrong_op = editor_post(alice_client, "Wrong", [("from", "above", "x", False)], [("flag", "")])
    assert "does not support" in wrong_op.content.decode()
    response = editor_post(
        alice_client, "Invoices", [("subject", "contains", "Invoice", False), ("is_list", "is", "false", True)],
        [("flag", ""), ("set_urgency", "3")],
    )  # fmt: skip
    rule = Rule.objects.get(owner=alice.user, name="Invoices")
    assert response.url == reverse("rules:dry-run", args=[rule.pk])
    assert rule.definition["conditions"][1] == {"field": "is_list", "op": "is", "value": False, "negate": True}
    assert {"type": "set_urgency", "value": 3} in rule.definition["actions"]
    edit_page = alice_client.get(reverse("rules:edit", args=[rule.pk])).content.decode()
    assert 'value="Invoice"' in edit_page


def test_rules_run_on_new_mail_once_and_go_back_to_the_server(alice_client, alice, account, dovecot, imap_user):
    tag = Tag.objects.create(owner=alice.user, name="news")
    archive = account.folders.get(name="Archive")
    editor_post(
        alice_client,
        "Newsletters away",
        [("is_list", "is", "true", False)],
        [("add_tag", str(tag.pk)), ("archive", "")],
    )
    dovecot.deliver(imap_user, NEWSLETTER % (1, 1))
    dovecot.deliver(imap_user, make_raw(2))
    sync_and_analyse(account)

    newsletter = Message.objects.get(message_id="nl-1@letters.example")
    assert newsletter.folder == archive
    assert TagAssignment.objects.get(message=newsletter, tag=tag).source == "rule"
    log = RuleLog.objects.get(message=newsletter)
    assert log.success and any("Archive" in a or "archive" in a for a in log.actions)
    other = Message.objects.exclude(pk=newsletter.pk).get(account=account)
    assert not RuleLog.objects.filter(message=other).exists()

    # A redelivered analysis task does not apply the rule twice.
    from analysis import pipeline

    pipeline.analyse_many([MessageAnalysis.objects.get(message=newsletter)])
    assert RuleLog.objects.filter(message=newsletter).count() == 1
    assert Rule.objects.get(name="Newsletters away").times_triggered == 1
    assert PendingAction.objects.filter(message=newsletter, kind="move").count() == 1

    assert write_back(account.pk) == (1, 0)
    assert srv.subjects(dovecot, imap_user, "Archive") == ["Weekly digest 1"]


def test_stop_ends_processing_and_order_matters(alice, account, dovecot, imap_user):
    doc = {"match": "all", "conditions": [{"field": "from", "op": "domain", "value": "letters.example"}]}
    Rule.objects.create(
        owner=alice.user, name="first", order=1, definition={**doc, "actions": [{"type": "flag"}, {"type": "stop"}]}
    )
    Rule.objects.create(
        owner=alice.user, name="second", order=2, definition={**doc, "actions": [{"type": "mark_read"}]}
    )
    dovecot.deliver(imap_user, NEWSLETTER % (3, 3))
    sync_and_analyse(account)
    message = Message.objects.get(account=account)
    assert message.flagged and not message.seen
    assert list(RuleLog.objects.values_list("rule__name", flat=True)) == ["first"]


def test_dry_run_lists_matches_and_changes_nothing(alice_client, alice, account, dovecot, imap_user):
    for i in range(3):
        dovecot.deliver(imap_user, NEWSLETTER % (10 + i, 10 + i))
    dovecot.deliver(imap_user, make_raw(5))
    sync_and_analyse(account)
    rule = Rule.objects.create(
        owner=alice.user, name="digests", order=1, enabled=False,
        definition={"match": "any", "conditions": [{"field": "subject", "op": "contains", "value": "digest"}],
                    "actions": [{"type": "trash"}]},
    )  # fmt: skip
    page = alice_client.get(reverse("rules:dry-run", args=[rule.pk])).content.decode()
    assert "Would match <strong>3</strong> of 4" in page and "Weekly digest 11" in page
    assert not RuleLog.objects.exists() and not PendingAction.objects.exists()

    applied = service.run_on_existing([rule.pk], alice.user.pk)  # what the "run now" job does
    assert applied == 3 and PendingAction.objects.filter(kind="move").count() == 3


def test_a_catastrophic_regex_cannot_stall_a_worker(alice, account, dovecot, imap_user):
    dovecot.deliver(imap_user, make_raw(1, subject="a" * 40 + "!"))
    sync_and_analyse(account)
    rule = Rule.objects.create(
        owner=alice.user, name="evil", order=1,
        definition={"match": "all", "conditions": [{"field": "subject", "op": "matches", "value": "(a|aa)+$"}],
                    "actions": [{"type": "flag"}]},
    )  # fmt: skip
    started = time.monotonic()
    result, matched = service.dry_run(rule)
    assert time.monotonic() - started < 2
    assert result.timeouts == 1 and matched == []


def test_trusted_sender_condition(alice, account, dovecot, imap_user):
    TrustedSender.objects.create(owner=alice.user, pattern="*@letters.example")
    Rule.objects.create(
        owner=alice.user, name="vip", order=1,
        definition={"match": "all", "conditions": [{"field": "sender_trusted", "op": "is", "value": True}],
                    "actions": [{"type": "flag"}]},
    )  # fmt: skip
    dovecot.deliver(imap_user, NEWSLETTER % (20, 20))
    dovecot.deliver(imap_user, make_raw(21))
    sync_and_analyse(account)
    flagged = set(Message.objects.filter(account=account, flagged=True).values_list("message_id", flat=True))
    assert flagged == {"nl-20@letters.example"}


def test_rules_of_another_user_are_out_of_reach(alice, bob):
    rule = Rule.objects.create(
        owner=alice.user, name="mine", order=1,
        definition={"match": "all", "conditions": [{"field": "is_spam", "op": "is", "value": True}],
                    "actions": [{"type": "trash"}]},
    )  # fmt: skip
    client = verified_client(bob)
    for name in ("rules:edit", "rules:dry-run", "rules:log", "rules:delete"):
        assert client.get(reverse(name, args=[rule.pk])).status_code == 404, name
    for name in ("rules:delete", "rules:toggle", "rules:move", "rules:run"):
        assert client.post(reverse(name, args=[rule.pk])).status_code == 404, name
    assert Rule.objects.filter(pk=rule.pk, enabled=True).exists()
    assert "mine" not in client.get(reverse("rules:list")).content.decode()


def test_templates_and_list_page(alice_client, alice):
    Tag.objects.create(owner=alice.user, name="attachments")
    alice_client.post(reverse("rules:from-template"), {"template": "newsletter_archive"})
    rule = Rule.objects.get(owner=alice.user)
    assert not rule.enabled  # templates start switched off
    page = alice_client.get(reverse("rules:list")).content.decode()
    assert rule.name in page and "0 times" in page
