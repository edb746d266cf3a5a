"""manage.py import_legacy against a legacy SQLite file built like the legacy application wrote it.

Real PostgreSQL, Redis and (for the first login) a real Celery worker; the legacy values are really
encrypted in the legacy format, so the conversion has to derive the legacy key from the password.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import DataKeyWrap, User
from analysis.models import MessageAnalysis, MessageTranslation, TrustedSender
from legacy.mappers.mail import FIRST_SYNC_COLUMNS
from legacy.models import LegacyImportMap, LegacyRecord, LegacySealedValue, LegacyUserKey
from mail.models import Attachment, Folder, MailAccount, Message, ReplySettings
from mail.search_tokens import search_key_for
from mail.threading_keys import subject_hash
from rules.models import Rule, RuleLog
from tags.models import Tag, TagAssignment, TagSuggestion
from tests.plugins.accounts import create_test_user, totp_code, verified_client

from .legacy_db import LegacyDB, LegacyUser

pytestmark = pytest.mark.django_db

SUBJECT = "Quarterly numbers für März"
BODY = "Hello Alice,\n\nthe quarterly numbers are attached.\nGrüße, Bob"
TABLES = [
    "users",
    "mail_accounts",
    "email_folders",
    "raw_emails",
    "mail_server_state",
    "email_attachments",
    "processed_emails",
    "email_tags",
    "email_tag_assignments",
    "tag_suggestion_queue",
    "tag_negative_examples",
    "sender_patterns",
    "trusted_senders",
    "auto_rules",
    "rule_execution_logs",
    "reply_style_settings",
]


@dataclass
class Legacy:
    path: Path
    alice: LegacyUser
    bob: LegacyUser
    ids: dict


def _build(path: Path) -> Legacy:
    db = LegacyDB(path)
    alice = db.add_user("alice_legacy", "alice legacy password 1", method="scrypt")
    bob = db.add_user("bob_legacy", "bob legacy password 22", totp=False, method="pbkdf2")
    ids = {}
    account = db.insert(
        "mail_accounts",
        user_id=alice.id,
        name="Work",
        auth_type="password",
        encrypted_imap_server=db.enc(alice, "imap.example.test"),
        imap_port=993,
        encrypted_imap_username=db.enc(alice, "alice@example.test"),
        encrypted_imap_password=db.enc(alice, "s3cret imap"),
        imap_encryption="SSL",
        encrypted_smtp_server=db.enc(alice, "smtp.example.test"),
        smtp_port=587,
        encrypted_smtp_username=db.enc(alice, "alice@example.test"),
        encrypted_smtp_password=db.enc(alice, "s3cret smtp"),
        smtp_encryption="STARTTLS",
        enabled=1,
        initial_sync_done=1,
        created_at="2024-03-02 09:00:00",
        folder_uidvalidity={"INBOX": 1700000001},
        encrypted_signature_text=db.enc(alice, "-- Alice"),
        encrypted_pop3_password=db.enc(alice, "pop3 secret"),
        encrypted_oauth_token=db.enc(alice, "oauth secret"),
        last_fetch_at="2024-05-01T10:00:00",
        fetch_since_date="2023-01-01",
        fetch_unseen_only=0,
        enable_ai_analysis_on_fetch=0,
        urgency_booster_enabled=1,
    )
    bob_account = db.insert(
        "mail_accounts",
        user_id=bob.id,
        name="Work",
        imap_port=143,
        imap_encryption="none",
        encrypted_imap_server=db.enc(bob, "mail.bob.test"),
        enabled=0,
        fetch_unseen_only=1,
        urgency_booster_enabled=0,
    )
    db.insert(
        "email_folders",
        user_id=alice.id,
        mail_account_id=account,
        name="Inbox",
        imap_path="INBOX",
        is_special_folder=1,
        special_folder_type="inbox",
        unread_count=1,
    )
    db.insert(
        "email_folders",
        user_id=alice.id,
        mail_account_id=account,
        name="Archive",
        imap_path="Archive",
        is_special_folder=1,
        special_folder_type="archive",
    )
    db.insert("email_folders", user_id=bob.id, mail_account_id=bob_account, name="INBOX", imap_path="INBOX")
    raw = db.insert(
        "raw_emails",
        user_id=alice.id,
        mail_account_id=account,
        encrypted_sender=db.enc(alice, "Bob Sender <Bob@Example.test>"),
        encrypted_subject=db.enc(alice, SUBJECT),
        encrypted_body=db.enc(alice, BODY),
        received_at="2024-04-02 12:30:00",
        created_at="2024-04-02 12:31:00",
        imap_uid=41,
        imap_folder="INBOX",
        imap_uidvalidity=1700000001,
        imap_flags="\\Seen",
        message_id="<q1@example.test>",
        imap_is_seen=1,
        imap_is_answered=0,
        imap_is_flagged="t",
        imap_is_deleted=0,
        imap_is_draft=0,
        encrypted_to=db.enc(alice, "Alice <alice@example.test>, carol@example.test"),
        encrypted_cc=db.enc(alice, ""),
        encrypted_bcc=db.enc(alice, "secret-bcc@example.test"),
        encrypted_reply_to=db.enc(alice, "Bob Desk <desk@example.test>"),
        message_size=2048,
        has_attachments=1,
        encrypted_references=db.enc(alice, "<root@example.test> <q0@example.test>"),
        encrypted_in_reply_to=db.enc(alice, "<q0@example.test>"),
        email_embedding=b"\x00\x01",
        encrypted_translation_de=db.enc(alice, "Hallo Alice"),
        detected_language="fr",
        translation_engine="deepl",
        processing_error="timeout while summarising 'Quarterly numbers für März'",
        processing_status=3,
    )
    ids["raw"] = raw
    raw2 = db.insert(
        "raw_emails",
        user_id=alice.id,
        mail_account_id=account,
        encrypted_sender=db.enc(alice, "news@shop.test"),
        encrypted_subject=db.enc(alice, "Weekly offers"),
        encrypted_body=db.enc(alice, "<html><body><p>Big <b>sale</b></p></body></html>"),
        received_at="2024-04-03 07:00:00",
        imap_uid=42,
        imap_folder="INBOX",
        imap_uidvalidity=1700000001,
        message_id="<offer@shop.test>",
        imap_is_seen=0,
        has_attachments=0,
    )
    # A copy of the same server message (the legacy re-fetched it): kept as a record, not a second Message.
    db.insert(
        "raw_emails",
        user_id=alice.id,
        mail_account_id=account,
        encrypted_subject=db.enc(alice, "Weekly offers"),
        imap_uid=42,
        imap_folder="INBOX",
        imap_uidvalidity=1700000001,
        received_at="2024-04-03 07:00:00",
    )
    # Invalid: a flag that is no boolean (reported, the import goes on); an epoch timestamp is fine.
    db.insert("trusted_senders", user_id=alice.id, sender_pattern="x@y.test", use_urgency_booster="maybe")
    db.insert("trusted_senders", user_id=bob.id, sender_pattern="boss@bob.test", added_at=1712000000)
    # Orphan: its account does not exist.
    db.insert("raw_emails", user_id=alice.id, mail_account_id=999, encrypted_subject=db.enc(alice, "lost"), imap_uid=1)
    bob_raw = db.insert(
        "raw_emails",
        user_id=bob.id,
        mail_account_id=bob_account,
        encrypted_subject=db.enc(bob, "Bob's own mail"),
        encrypted_body=db.enc(bob, "private to bob"),
        imap_uid=7,
        imap_folder="INBOX",
        imap_uidvalidity=5,
        received_at="2024-01-01 00:00:00",
    )
    ids["bob_raw"] = bob_raw
    db.insert(
        "mail_server_state",
        user_id=alice.id,
        mail_account_id=account,
        folder="INBOX",
        uid=41,
        uidvalidity=1700000001,
        raw_email_id=raw,
        envelope_subject=SUBJECT,
        envelope_from="bob@example.test",
        is_deleted=0,
        flags="\\Seen",
    )
    db.insert(
        "mail_server_state",
        user_id=alice.id,
        mail_account_id=account,
        folder="INBOX",
        uid=40,
        uidvalidity=1700000001,
        envelope_subject="never fetched",
        is_deleted=1,
    )
    db.insert(
        "email_attachments",
        raw_email_id=raw,
        filename="numbers.csv",
        mime_type="text/csv",
        size=11,
        encrypted_data=db.enc(alice, "YSxiCjEsMgo="),
        created_at="2024-04-02 12:31:00",
    )
    processed = db.insert(
        "processed_emails",
        raw_email_id=raw,
        dringlichkeit=3,
        wichtigkeit=2,
        kategorie_aktion="aktion_erforderlich",
        spam_flag=0,
        encrypted_summary_de=db.enc(alice, "Bob sends the quarterly numbers."),
        score=8,
        done=0,
        processed_at="2024-04-02 12:35:00",
        analysis_method="llm_anon",
        ai_confidence=0.82,
        user_override_wichtigkeit=3,
        optimize_dringlichkeit=2,
        optimize_encrypted_summary_de=db.enc(alice, "optimised summary"),
    )
    processed2 = db.insert(
        "processed_emails",
        raw_email_id=raw2,
        dringlichkeit=1,
        wichtigkeit=1,
        kategorie_aktion="nur_information",
        spam_flag="f",
        done=1,
        done_at="2024-04-04 08:00:00",
        processed_at="2024-04-03 07:05:00",
    )
    finance = db.insert(
        "email_tags", user_id=alice.id, name="Finance", color="#12ab34", created_at="2024-03-05 10:00:00"
    )
    db.insert("email_tags", user_id=alice.id, name="finance", color="red")  # same name but for the case: renamed
    newsletter = db.insert("email_tags", user_id=alice.id, name="Newsletter", color="#aaaaaa")
    db.insert(
        "email_tag_assignments", email_id=processed, tag_id=finance, assigned_at="2024-04-02 13:00:00", auto_assigned=0
    )
    db.insert("email_tag_assignments", email_id=processed2, tag_id=newsletter, auto_assigned=1)
    ids["twice_tagged"] = db.insert("email_tag_assignments", email_id=processed2, tag_id=newsletter, auto_assigned=0)
    db.insert(
        "tag_suggestion_queue",
        user_id=alice.id,
        suggested_name="Quarterly",
        source_email_id=processed,
        status="pending",
        suggestion_count=2,
        created_at="2024-04-02 12:40:00",
    )
    db.insert("tag_negative_examples", tag_id=newsletter, email_id=processed, rejection_source="user")
    ids["twice_rejected"] = db.insert("tag_negative_examples", tag_id=newsletter, email_id=processed)
    db.insert(
        "sender_patterns",
        user_id=alice.id,
        sender_hash="ab" * 32,
        category="newsletter",
        priority=1,
        is_newsletter=1,
        email_count=12,
        confidence=80,
    )
    db.insert(
        "trusted_senders",
        user_id=alice.id,
        account_id=account,
        sender_pattern="example.test",
        pattern_type="domain",
        label="Colleagues",
        use_urgency_booster=1,
        added_at="2024-03-03 00:00:00",
    )
    rule_ok = db.insert(
        "auto_rules",
        user_id=alice.id,
        name="Finance mail",
        is_active=1,
        priority=1,
        conditions_json={
            "match_mode": "any",
            "sender_domain": "example.test",
            "subject_contains": ["numbers", "invoice"],
        },
        actions_json={"apply_tag": finance, "mark_as_read": True, "move_to_folder": "Archive", "stop_processing": True},
        times_triggered=3,
        created_at="2024-03-04 00:00:00",
    )
    ids["rule_ok"] = rule_ok
    db.insert(
        "auto_rules",
        user_id=alice.id,
        name="Odd rule",
        is_active=1,
        priority=2,
        conditions_json={"match_mode": "all", "subject_contains": "offer", "sender_in_contacts": True},
        actions_json={"set_priority": "high", "forward_to": "x@example.test"},
    )
    db.insert(
        "auto_rules",
        user_id=alice.id,
        name="Nothing known",
        is_active=1,
        conditions_json={"header_x_spam": "yes"},
        actions_json={"mark_as_flagged": True},
    )
    db.insert(
        "rule_execution_logs",
        user_id=alice.id,
        mail_account_id=account,
        rule_id=rule_ok,
        processed_email_id=processed,
        executed_at="2024-04-02 12:36:00",
        success=1,
        action_type="apply_tag",
    )
    db.insert(
        "rule_execution_logs",
        user_id=alice.id,
        rule_id=rule_ok,
        processed_email_id=processed,
        executed_at="2024-04-02 12:36:01",
        success=1,
        action_type="mark_as_read",
    )
    db.insert(
        "reply_style_settings",
        user_id=alice.id,
        style_key="formal",
        address_form="Sie",
        salutation="Guten Tag",
        closing="Mit freundlichen Grüßen",
        signature_enabled=1,
        encrypted_signature_text=db.enc(alice, "Alice A."),
        encrypted_custom_instructions=db.enc(alice, "Always answer in German."),
    )
    db.insert("reply_style_settings", user_id=alice.id, style_key="casual", address_form="du", salutation="Hallo")
    db.insert("recovery_codes", user_id=alice.id, code_hash="pbkdf2:sha256:1$x$00", created_at="2024-03-01 08:16:00")
    db.close()
    return Legacy(path, alice, bob, ids)


@pytest.fixture(scope="session")
def _legacy_template(tmp_path_factory) -> Legacy:
    return _build(tmp_path_factory.mktemp("legacy") / "legacy.sqlite")


@pytest.fixture
def legacy(_legacy_template, tmp_path) -> Legacy:
    path = tmp_path / "legacy.sqlite"
    shutil.copy(_legacy_template.path, path)
    return Legacy(path, _legacy_template.alice, _legacy_template.bob, _legacy_template.ids)


def run_import(*args: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("import_legacy", *args, stdout=out, stderr=err, no_color=True)
    except CommandError as exc:
        return exc.returncode, out.getvalue() + str(exc)
    return 0, out.getvalue()


def status_of(output: str, table: str) -> str:
    line = next(line for line in output.splitlines() if line.startswith(table + " "))
    return line.split()[-1]


def counts() -> dict[str, int]:
    models = [
        User,
        MailAccount,
        Folder,
        Message,
        Attachment,
        MessageAnalysis,
        Tag,
        TagAssignment,
        TagSuggestion,
        TrustedSender,
        Rule,
        RuleLog,
        LegacyRecord,
        LegacySealedValue,
        LegacyImportMap,
        TOTPDevice,
    ]
    return {m.__name__: m.objects.count() for m in models}


def test_import_checksums_match_and_a_rerun_imports_nothing_twice(legacy):
    code, output = run_import("--sqlite", str(legacy.path))
    assert code == 0, output
    for table in TABLES:
        assert status_of(output, table) == "OK", output
    assert output.splitlines()[[line.split(" ")[0] for line in output.splitlines()].index("recovery_codes")].endswith(
        "NOT IMPORTED"
    )
    assert "recovery_codes: not imported by design" in output
    assert "raw_emails: 1 x orphan: mail_account_id points to a missing mail_accounts row [4]" in output
    assert "raw_emails: 1 x kept as legacy record: the same server message twice [3]" in output
    twice_tagged, twice_rejected = legacy.ids["twice_tagged"], legacy.ids["twice_rejected"]
    assert (
        f"email_tag_assignments: 1 x kept as legacy record: the same tag on the same message twice [{twice_tagged}]"
        in output
    )
    assert f"tag_negative_examples: 1 x kept as legacy record: the same rejection twice [{twice_rejected}]" in output
    assert "All checksums match." in output
    assert "trusted_senders: 1 x invalid value: trusted_senders.use_urgency_booster (not a boolean) [" in output
    assert TrustedSender.objects.get(pattern="boss@bob.test").created_at.isoformat() == "2024-04-01T19:33:20+00:00"
    assert not LegacyRecord.objects.filter(table="reply_style_settings", data__icontains="Hallo").exists()

    first = counts()
    assert first["User"] == 2 and first["MailAccount"] == 2 and first["Message"] == 3 and first["Rule"] == 2
    alice = User.objects.get(username="alice_legacy")
    assert alice.password.startswith("wz$scrypt:32768:8:1$") and len(alice.password) <= 128
    assert DataKeyWrap.objects.filter(user=alice, kind="sync").exists()
    assert not DataKeyWrap.objects.filter(user=alice, kind="password").exists()
    message = Message.objects.get(owner=alice, uid=41)
    assert (message.seen, message.flagged, message.answered) == (True, True, False)  # 1, 't' and 0
    assert message.date.isoformat() == "2024-04-02T12:30:00+00:00"  # naive legacy time is UTC
    assert message.message_id == "q1@example.test" and message.subject == ""  # content still sealed
    assert Folder.objects.get(account__owner=alice, name="INBOX").uidvalidity == 1700000001
    account = MailAccount.objects.get(owner=alice)
    assert (account.enabled, account.status, account.imap_security, account.smtp_security) == (
        False,
        "locked",
        "ssl",
        "starttls",
    )
    analysis = MessageAnalysis.objects.get(message=message)
    assert (analysis.urgency, analysis.importance, analysis.final_importance, analysis.category) == (
        3,
        2,
        3,
        "action_required",
    )
    assert Tag.objects.filter(owner=alice).count() == 3 and Tag.objects.filter(name="finance (2)").exists()
    assert TagSuggestion.objects.get(owner=alice).state == "rejected"
    assert TrustedSender.objects.get(owner=alice).pattern == "@example.test"  # the invalid one is not there
    assert RuleLog.objects.filter(owner=alice).count() == 1  # the second log of the same rule and message is a record
    # The plain envelope subject of the server state is mail content: never stored in clear.
    assert not LegacyRecord.objects.filter(data__icontains="numbers für").exists()
    assert not LegacyRecord.objects.filter(data__icontains="never fetched").exists()
    assert not LegacyRecord.objects.filter(data__icontains="summarising").exists()

    code, again = run_import("--sqlite", str(legacy.path))
    assert code == 0, again
    assert counts() == first
    assert all(status_of(again, t) == "OK" for t in TABLES)
    assert again == output  # the same table and the same explanations


def test_unknown_rule_keys_are_reported_and_the_rule_is_kept_disabled(legacy):
    code, output = run_import("--sqlite", str(legacy.path))
    assert code == 0, output
    for key in ("conditions.sender_in_contacts", "actions.forward_to", "conditions.header_x_spam"):
        assert re.search(rf"auto_rules #\d+ \([^)]*\): {re.escape(key)}", output), output
    ok = Rule.objects.get(name="Finance mail")
    assert ok.enabled
    assert ok.definition["match"] == "any"
    assert {(c["field"], c["op"], c["value"]) for c in ok.definition["conditions"]} == {
        ("from", "domain", "example.test"),
        ("subject", "contains", "numbers"),
        ("subject", "contains", "invoice"),
    }
    finance = Tag.objects.get(name="Finance")
    archive = Folder.objects.get(name="Archive")
    assert {(a["type"], a["value"]) for a in ok.definition["actions"]} == {
        ("add_tag", finance.pk),
        ("mark_read", None),
        ("move", archive.pk),
        ("stop", None),
    }
    odd = Rule.objects.get(name="Odd rule")
    assert not odd.enabled
    entry = LegacyImportMap.objects.get(table="auto_rules", target_pk=str(odd.pk))
    assert entry.note["unconverted"] == {"conditions.sender_in_contacts": True, "actions.forward_to": "x@example.test"}
    assert {a["type"] for a in odd.definition["actions"]} == {"set_urgency", "set_importance"}
    # No condition known at all: not a rule, but kept whole.
    assert not Rule.objects.filter(name="Nothing known").exists()
    assert LegacyRecord.objects.filter(table="auto_rules", data__name="Nothing known").exists()


def test_dry_run_validates_and_writes_nothing(legacy):
    code, output = run_import("--sqlite", str(legacy.path), "--dry-run")
    assert code == 0, output
    assert status_of(output, "raw_emails") == "DRY-RUN"
    assert "conditions.sender_in_contacts" in output and "orphan" in output
    assert "Dry run: nothing written." in output
    assert all(n == 0 for n in counts().values()), counts()
    # After an import, a dry run sees the imported rows as imported (nothing to skip or predict).
    assert run_import("--sqlite", str(legacy.path))[0] == 0
    before = counts()
    code, output = run_import("--sqlite", str(legacy.path), "--dry-run")
    assert code == 0 and counts() == before
    users = next(line for line in output.splitlines() if line.startswith("users "))
    assert users.split()[1:4] == ["2", "0", "0"], output


def test_a_missing_legacy_table_is_an_error(tmp_path):
    from legacy import schema

    LegacyDB(tmp_path / "partial.sqlite", {"users": schema.TABLES["users"]}).close()
    code, output = run_import("--sqlite", str(tmp_path / "partial.sqlite"))
    assert code == 2 and "lacks tables" in output
    assert User.objects.count() == 0


def test_a_tampered_or_missing_row_makes_the_checksums_fail(legacy):
    assert run_import("--sqlite", str(legacy.path))[0] == 0
    Message.objects.filter(uid=42).update(flagged=True)  # a target value changed behind the import's back
    code, output = run_import("--sqlite", str(legacy.path))
    assert code == 1 and status_of(output, "raw_emails") == "MISMATCH", output
    assert status_of(output, "users") == "OK"
    Message.objects.filter(uid=42).update(flagged=False)
    Tag.objects.filter(name="Newsletter").delete()  # a target row gone (and what hung on it)
    code, output = run_import("--sqlite", str(legacy.path))
    assert code == 1 and status_of(output, "email_tags") == "MISMATCH"
    assert "checksums differ" in output


def test_a_changed_source_row_makes_the_checksums_fail(legacy):
    assert run_import("--sqlite", str(legacy.path))[0] == 0
    with sqlite3.connect(legacy.path) as conn:
        conn.execute("update email_folders set special_folder_type = 'sent' where imap_path = 'Archive'")
    code, output = run_import("--sqlite", str(legacy.path))
    assert code == 1 and status_of(output, "email_folders") == "MISMATCH", output


def test_legacy_password_hashes_verify_and_are_replaced_on_first_check(db):
    from accounts.hashers import from_werkzeug

    from .legacy_db import werkzeug_hash

    for method in ("scrypt", "pbkdf2"):
        user = User.objects.create(username=f"u-{method}", email=f"{method}@x.test")
        user.password = from_werkzeug(werkzeug_hash("right password", method))
        user.save()
        assert not user.check_password("wrong password")
        assert user.password.startswith("wz$")
        assert user.check_password("right password")
        user.refresh_from_db()
        assert not user.password.startswith("wz$")  # re-hashed with the preferred hasher
        assert user.check_password("right password")


def test_waiting_messages_are_marked_until_conversion(legacy, bob):
    assert run_import("--sqlite", str(legacy.path))[0] == 0
    client = Client()
    response = client.post(reverse("accounts:login"), {"username": "alice_legacy", "password": legacy.alice.password})
    assert response.status_code == 302  # no worker and no commit here: the conversion has not run
    device = TOTPDevice.objects.get(user__username="alice_legacy")
    response = client.post(reverse("accounts:2fa-verify"), {"token": totp_code(device)}, follow=True)
    assert response.status_code == 200
    page = client.get(reverse("mail:list")).content.decode()
    assert page.count("Imported, waiting for first login…") == 2
    message = Message.objects.get(uid=41)
    detail = client.get(reverse("mail:message", args=[message.pk])).content.decode()
    assert "waiting for first login" in detail
    # Other users see nothing of it, and their pages carry no marker.
    assert verified_client(bob).get(reverse("mail:message", args=[message.pk])).status_code == 404


@pytest.mark.django_db(transaction=True)
def test_first_login_converts_the_legacy_data_with_a_real_worker(legacy, celery_worker):
    assert run_import("--sqlite", str(legacy.path))[0] == 0
    mallory = create_test_user("mallory")
    alice_message = Message.objects.get(uid=41)
    bob_message = Message.objects.get(uid=7)

    client = Client()
    wrong = client.post(reverse("accounts:login"), {"username": "alice_legacy", "password": "not it"})
    assert wrong.status_code == 200 and not cache.get(f"legacy-dek:{User.objects.get(username='alice_legacy').pk}")
    response = client.post(reverse("accounts:login"), {"username": "alice_legacy", "password": legacy.alice.password})
    assert response.status_code == 302 and "2fa/verify" in response["Location"]
    device = TOTPDevice.objects.get(user__username="alice_legacy")
    # The authenticator the user already has (the legacy secret) keeps working.
    assert device.bin_key.hex() == __import__("base64").b32decode(legacy.alice.totp_secret).hex()
    code = str(totp(device.bin_key)).zfill(6)
    assert client.post(reverse("accounts:2fa-verify"), {"token": code}).status_code == 302

    alice = User.objects.get(username="alice_legacy")
    assert not alice.password.startswith("wz$")  # re-hashed at this login
    assert DataKeyWrap.objects.filter(user=alice, kind="password").exists()
    key = _wait_for(lambda: LegacyUserKey.objects.get(user=alice), lambda k: k.state == "done", celery_worker)
    assert key.salt == "" and key.encrypted_dek == "" and key.failure == ""
    assert cache.get(f"legacy-dek:{alice.pk}") is None  # the legacy key is forgotten
    assert not LegacySealedValue.objects.filter(owner=alice, ciphertext__isnull=False).exists()

    page = client.get(reverse("mail:message", args=[alice_message.pk])).content.decode()
    assert "Quarterly numbers für März" in page and "the quarterly numbers are attached." in page
    assert "waiting for first login" not in page
    assert "bob@example.test" in page  # from_address parsed from the legacy sender
    listing = client.get(reverse("mail:list")).content.decode()
    assert "Quarterly numbers für März" in listing and "Weekly offers" in listing
    message = Message.objects.get(pk=alice_message.pk)
    assert message.to_addresses == ["alice@example.test", "carol@example.test"]
    assert message.references == ["root@example.test", "q0@example.test"] and message.thread_key == "root@example.test"
    assert message.search_ids  # keyword index built from the plaintext
    # The subject hash that lets header-less replies join conversations, without a backfill_threads run.
    assert message.subject_hash == subject_hash("Quarterly numbers für März", search_key_for(alice.pk))
    search = client.get(reverse("mail:search") + "?q=quarterly").content.decode()
    assert "Quarterly numbers für März" in search
    assert Attachment.objects.get(message=message).data == b"a,b\n1,2\n"
    assert MessageAnalysis.objects.get(message=message).summary == "Bob sends the quarterly numbers."
    # The legacy's language and German translation, shown like one of Mailhelper's own.
    assert MessageAnalysis.objects.get(message=message).language == "fr"
    translated = MessageTranslation.objects.get(message=message)
    assert (translated.language, translated.body, translated.method) == ("de", "Hallo Alice", "legacy:deepl")
    assert "Hallo Alice" in page and "Imported from the previous application" in page
    account = MailAccount.objects.get(owner=alice)
    assert (account.enabled, account.imap_host, account.imap_username, account.imap_password) == (
        True,
        "imap.example.test",
        "alice@example.test",
        "s3cret imap",
    )
    assert account.periodic_task.enabled
    assert account.signature.text == "-- Alice"
    reply = ReplySettings.objects.get(owner=alice)
    assert (reply.greeting, reply.closing, reply.address_form) == ("Guten Tag", "Mit freundlichen Grüßen", "formal")
    assert reply.instructions == "Always answer in German."
    record = LegacyRecord.objects.get(table="raw_emails", legacy_id=legacy.ids["raw"])
    assert "secret-bcc@example.test" in record.secrets  # legacy-only columns, now under Mailhelper's key
    code, output = run_import("--sqlite", str(legacy.path))
    assert code == 0, output  # fingerprints keep the checksums valid after conversion

    # Imported mail is like synced mail for whatever reads the source: the export has it as .eml.
    import email
    import zipfile

    call_command(
        "export_user_data", "alice_legacy", "--output", str(legacy.path.parent / "export.zip"), stdout=io.StringIO()
    )
    with zipfile.ZipFile(legacy.path.parent / "export.zip") as archive:
        emls = [archive.read(n) for n in archive.namelist() if n.endswith(".eml")]
    assert len(emls) == 2
    source = next(email.message_from_bytes(e, policy=email.policy.default) for e in emls if b"q1@example.test" in e)
    assert source["Subject"] == SUBJECT and "desk@example.test" in source["Reply-To"]
    assert "carol@example.test" in source["To"] and source["X-Mailhelper-Reconstructed"]
    assert source["References"] == "<root@example.test> <q0@example.test>"
    assert source.get_body(("plain",)).get_content().strip().endswith("Grüße, Bob")
    assert [p.get_filename() for p in source.iter_attachments()] == ["numbers.csv"]
    with zipfile.ZipFile(legacy.path.parent / "export.zip") as archive:
        kept = json.loads(archive.read("legacy.json"))["records"]
    by_table = {(r["table"], r["values"].get("style_key")): r["values"] for r in kept}
    assert by_table[("reply_style_settings", "casual")]["salutation"] == "Hallo"
    raw_values = next(r["values"] for r in kept if r["table"] == "raw_emails" and r["legacy_id"] == legacy.ids["raw"])
    assert raw_values["encrypted_bcc"] == "secret-bcc@example.test"
    assert not any("password" in key or "token" in key for r in kept for key in r["values"])
    with zipfile.ZipFile(legacy.path.parent / "export.zip") as archive:
        everything = b"".join(archive.read(name) for name in archive.namelist())
    assert b"pop3 secret" not in everything and b"oauth secret" not in everything and b"s3cret" not in everything

    # The task carried the user id only; no key, password or content in its message, result or the log.
    from django_celery_results.models import TaskResult

    task = TaskResult.objects.get(task_name="mailhelper.convert_legacy_user")
    assert str(alice.pk) in task.task_args and task.status == "SUCCESS"
    logged = celery_worker.log_tail(2000)
    for secret in (legacy.alice.password, "Quarterly numbers", "s3cret", legacy.alice.dek.hex()):
        assert secret not in task.task_args + task.task_kwargs + (task.result or "") and secret not in logged

    # Nobody else sees it: another user trying the ids, and the other legacy user's mail stays sealed.
    other = verified_client(mallory)
    assert other.get(reverse("mail:message", args=[alice_message.pk])).status_code == 404
    assert other.get(reverse("mail:account-edit", args=[account.pk])).status_code == 404
    inbox = Folder.objects.get(account=account, name="INBOX")
    assert other.get(reverse("mail:folder-messages", args=[account.pk, inbox.pk])).status_code == 404
    assert other.get(reverse("mail:attachment", args=[Attachment.objects.get(message=message).pk])).status_code == 404
    assert "Quarterly" not in other.get(reverse("mail:list")).content.decode()
    assert client.get(reverse("mail:message", args=[bob_message.pk])).status_code == 404
    assert LegacySealedValue.objects.filter(owner__username="bob_legacy", ciphertext__isnull=False).exists()


def _wait_for(get, done, worker, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = get()
        if done(value):
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out; worker log:\n{worker.log_tail()}")


@pytest.fixture
def legacy_postgres(legacy):
    """The test's legacy data in a PostgreSQL database of its own (dropped afterwards)."""
    import psycopg
    from django.conf import settings

    from .legacy_db import copy_to_postgres

    db = settings.DATABASES["default"]
    name = f"{db['NAME']}_legacy_source"
    admin = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}"')
        conn.execute(f'create database "{name}"')
    url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{name}"
    copy_to_postgres(legacy.path, url)
    yield url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


def test_import_from_a_legacy_postgresql(legacy_postgres):
    code, output = run_import("--database-url", legacy_postgres)
    assert code == 0, output
    assert all(status_of(output, t) == "OK" for t in TABLES), output
    message = Message.objects.get(uid=41)
    assert (message.seen, message.flagged, message.answered) == (True, True, False)  # real booleans this time
    assert message.date.isoformat() == "2024-04-02T12:30:00+00:00"
    assert counts()["Message"] == 3
    assert run_import("--database-url", legacy_postgres)[0] == 0
    assert counts()["Message"] == 3


def test_conversion_resumes_after_an_interruption(legacy, monkeypatch):
    from legacy import conversion

    assert run_import("--sqlite", str(legacy.path))[0] == 0
    alice = User.objects.get(username="alice_legacy")
    assert conversion.on_password_verified(alice, legacy.alice.password)
    apply_message = conversion.APPLY["mail.message"]

    def killed(*args):
        raise RuntimeError("worker killed")

    monkeypatch.setattr(conversion, "CHUNK", 1)
    monkeypatch.setitem(conversion.APPLY, "mail.message", (apply_message[0], killed))
    with pytest.raises(RuntimeError):
        conversion.convert_user(alice.pk)
    sealed = LegacySealedValue.objects.filter(owner=alice)
    assert sealed.filter(target="mail.mailaccount", converted_at__isnull=False).exists()  # an earlier chunk
    assert not sealed.filter(target="mail.message", converted_at__isnull=False).exists()  # rolled back
    assert Message.objects.get(uid=41).subject == ""

    monkeypatch.setitem(conversion.APPLY, "mail.message", apply_message)
    result = conversion.convert_user(alice.pk)
    assert result.state == "done" and result.failed == 0
    assert not sealed.filter(converted_at__isnull=True).exists()
    assert Message.objects.get(uid=41).subject == SUBJECT
    assert MailAccount.objects.get(owner=alice).imap_password == "s3cret imap"
    assert conversion.convert_user(alice.pk).state == "nothing to do"
    # A message the legacy never analysed is queued for Mailhelper's analysis.
    assert MessageAnalysis.objects.get(message__uid=42).state == "done"
    assert result.analyse_accounts == []


def test_a_wrong_legacy_key_leaves_the_data_sealed_and_says_why(legacy):
    from legacy import conversion

    assert run_import("--sqlite", str(legacy.path))[0] == 0
    alice = User.objects.get(username="alice_legacy")
    assert not conversion.on_password_verified(alice, "some other password")
    key = LegacyUserKey.objects.get(user=alice)
    assert key.state == "failed" and "does not open" in key.failure
    assert conversion.convert_user(alice.pk).state == "waiting"  # no cached key: nothing decrypted
    assert "does not open" in LegacyUserKey.objects.get(user=alice).failure
    assert LegacySealedValue.objects.filter(owner=alice, converted_at__isnull=True).exists()


def test_rows_imported_after_the_first_login_are_converted_at_the_next(legacy):
    from legacy import conversion

    from .legacy_db import _seal

    assert run_import("--sqlite", str(legacy.path))[0] == 0
    alice = User.objects.get(username="alice_legacy")
    assert conversion.on_password_verified(alice, legacy.alice.password)
    assert conversion.convert_user(alice.pk).state == "done"
    with sqlite3.connect(legacy.path) as conn:  # the legacy kept running for a while
        conn.execute(
            "insert into raw_emails (user_id, mail_account_id, encrypted_subject, imap_uid, imap_folder, "
            "imap_uidvalidity, received_at) values (?, 1, ?, 43, 'INBOX', 1700000001, '2024-04-05 09:00:00')",
            (legacy.alice.id, _seal(legacy.alice.dek, b"Late arrival")),
        )
    code, output = run_import("--sqlite", str(legacy.path))
    assert code == 0, output
    assert "new encrypted rows; converted at the next login" in output
    assert LegacyUserKey.objects.get(user=alice).state == "waiting"
    assert conversion.on_password_verified(alice, legacy.alice.password)
    assert conversion.convert_user(alice.pk).state == "done"
    assert Message.objects.get(uid=43).subject == "Late arrival"


def test_operators_see_the_import_state_but_no_legacy_key_material(legacy):
    assert run_import("--sqlite", str(legacy.path))[0] == 0
    operator = create_test_user("operator")
    operator.user.is_staff = operator.user.is_superuser = True
    operator.user.save()
    client = verified_client(operator)
    key = LegacyUserKey.objects.get(user__username="alice_legacy")
    secrets = [key.salt, key.encrypted_dek, *LegacySealedValue.objects.values_list("ciphertext", flat=True)[:5]]
    pages = [
        reverse("admin:legacy_legacyuserkey_changelist"),
        reverse("admin:legacy_legacyuserkey_change", args=[key.pk]),
        reverse("admin:legacy_legacyimportmap_changelist"),
    ]
    for url in pages:
        html = client.get(url).content.decode()
        assert "alice_legacy" in html or "raw_emails" in html, url
        assert not any(secret and secret in html for secret in secrets), url


def test_two_imports_at_once_are_refused(legacy):
    """A second session holding the import lock (another operator's run) makes this one stop at once."""
    import psycopg
    from django.conf import settings

    from legacy import importer
    from legacy.source import open_source

    db = settings.DATABASES["default"]
    with psycopg.connect(f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}", autocommit=True) as other:
        other.execute("select pg_advisory_lock(%s)", [importer._LOCK_KEY])
        code, output = run_import("--sqlite", str(legacy.path))
        assert code == 2 and "another import_legacy is running" in output
        with pytest.raises(importer.ImportRunning):
            importer.run_import(open_source(str(legacy.path)))
        other.execute("select pg_advisory_unlock(%s)", [importer._LOCK_KEY])  # closing alone releases it later
    assert User.objects.count() == 0
    assert run_import("--sqlite", str(legacy.path))[0] == 0  # released with the other session


def test_one_conversion_per_user_at_a_time(legacy):
    import psycopg
    from django.conf import settings

    from legacy import conversion

    assert run_import("--sqlite", str(legacy.path))[0] == 0
    alice = User.objects.get(username="alice_legacy")
    assert conversion.on_password_verified(alice, legacy.alice.password)
    db = settings.DATABASES["default"]
    with psycopg.connect(f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}", autocommit=True) as other:
        other.execute("select pg_advisory_lock(%s)", [conversion.lock_key(alice.pk)])  # a first task still running
        assert conversion.convert_user(alice.pk).state == "already running"
        assert Message.objects.get(uid=41).subject == ""
        other.execute("select pg_advisory_unlock(%s)", [conversion.lock_key(alice.pk)])  # the first task ends
    assert conversion.convert_user(alice.pk).state == "done"


def test_a_legacy_user_without_totp_enrols_and_gets_recovery_codes_for_the_imported_key(legacy):
    from accounts import keyring

    assert run_import("--sqlite", str(legacy.path))[0] == 0
    bob = User.objects.get(username="bob_legacy")
    assert not TOTPDevice.objects.filter(user=bob).exists()  # TOTP was off in the legacy: enrol as usual
    client = Client()
    response = client.post(reverse("accounts:login"), {"username": "bob_legacy", "password": legacy.bob.password})
    assert response.status_code == 302
    page = client.get(reverse("accounts:2fa-setup"), follow=True)
    assert page.status_code == 200
    device = TOTPDevice.objects.get(user=bob, confirmed=False)
    codes_page = client.post(reverse("accounts:2fa-setup"), {"token": totp_code(device)}).content.decode()
    codes = re.findall(r"\b[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}\b", codes_page)
    assert len(codes) == 10
    bob.refresh_from_db()
    assert not bob.password.startswith("wz$")  # the pbkdf2 legacy hash, re-hashed
    # The codes wrap the data key the import created (the one the sync key wraps), not a new one:
    # what the import encrypted for bob still opens.
    keyring.forget_all()
    assert Message.objects.get(uid=7).subject == ""  # sealed legacy subject; the (empty) Mailhelper value opens
    assert keyring.redeem_recovery_code(bob, codes[0]) == keyring.dek_for(bob.pk)
    assert keyring.unwrap_with_password(bob, legacy.bob.password) == keyring.dek_for(bob.pk)


def test_a_legacy_key_that_does_not_open_is_said_at_login_and_nothing_is_lost(legacy):
    from .legacy_db import _seal

    assert run_import("--sqlite", str(legacy.path))[0] == 0
    key = LegacyUserKey.objects.get(user__username="alice_legacy")
    key.encrypted_dek = _seal(b"k" * 32, b"d" * 32)  # e.g. the legacy salt or key was restored from another backup
    key.save()
    client = Client()
    page = client.post(
        reverse("accounts:login"), {"username": "alice_legacy", "password": legacy.alice.password}, follow=True
    ).content.decode()
    assert "could not be unlocked with this password" in page
    key.refresh_from_db()
    assert key.state == "failed" and "does not open" in key.failure
    assert LegacySealedValue.objects.filter(owner=key.user, converted_at__isnull=True).count() > 10


def test_one_user_at_a_time(legacy):
    code, output = run_import("--sqlite", str(legacy.path), "--user", "bob_legacy")
    assert code == 0, output
    assert all(status_of(output, t) == "OK" for t in TABLES), output
    assert set(User.objects.values_list("username", flat=True)) == {"bob_legacy"}
    assert set(Message.objects.values_list("owner__username", flat=True)) == {"bob_legacy"}
    assert "Rows of other users, not selected (--user): users 1, mail_accounts 1" in output
    code, output = run_import("--sqlite", str(legacy.path))  # then everyone else
    assert code == 0, output
    assert all(status_of(output, t) == "OK" for t in TABLES), output
    assert Message.objects.count() == 3 and User.objects.count() == 2
    code, output = run_import("--sqlite", str(legacy.path), "--user", "nobody")
    assert code == 2 and "no legacy user named 'nobody'" in output


def test_the_legacy_fetch_and_analysis_settings_become_the_accounts_first_sync_and_switches(legacy):
    code, output = run_import("--sqlite", str(legacy.path))
    assert code == 0 and "All checksums match." in output, output
    alices = MailAccount.objects.get(owner__username="alice_legacy", name="Work")
    assert (alices.first_sync, alices.first_sync_since.isoformat()) == ("since", "2023-01-01")
    assert not alices.backfill_older  # the legacy never fetched older mail
    assert (alices.analyse_on_fetch, alices.urgency_booster, alices.use_language_model) == (False, True, True)
    bobs = MailAccount.objects.get(owner__username="bob_legacy", name="Work")
    assert (bobs.first_sync, bobs.first_sync_since, bobs.urgency_booster, bobs.analyse_on_fetch) == (
        "unread",
        None,
        False,
        True,  # the legacy left it empty: on, as for a new account
    )
    columns = set(FIRST_SYNC_COLUMNS)
    assert (
        not LegacyRecord.objects.filter(table="mail_accounts").filter(data__has_any_keys=list(columns)).exists()
    )  # taken by the accounts, not left over
