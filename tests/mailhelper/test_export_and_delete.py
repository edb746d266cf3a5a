"""Export of a user's data and deletion of a user: the service, the commands and the settings pages."""

from __future__ import annotations

import imaplib
import io
import json
import re
import zipfile
from dataclasses import dataclass

import pytest
from django.apps import apps
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import models
from django.urls import reverse
from django_celery_beat.models import PeriodicTask
from django_celery_results.models import TaskResult

from accounts import keyring
from accounts.deletion import delete_user
from accounts.models import User
from analysis.models import ProviderSettings, TrustedSender
from core.models import Job
from mail import replies
from mail.models import AccountSignature, Folder, MailAccount, ReplySettings, SyncRun
from mailhelper.data_export import ExportLocked, export_user_data
from rules.models import Rule
from tags.models import Tag, TagAssignment, TagSettings
from tests.plugins.accounts import create_test_user
from tests.plugins.mail import create_account, make_raw, run_sync, select_folders

pytestmark = pytest.mark.django_db

API_KEY = "sk-test-provider-api-key-do-not-export-31337"


@dataclass
class Seeded:
    account: MailAccount
    tag: Tag
    rule: Rule
    job: Job


def seed_user(test_user, dovecot, imap_user, *, start: int = 0, count: int = 3) -> Seeded:
    """Mail in two folders (synced for real), a tag on one message, a rule, settings, a job, task results."""
    for n in range(start, start + count):
        dovecot.deliver(imap_user, make_raw(n))
    dovecot.deliver(imap_user, make_raw(start + 100), folder="Archive")
    account = create_account(test_user.user, imap_user, dovecot, name=f"Work/{test_user.user.username}")
    select_folders(account, "INBOX", "Archive")
    run = run_sync(account)
    assert run.status == "success", run.error
    owner = test_user.user
    tag = Tag.objects.create(owner=owner, name="Invoices")
    TagAssignment.objects.create(owner=owner, tag=tag, message=account.messages.get(folder__name="INBOX", uid=1))
    rule = Rule.objects.create(
        owner=owner,
        name="Archive newsletters",
        definition={
            "match": "all",
            "conditions": [{"field": "from", "op": "contains", "value": "news"}],
            "actions": [],
        },
    )
    TagSettings.objects.create(owner=owner, auto_apply=True)
    ProviderSettings.objects.create(owner=owner, enabled=True, kind="openai", api_key=API_KEY)
    TrustedSender.objects.create(owner=owner, pattern="@boss.example.test")
    ReplySettings(owner=owner, greeting="Hello {name},", closing="Cheers").save()
    AccountSignature(owner=owner, account=account, text="-- \nA signature").save()
    replies.create_draft(account.messages.get(folder__name="INBOX", uid=1), "reply")
    job = Job.objects.create(owner=owner, kind="reanalyse", params={"account_id": str(account.pk)})
    TaskResult.objects.create(task_id=f"sync-{account.pk}", task_kwargs=repr({"account_id": str(account.pk)}))
    TaskResult.objects.create(task_id=f"job-{job.pk}", task_kwargs=repr({"job_id": job.pk}))
    return Seeded(account, tag, rule, job)


def server_raw(dovecot, imap_user, folder: str = "INBOX") -> dict[int, bytes]:
    """uid -> raw source as the IMAP server has it (read with the standard library, not our code)."""
    conn = imaplib.IMAP4(dovecot.host, dovecot.port)
    try:
        conn.login(imap_user.username, imap_user.password)
        conn.select(folder, readonly=True)
        _, data = conn.uid("FETCH", "1:*", "(UID BODY.PEEK[])")
        result = {}
        for item in data:
            if isinstance(item, tuple):
                uid = int(re.search(rb"UID (\d+)", item[0]).group(1))
                result[uid] = item[1]
        return result
    finally:
        conn.logout()


def _zip(user) -> zipfile.ZipFile:
    buf = io.BytesIO()
    export_user_data(user, buf)
    buf.seek(0)
    return zipfile.ZipFile(buf)


def test_export_holds_the_server_bytes_tags_rules_and_settings_without_secrets(alice, dovecot, imap_user):
    seeded = seed_user(alice, dovecot, imap_user)
    from mail.models import Draft, DraftAttachment

    written = Draft.objects.get(owner=alice.user)
    for name, data in (("../plan.pdf", b"%PDF first"), ("../plan.pdf", b"%PDF second"), ("", b"unnamed")):
        DraftAttachment(owner=alice.user, draft=written, content_type="application/pdf", filename=name,
                        size=len(data), data=data).save()  # fmt: skip
    progress: list[tuple[int, int]] = []
    buf = io.BytesIO()
    counts = export_user_data(alice.user, buf, lambda d, t: progress.append((d, t)))
    assert counts["messages"] == 4 and counts["rules"] == 1 and counts["tags"] == 1 and counts["accounts"] == 1
    assert progress[-1] == (4, 4)
    zf = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    names = zf.namelist()
    account_dir = "Work_alice"  # the "/" of the account name must not become a directory
    for folder in ("INBOX", "Archive"):
        for uid, raw in server_raw(dovecot, imap_user, folder).items():
            assert zf.read(f"{account_dir}/{folder}/{uid}.eml") == raw
    assert len([n for n in names if n.endswith(".eml")]) == 4

    tags = json.loads(zf.read("tags.json"))
    tagged = seeded.account.messages.get(folder__name="INBOX", uid=1)
    assert tags["tags"][0]["name"] == "Invoices" and tags["tags"][0]["messages"] == [str(tagged.pk)]
    assert tags["message_paths"][str(tagged.pk)] == f"{account_dir}/INBOX/{tagged.uid}.eml"
    rules = json.loads(zf.read("rules.json"))["rules"]
    assert rules == [
        {
            "name": "Archive newsletters",
            "order": 0,
            "enabled": True,
            "definition": seeded.rule.definition,
            "created_at": rules[0]["created_at"],
        }
    ]
    settings_data = json.loads(zf.read("settings.json"))
    assert settings_data["accounts"][0]["imap_username"] == imap_user.username
    assert "imap_password" not in settings_data["accounts"][0]
    assert settings_data["provider"]["kind"] == "openai" and "api_key" not in settings_data["provider"]
    assert settings_data["trusted_senders"][0]["pattern"] == "@boss.example.test"
    assert settings_data["tag_settings"]["auto_apply"] is True
    assert settings_data["replies"]["greeting"] == "Hello {name}," and settings_data["replies"]["closing"] == "Cheers"
    assert settings_data["replies"]["signatures"] == {"Work/alice": "-- \nA signature"}
    [draft] = json.loads(zf.read("drafts.json"))["drafts"]
    assert draft["kind"] == "reply" and draft["status"] == "draft" and draft["subject"] == "Re: Message number 0"
    assert draft["original"] == f"{account_dir}/INBOX/1.eml" and "> body of message 0." in draft["body"]
    assert counts["drafts"] == 1 and counts["draft_attachments"] == 3
    files = draft["attachments"]
    assert [(f["filename"], f["size"]) for f in files] == [("../plan.pdf", 10), ("../plan.pdf", 11), ("", 7)]
    assert [zf.read(f["path"]) for f in files] == [b"%PDF first", b"%PDF second", b"unnamed"]
    assert all(f["path"].startswith(f"drafts/{written.pk}/") and ".." not in f["path"] for f in files)
    assert len({f["path"] for f in files}) == 3  # the same name twice keeps both files
    manifest = json.loads(zf.read("manifest.json"))
    assert manifest["counts"] == counts and manifest["created_at"]

    everything = b"".join(zf.read(n) for n in names)
    for secret in (imap_user.password, API_KEY, alice.password):
        assert secret.encode() not in everything


def test_export_refuses_a_logged_out_strict_mode_user(db):
    carol = create_test_user("carol", strict=True)
    keyring.drop_session_key(carol.user)
    with pytest.raises(ExportLocked):
        export_user_data(carol.user, io.BytesIO())


def test_export_command(alice, dovecot, imap_user, tmp_path):
    seed_user(alice, dovecot, imap_user)
    target = tmp_path / "alice.zip"
    out = io.StringIO()
    call_command("export_user_data", "alice", "--output", str(target), stdout=out)
    assert "Exported 1 accounts, 4 messages" in out.getvalue()
    assert "manifest.json" in zipfile.ZipFile(target).namelist()
    with pytest.raises(CommandError, match="--force"):
        call_command("export_user_data", "alice", "--output", str(target))
    call_command("export_user_data", "alice", "--output", str(target), "--force", stdout=io.StringIO())
    with pytest.raises(CommandError, match="no user named 'nobody'"):
        call_command("export_user_data", "nobody", "--output", str(tmp_path / "x.zip"))
    carol = create_test_user("carol", strict=True)
    keyring.drop_session_key(carol.user)
    with pytest.raises(CommandError, match="strict mode and is logged out"):
        call_command("export_user_data", "carol", "--output", str(tmp_path / "carol.zip"))
    assert not (tmp_path / "carol.zip").exists() and not (tmp_path / "carol.zip.partial").exists()


def _user_rows(user_pk: int) -> dict[str, int]:
    """Rows per model that belong to the user: every foreign key to User, plus account-scoped tables."""
    counts: dict[str, int] = {}
    for model in apps.get_models():
        for field in model._meta.get_fields():
            if isinstance(field, models.ForeignKey | models.OneToOneField) and field.related_model is User:
                if model is User:
                    continue
                key = f"{model._meta.label}.{field.name}"
                counts[key] = model._default_manager.filter(**{f"{field.name}_id": user_pk}).count()
    counts["mail.Folder"] = Folder.objects.filter(account__owner_id=user_pk).count()
    counts["mail.SyncRun"] = SyncRun.objects.filter(account__owner_id=user_pk).count()
    counts["user"] = User.objects.filter(pk=user_pk).count()
    return counts


def test_delete_user_removes_every_row_and_leaves_bob_alone(alice, bob, dovecot, imap_user):
    alice_seed = seed_user(alice, dovecot, imap_user)
    bob_seed = seed_user(bob, dovecot, dovecot.add_user(), count=2)
    # Looks like alice's job id with a digit more: must survive (the match is anchored).
    TaskResult.objects.create(task_id="other", task_kwargs=repr({"job_id": int(f"{alice_seed.job.pk}9")}))
    alice_account_pk = alice_seed.account.pk
    beat_name = f"mail sync {alice_account_pk}"
    assert PeriodicTask.objects.filter(name=beat_name).exists()
    alice_pk = alice.user.pk
    before_alice, before_bob = _user_rows(alice_pk), _user_rows(bob.user.pk)
    assert before_alice["mail.Message.owner"] == 4 and before_alice["analysis.MessageAnalysis.owner"] == 4
    assert before_alice["mail.Draft.owner"] == 1 and before_alice["mail.ReplySettings.owner"] == 1
    assert before_alice["otp_totp.TOTPDevice.user"] == 1 and before_alice["accounts.DataKeyWrap.user"] > 2
    results_before = TaskResult.objects.count()

    removed = delete_user(alice.user)

    after_alice = _user_rows(alice_pk)
    assert all(count == 0 for count in after_alice.values()), after_alice
    assert _user_rows(bob.user.pk) == before_bob
    assert not PeriodicTask.objects.filter(name=beat_name).exists()
    assert PeriodicTask.objects.filter(name=f"mail sync {bob_seed.account.pk}").exists()
    assert not MailAccount.objects.filter(pk=alice_account_pk).exists()
    assert TaskResult.objects.count() == results_before - 2
    assert TaskResult.objects.filter(task_id__in=["other", f"job-{bob_seed.job.pk}"]).count() == 2
    assert removed["mail.Message"] == 4 and removed["django_celery_results.TaskResult"] == 2
    assert removed["django_celery_beat.PeriodicTask"] == 1 and removed["accounts.User"] == 1


def test_delete_user_drops_the_strict_mode_key(db):
    carol = create_test_user("carol", strict=True)
    assert not keyring.is_locked(carol.user.pk)
    user_pk = carol.user.pk
    delete_user(carol.user)
    from django.core.cache import cache

    assert cache.get(f"dek:{user_pk}") is None


def test_delete_user_command(alice, bob, monkeypatch):
    with pytest.raises(CommandError, match="not confirmed"):
        monkeypatch.setattr("builtins.input", lambda prompt: "bob")
        call_command("delete_user", "alice", stdout=io.StringIO())
    assert User.objects.filter(username="alice").exists()
    monkeypatch.setattr("builtins.input", lambda prompt: "alice")
    out = io.StringIO()
    call_command("delete_user", "alice", stdout=out)
    assert "accounts.User: 1" in out.getvalue() and "Deleted user alice." in out.getvalue()
    call_command("delete_user", "bob", "--yes", stdout=io.StringIO())
    assert not User.objects.filter(username__in=["alice", "bob"]).exists()
    with pytest.raises(CommandError, match="no user named"):
        call_command("delete_user", "nobody", "--yes")


def test_download_my_data_from_the_settings_page(alice, alice_client, dovecot, imap_user):
    seed_user(alice, dovecot, imap_user)
    page = alice_client.get(reverse("accounts:settings"))
    assert reverse("export-data") in page.text and reverse("accounts:delete-account") in page.text
    assert alice_client.get(reverse("export-data")).status_code == 405
    response = alice_client.post(reverse("export-data"))
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert "attachment" in response["Content-Disposition"]
    zf = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert len([n for n in zf.namelist() if n.endswith(".eml")]) == 4


def test_delete_my_account_needs_password_and_username_then_logs_out(alice, alice_client, bob):
    url = reverse("accounts:delete-account")
    page = alice_client.get(url)
    assert page.status_code == 200 and "Mail on your IMAP servers is not touched" in page.text
    wrong = alice_client.post(url, {"password": "wrong password", "confirm_username": "alice"})
    assert wrong.status_code == 200 and "Your password is not correct." in wrong.text
    not_typed = alice_client.post(url, {"password": alice.password, "confirm_username": "bob"})
    assert not_typed.status_code == 200 and "This is not your username." in not_typed.text
    assert User.objects.filter(username="alice").exists()

    done = alice_client.post(url, {"password": alice.password, "confirm_username": "alice"}, follow=True)
    assert done.redirect_chain[-1][0] == reverse("accounts:login")
    assert "Your account and all its data were deleted." in done.text
    assert not User.objects.filter(username="alice").exists() and User.objects.filter(username="bob").exists()
    after = alice_client.get(reverse("accounts:settings"))
    assert after.status_code == 302 and after["Location"].startswith(reverse("accounts:login"))


def test_sessions_of_a_deleted_user_no_longer_log_in(alice, alice_client):
    """A session kept elsewhere (another browser) dies with the user row: nothing to clean up."""
    assert alice_client.get(reverse("accounts:settings")).status_code == 200
    delete_user(alice.user)
    response = alice_client.get(reverse("accounts:settings"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("accounts:login"))
