"""Tags and categories as IMAP keywords (#18): mapping, opt-in, write-back to Dovecot, read-back, no loops."""

import pytest
from django.urls import reverse

from analysis.models import MessageAnalysis
from analysis.pipeline import correct
from mail import actions
from mail.models import Message, PendingAction
from tags import keywords, service
from tags.models import Tag, TagAssignment, TagSettings
from tests.plugins import imap_helpers as srv
from tests.plugins.accounts import verified_client
from tests.plugins.mail import create_account, make_raw, run_sync

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("name", "keyword"),
    [
        ("Work", "Work"),
        ("To do  later", "To_do_later"),
        ("Büro & Straße", "Buro_&_Strasse"),
        ('a(b)c*d%e"f\\g]h{i', "abcdefghi"),
        ("$label1", "label1"),
        ("mh_reply_expected", "tag_mh_reply_expected"),
    ],
)
def test_tag_names_map_to_keywords(name, keyword):
    assert keywords.keyword_for_tag(name) == keyword
    assert keywords.keyword_for_tag(name) == keywords.keyword_for_tag(name)  # deterministic


def test_names_with_nothing_left_get_a_stable_fallback():
    first = keywords.keyword_for_tag("日本語")
    assert first.startswith("tag_") and len(first) == 12 and first == keywords.keyword_for_tag("日本語")
    assert first != keywords.keyword_for_tag("中文")


@pytest.mark.parametrize(
    "keyword", ["$Forwarded", "$MDNSent", "$Junk", "$NotJunk", "NonJunk", "Junk", "$label3", "mh_newsletter", "a b"]
)
def test_system_and_category_keywords_are_not_read_back(keyword):
    assert not keywords.readable(keyword)


def test_plain_keywords_are_read_back():
    assert keywords.readable("Work") and keywords.readable("To_do")


@pytest.fixture
def synced(dovecot, imap_user, alice):
    dovecot.deliver(imap_user, make_raw(1))
    dovecot.deliver(imap_user, make_raw(2))
    account = create_account(alice.user, imap_user, dovecot)
    run_sync(account)
    return account


def opt_in(user):
    TagSettings.objects.update_or_create(owner=user, defaults={"server_keywords": True})


def test_tag_written_to_dovecot_untag_removed_and_no_echo(dovecot, imap_user, alice, synced):
    opt_in(alice.user)
    message = Message.objects.order_by("uid").first()
    work = Tag.objects.create(owner=alice.user, name="Work stuff")
    client = verified_client(alice)
    client.post(reverse("tags:apply"), {"tag": work.pk, "ids": [str(message.pk)]})
    assert PendingAction.objects.get().keyword == "Work_stuff"
    assert actions.write_back(synced.pk) == (1, 0)
    assert "Work_stuff" in srv.server_flags(dovecot, imap_user)[message.uid]

    assert run_sync(synced).messages_updated == 0  # our own keyword is no change
    assert TagAssignment.objects.get().source == "manual"

    client.post(reverse("tags:apply"), {"tag": work.pk, "ids": [str(message.pk)], "remove": "1"})
    assert actions.write_back(synced.pk) == (1, 0)
    assert "Work_stuff" not in srv.server_flags(dovecot, imap_user)[message.uid]
    run_sync(synced)
    assert not TagAssignment.objects.exists()


def test_keyword_set_by_another_client_becomes_a_tag_and_its_removal_removes_it(dovecot, imap_user, alice, synced):
    opt_in(alice.user)
    message = Message.objects.order_by("uid").first()
    invoices = Tag.objects.create(owner=alice.user, name="Invoices")
    srv.store(dovecot, imap_user, [message.uid], "+FLAGS", "(Invoices Travel $Forwarded $label1 mh_spam)")
    run_sync(synced)
    assigned = {a.tag.name: a.source for a in TagAssignment.objects.select_related("tag")}
    assert assigned == {"Invoices": "server", "Travel": "server"}  # Travel made; system and category skipped
    assert not PendingAction.objects.exists()  # read back, not written back

    srv.store(dovecot, imap_user, [message.uid], "-FLAGS", "(Invoices)")
    run_sync(synced)
    assert not TagAssignment.objects.filter(tag=invoices).exists()
    assert TagAssignment.objects.filter(tag__name="Travel").exists()
    assert not PendingAction.objects.exists()


def test_new_mail_arriving_with_keywords_is_tagged(dovecot, imap_user, alice, synced):
    opt_in(alice.user)
    dovecot.deliver(imap_user, make_raw(3))
    uid = max(srv.server_flags(dovecot, imap_user))
    srv.store(dovecot, imap_user, [uid], "+FLAGS", "(Family)")
    run_sync(synced)
    assert TagAssignment.objects.get(message__uid=uid).tag.name == "Family"


def test_opted_out_user_queues_nothing_and_reads_nothing_back(dovecot, imap_user, alice, synced):
    message = Message.objects.order_by("uid").first()
    work = Tag.objects.create(owner=alice.user, name="Work")
    service.assign(alice.user.pk, work, [message])
    service.unassign(alice.user.pk, work, [message])
    assert not PendingAction.objects.exists()
    srv.store(dovecot, imap_user, [message.uid], "+FLAGS", "(Family)")
    run_sync(synced)
    assert not TagAssignment.objects.exists() and not Tag.objects.filter(name="Family").exists()


def test_folder_without_keyword_permission_queues_nothing(alice, synced):
    opt_in(alice.user)
    synced.folders.update(keywords_allowed=False)
    message = Message.objects.first()
    service.assign(alice.user.pk, Tag.objects.create(owner=alice.user, name="Work"), [message])
    assert TagAssignment.objects.exists() and not PendingAction.objects.exists()


def test_a_keyword_another_tag_still_needs_stays(alice, synced):
    opt_in(alice.user)
    message = Message.objects.first()
    one, two = (Tag.objects.create(owner=alice.user, name=n) for n in ("a b", "a_b"))
    service.assign(alice.user.pk, one, [message])
    service.assign(alice.user.pk, two, [message])
    service.unassign(alice.user.pk, one, [message])
    assert list(PendingAction.objects.values_list("kind", "keyword")) == [("add_keyword", "a_b")]


def test_rule_and_accepted_suggestion_tags_are_written(alice, synced):
    opt_in(alice.user)
    first, second = Message.objects.order_by("uid")
    auto = Tag.objects.create(owner=alice.user, name="Auto")
    service.assign(alice.user.pk, auto, [first], source=TagAssignment.Source.RULE)
    suggestion = auto.suggestions.create(owner=alice.user, message=second, score=0.9)
    service.decide(alice.user.pk, [suggestion], accept=True)
    assert sorted(PendingAction.objects.values_list("message_id", "keyword")) == sorted(
        [(first.pk, "Auto"), (second.pk, "Auto")]
    )


def test_category_keyword_follows_the_analysis_and_the_correction(dovecot, imap_user, alice, synced):
    opt_in(alice.user)
    message = Message.objects.order_by("uid").first()
    analysis = MessageAnalysis.objects.get(message=message)
    analysis.category = analysis.final_category = "newsletter"
    analysis.save()
    from analysis import stages

    stages.show_category_keywords(alice.user.pk, [message])
    stages.show_category_keywords(alice.user.pk, [message])  # idempotent
    assert list(PendingAction.objects.values_list("keyword", flat=True)) == ["mh_newsletter"]
    correct(analysis, category="reply_expected")
    assert actions.write_back(synced.pk) == (3, 0)
    flags = srv.server_flags(dovecot, imap_user)[message.uid]
    assert "mh_reply_expected" in flags and "mh_newsletter" not in flags
    run_sync(synced)
    assert not TagAssignment.objects.exists()  # a category keyword is no tag


def test_settings_page_shows_the_mapping_and_switches_it_on(alice, bob):
    Tag.objects.create(owner=alice.user, name="To do")
    Tag.objects.create(owner=bob.user, name="Secret plans")
    client = verified_client(alice)
    page = client.get(reverse("tags:list")).content.decode()
    assert "To_do" in page and "mh_reply_expected" in page and "Secret_plans" not in page
    assert "Off: nothing is written" in page
    assert "keywords on your mail server: off" in client.get(reverse("accounts:settings")).content.decode()
    client.post(reverse("tags:settings"), {"settings-auto_apply_threshold": "0.8", "settings-server_keywords": "on"})
    assert TagSettings.objects.get(owner=alice.user).server_keywords
    assert "On: your other mail apps see these keywords" in client.get(reverse("tags:list")).content.decode()
    assert "keywords on your mail server: on" in client.get(reverse("accounts:settings")).content.decode()


def test_another_users_message_gets_no_keyword(alice, bob, synced):
    opt_in(alice.user)
    opt_in(bob.user)
    message = Message.objects.first()
    bob_tag = Tag.objects.create(owner=bob.user, name="mine")
    bob_client = verified_client(bob)
    bob_client.post(reverse("tags:apply"), {"tag": bob_tag.pk, "ids": [str(message.pk)]})
    alice_tag = Tag.objects.create(owner=alice.user, name="Work")
    bob_client.post(reverse("tags:apply"), {"tag": alice_tag.pk, "ids": [str(message.pk)]})
    assert bob_client.get(reverse("tags:edit", args=[alice_tag.pk])).status_code == 404
    assert not TagAssignment.objects.exists() and not PendingAction.objects.exists()


def test_renaming_a_tag_moves_its_keyword_and_deleting_it_removes_it(dovecot, imap_user, alice, synced):
    opt_in(alice.user)
    message = Message.objects.order_by("uid").first()
    tag = Tag.objects.create(owner=alice.user, name="Work")
    service.assign(alice.user.pk, tag, [message])
    client = verified_client(alice)
    client.post(reverse("tags:edit", args=[tag.pk]), {"name": "Job search", "color": "#112233", "description": ""})
    assert actions.write_back(synced.pk) == (3, 0)
    flags = srv.server_flags(dovecot, imap_user)[message.uid]
    assert "Job_search" in flags and "Work" not in flags

    client.post(reverse("tags:delete", args=[tag.pk]))
    assert not Tag.objects.exists()
    assert actions.write_back(synced.pk) == (1, 0)
    assert "Job_search" not in srv.server_flags(dovecot, imap_user)[message.uid]
    run_sync(synced)
    assert not Tag.objects.exists()  # the removal is no news to the sync either


def test_switching_on_catches_up_once(
    dovecot, imap_user, alice, synced, monkeypatch, django_capture_on_commit_callbacks
):
    first, second = Message.objects.order_by("uid")
    work = Tag.objects.create(owner=alice.user, name="Work")
    service.assign(alice.user.pk, work, [first])  # while off: nothing queued
    srv.store(dovecot, imap_user, [second.uid], "+FLAGS", "(Family $MDNSent)")
    run_sync(synced)  # while off: the keyword is held, not read back
    assert not PendingAction.objects.exists() and not Tag.objects.filter(name="Family").exists()

    from tags import tasks

    queued = []
    monkeypatch.setattr(tasks.keywords_catch_up, "delay", queued.append)
    client = verified_client(alice)
    form = {"settings-auto_apply_threshold": "0.8", "settings-server_keywords": "on"}
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("tags:settings"), form)
        client.post(reverse("tags:settings"), form)  # already on: no second catch-up
    assert queued == [alice.user.pk]

    assert keywords.catch_up(alice.user.pk) == (1, 1)
    assert TagAssignment.objects.get(message=second).tag.name == "Family"
    assert keywords.catch_up(alice.user.pk) == (0, 0)  # repeatable
    assert actions.write_back(synced.pk) == (1, 0)
    assert "Work" in srv.server_flags(dovecot, imap_user)[first.uid]
    assert run_sync(synced).messages_updated == 0
