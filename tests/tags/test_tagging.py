"""Tags end to end: CRUD, tagging one and many, filters, suggestions that learn, auto-apply, scoping."""

import pytest
from django.urls import reverse

from analysis import tasks as analysis_tasks
from mail.models import Message
from tags.models import Tag, TagAssignment, TagModelState, TagSettings, TagSuggestion
from tests.plugins.accounts import verified_client
from tests.plugins.mail import create_account, make_raw, run_sync

pytestmark = pytest.mark.django_db


def invoice(n):
    return make_raw(
        n,
        subject=f"Invoice {1000 + n} for your order",
        sender="billing@shop.example",
        body_kb=0,
    ).replace(b"Hello,", b"Hello, please find attached invoice number and the amount due, payment terms 30 days.")


def travel(n):
    return make_raw(n, subject=f"Your flight booking {n}", sender="noreply@airline.example", body_kb=0).replace(
        b"Hello,", b"Hello, your flight and hotel booking is confirmed, boarding pass and itinerary attached."
    )


@pytest.fixture
def mailbox(dovecot, imap_user, alice):
    account = create_account(alice.user, imap_user, dovecot)
    for i in range(1, 5):
        dovecot.deliver(imap_user, invoice(i))
        dovecot.deliver(imap_user, travel(100 + i))
    run_sync(account)
    analysis_tasks.analyse_account(str(account.pk))
    return account


def test_tag_crud_with_unique_names_and_confirmation(alice_client, alice):
    alice_client.post(
        reverse("tags:list"), {"tag-name": "Invoices", "tag-color": "#aa3300", "tag-description": "bills"}
    )
    tag = Tag.objects.get(owner=alice.user)
    page = alice_client.post(reverse("tags:list"), {"tag-name": "invoices", "tag-color": "#aa3300"}).content.decode()
    assert "already have a tag" in page
    alice_client.post(reverse("tags:edit", args=[tag.pk]), {"name": "Bills", "color": "#112233", "description": ""})
    tag.refresh_from_db()
    assert (tag.name, tag.color) == ("Bills", "#112233")
    assert "Delete the tag" in alice_client.get(reverse("tags:delete", args=[tag.pk])).content.decode()
    alice_client.post(reverse("tags:delete", args=[tag.pk]))
    assert not Tag.objects.filter(pk=tag.pk).exists()


def test_tagging_one_and_many_and_filtering(alice_client, alice, mailbox):
    work = Tag.objects.create(owner=alice.user, name="work")
    money = Tag.objects.create(owner=alice.user, name="money")
    invoices = list(Message.objects.filter(account=mailbox, from_address="billing@shop.example"))
    ids = [str(m.pk) for m in invoices]
    alice_client.post(reverse("tags:apply"), {"tag": money.pk, "ids": ids})
    alice_client.post(reverse("tags:apply"), {"tag": work.pk, "ids": ids[:2]})
    assert TagAssignment.objects.filter(tag=money, source="manual").count() == 4
    listing = alice_client.get(reverse("mail:list") + f"?tag={money.pk}&tag={work.pk}").content.decode()
    assert listing.count('data-message="') == 2
    alice_client.post(reverse("tags:apply"), {"tag": work.pk, "ids": ids[:1], "remove": "1"})
    assert TagAssignment.objects.filter(tag=work).count() == 1
    detail = alice_client.get(reverse("mail:message", args=[invoices[1].pk])).content.decode()
    assert "Remove tag work" in detail and "Remove tag money" in detail
    assert TagModelState.objects.get(tag=money).positives == 4


def test_suggestions_appear_and_learn_from_accepts_and_rejects(alice_client, alice, dovecot, imap_user, mailbox):
    money = Tag.objects.create(owner=alice.user, name="money")
    invoices = list(Message.objects.filter(account=mailbox, from_address="billing@shop.example").order_by("uid"))
    alice_client.post(reverse("tags:apply"), {"tag": money.pk, "ids": [str(m.pk) for m in invoices[:3]]})

    dovecot.deliver(imap_user, invoice(50))
    dovecot.deliver(imap_user, travel(150))
    run_sync(mailbox)
    analysis_tasks.analyse_account(str(mailbox.pk))
    suggested = TagSuggestion.objects.filter(tag=money, state="open")
    assert [s.message.subject for s in suggested] == ["Invoice 1050 for your order"]
    queue = alice_client.get(reverse("tags:suggestions")).content.decode()
    assert "Invoice 1050 for your order" in queue and "flight" not in queue

    suggestion = suggested.get()
    alice_client.post(reverse("tags:decide"), {"ids": [suggestion.pk], "decision": "accept"})
    assert TagAssignment.objects.filter(tag=money, message=suggestion.message, source="suggestion").exists()
    state = TagModelState.objects.get(tag=money)
    assert (state.positives, state.negatives) == (4, 0)

    # Auto-apply once confident.
    TagSettings.objects.update_or_create(owner=alice.user, defaults={"auto_apply": True, "auto_apply_threshold": 0.6})
    dovecot.deliver(imap_user, invoice(51))
    run_sync(mailbox)
    analysis_tasks.analyse_account(str(mailbox.pk))
    auto = [a for a in TagAssignment.objects.filter(tag=money) if a.message.subject == "Invoice 1051 for your order"]
    assert len(auto) == 1 and auto[0].source == "suggestion" and auto[0].confidence >= 0.6


def test_rejections_count_as_negative_examples(alice_client, alice, mailbox):
    money = Tag.objects.create(owner=alice.user, name="money")
    invoices = list(Message.objects.filter(account=mailbox, from_address="billing@shop.example"))
    alice_client.post(reverse("tags:apply"), {"tag": money.pk, "ids": [str(invoices[0].pk)]})
    suggestions = [
        TagSuggestion.objects.create(owner=alice.user, tag=money, message=m, score=0.5) for m in invoices[1:3]
    ]
    alice_client.post(reverse("tags:decide"), {"ids": [s.pk for s in suggestions], "decision": "reject"})
    state = TagModelState.objects.get(tag=money)
    assert (state.positives, state.negatives) == (1, 2)
    assert not TagAssignment.objects.filter(message__in=invoices[1:3]).exists()


def test_another_users_tags_and_suggestions_are_out_of_reach(alice, bob, mailbox):
    money = Tag.objects.create(owner=alice.user, name="money")
    message = Message.objects.filter(account=mailbox).first()
    suggestion = TagSuggestion.objects.create(owner=alice.user, tag=money, message=message, score=0.9)
    bob_client = verified_client(bob)
    assert bob_client.get(reverse("tags:edit", args=[money.pk])).status_code == 404
    assert bob_client.post(reverse("tags:delete", args=[money.pk])).status_code == 404
    bob_client.post(reverse("tags:apply"), {"tag": money.pk, "ids": [str(message.pk)]})
    bob_tag = Tag.objects.create(owner=bob.user, name="mine")
    bob_client.post(reverse("tags:apply"), {"tag": bob_tag.pk, "ids": [str(message.pk)]})
    bob_client.post(reverse("tags:decide"), {"ids": [suggestion.pk], "decision": "accept"})
    assert not TagAssignment.objects.exists()
    suggestion.refresh_from_db()
    assert suggestion.state == "open"
    assert "money" not in bob_client.get(reverse("tags:suggestions")).content.decode()
