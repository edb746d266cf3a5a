"""`make demo`: the sample mailbox, the demo user and their synced, analysed account (mailhelper/demo/)."""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import shutil
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from accounts.models import User
from analysis.models import MessageAnalysis
from mail.models import MailAccount, Message
from mailhelper.demo import setup
from mailhelper.demo.mailbox import DEMO_ADDRESS, generate
from mailhelper.local_dovecot import free_port
from tests.plugins.mailservers import run_as_nobody

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


# --- the sample mailbox --------------------------------------------------------------------------------


def test_the_sample_mailbox_holds_what_a_real_inbox_does():
    samples = generate(NOW)
    kinds = Counter(s.kind for s in samples)
    assert 250 <= len(samples) <= 400
    assert set(kinds) == {"thread", "personal", "invoice", "invitation", "newsletter", "notification", "spam"}
    assert {s.language for s in samples} == {"de", "en", "fr", "it"}
    assert {s.folder for s in samples} == {"INBOX", "Sent", "Junk"}
    parsed = [email.message_from_bytes(s.raw, policy=email.policy.default) for s in samples]
    assert len({m["Message-ID"] for m in parsed}) == len(samples)
    # Every message dated within two months before NOW; only recent mail unread.
    assert all(NOW.timestamp() - 61 * 86400 <= s.date.timestamp() <= NOW.timestamp() for s in samples)
    unread = [s for s in samples if "S" not in s.flags]
    assert unread and len(unread) < len(samples) / 2


def test_the_same_seed_gives_the_same_mailbox():
    assert [s.raw for s in generate(NOW)] == [s.raw for s in generate(NOW)]
    assert [s.raw for s in generate(NOW, seed=1)] != [s.raw for s in generate(NOW)]


def test_invitations_invoices_newsletters_and_threads_have_their_parts():
    samples = generate(NOW)
    by_id = {}
    for sample in samples:
        message = email.message_from_bytes(sample.raw, policy=email.policy.default)
        by_id[message["Message-ID"]] = (sample, message)
    for sample, message in by_id.values():
        types = [part.get_content_type() for part in message.walk()]
        if sample.kind == "invitation":
            calendar = next(p for p in message.walk() if p.get_content_type() == "text/calendar")
            assert calendar.get_param("method") == "REQUEST"
            assert "BEGIN:VEVENT" in calendar.get_content() and DEMO_ADDRESS in calendar.get_content()
        if sample.kind == "newsletter":
            assert message["List-Unsubscribe"].startswith("<https://")
            assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        if sample.kind == "invoice" and "application/pdf" in types:
            pdf = next(p for p in message.walk() if p.get_content_type() == "application/pdf").get_content()
            assert pdf.startswith(b"%PDF-1.4") and pdf.rstrip().endswith(b"%%EOF")
        if message["In-Reply-To"]:
            assert message["In-Reply-To"] in by_id, "a reply to a message the mailbox does not hold"
        if sample.folder == "Sent":
            assert DEMO_ADDRESS in message["From"]
    pdfs = [s for s, m in by_id.values() if any(p.get_content_type() == "application/pdf" for p in m.walk())]
    replies = [s for s, m in by_id.values() if m["In-Reply-To"]]
    assert len(pdfs) >= 2 and len(replies) >= 20


# --- the demo set-up against its own Dovecot -----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_prepare_syncs_and_analyses_everything_and_the_demo_user_can_log_in(demo_server):
    login = setup.prepare(demo_server.directory, demo_server.server)

    expected = len(generate(NOW))
    assert login.messages == expected == login.analysed
    user = User.objects.get(username="demo")
    account = MailAccount.objects.get(owner=user)
    assert Message.objects.filter(account=account).count() == expected
    assert set(account.folders.filter(sync_enabled=True).values_list("special_use", flat=True)) == {
        "inbox",
        "sent",
        "junk",
    }
    assert MessageAnalysis.objects.filter(owner=user, state="done").count() == expected
    assert Message.objects.filter(account=account).exclude(calendar_method="").count() == 12
    assert MessageAnalysis.objects.filter(owner=user, is_newsletter=True).count() >= 50

    # The printed password and TOTP code pass the real login form's two steps.
    client = Client()
    response = client.post("/accounts/login/", {"username": "demo", "password": login.password})
    assert response.status_code == 302 and "/accounts/2fa/verify/" in response["Location"]
    response = client.post(response["Location"], {"token": setup.current_code()}, follow=True)
    assert response.status_code == 200
    page = client.get("/mail/")
    assert page.status_code == 200 and b"Invitation" in page.content
    # The credentials file is the owner's only.
    assert (demo_server.directory / "credentials.json").stat().st_mode & 0o077 == 0


@pytest.mark.django_db(transaction=True)
def test_a_second_run_reuses_the_user_and_adds_nothing(demo_server):
    first = setup.prepare(demo_server.directory, demo_server.server)
    user_id = User.objects.get(username="demo").pk

    second = setup.prepare(demo_server.directory, demo_server.server)

    assert (second.password, second.totp_secret) == (first.password, first.totp_secret)
    assert User.objects.get(username="demo").pk == user_id
    assert second.messages == first.messages == Message.objects.count()
    assert MailAccount.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_demo_user_the_credentials_no_longer_open_is_made_anew(demo_server):
    setup.prepare(demo_server.directory, demo_server.server)
    old = User.objects.get(username="demo")
    credentials = demo_server.directory / "credentials.json"
    values = json.loads(credentials.read_text())
    values["password"] = "a different password 123"
    credentials.write_text(json.dumps(values))

    login = setup.prepare(demo_server.directory, demo_server.server)

    new = User.objects.get(username="demo")
    assert new.pk != old.pk and new.check_password("a different password 123") and login.password == values["password"]
    assert Message.objects.filter(owner=new).count() == login.messages


@pytest.mark.django_db(transaction=True)
def test_the_command_prints_url_user_password_and_code(demo_server, capsys):
    port = demo_server.server.port
    demo_server.server.stop()  # the command starts its own from the same directory

    call_command("demo", "--dir", str(demo_server.directory), "--imap-port", str(port))

    out = capsys.readouterr().out
    password = json.loads((demo_server.directory / "credentials.json").read_text())["password"]
    assert re.search(r"Open\s+http://127\.0\.0\.1:\d+/", out)
    assert re.search(r"User\s+demo\b", out) and password in out
    assert re.search(r"TOTP code\s+\d{6}\b", out)
    assert not demo_server.server.running, "the command stops its Dovecot when it returns"


def test_the_command_refuses_a_port_the_outbound_policy_would_refuse(default_policy, tmp_path):
    with pytest.raises(CommandError, match="MAILHELPER_OUTBOUND_ALLOW=127.0.0.1:10143"):
        call_command("demo", "--dir", str(tmp_path), "--imap-port", "10143")


@pytest.mark.skipif(shutil.which("runuser") is None, reason="needs runuser to act as a normal user")
def test_dovecot_also_runs_for_a_normal_user(tmp_path):
    """`make demo` on a laptop runs as its owner: every Dovecot process is that user, no chroot."""
    script = (
        "import imaplib, sys; sys.path.insert(0, sys.argv[1]); from mailhelper.local_dovecot import DovecotServer\n"
        "s = DovecotServer.create(); s.start()\n"
        "try:\n"
        "    u = s.add_user('someone', 'pw-someone-1'); s.deliver(u, b'Subject: hi\\r\\n\\r\\nbody\\r\\n')\n"
        "    c = imaplib.IMAP4(s.host, s.port); c.login('someone', 'pw-someone-1'); print(c.select('INBOX')[1])\n"
        "    c.logout()\n"
        "finally:\n"
        "    s.cleanup()\n"
    )
    result = run_as_nobody(script, ("local_dovecot.py",))  # plain Python: loaded from a copy
    assert result.returncode == 0, result.stderr[-2000:]
    assert "[b'1']" in result.stdout


def test_run_as_root_a_closed_parent_directory_is_named(tmp_path):
    """pytest's tmp_path sits below a 0700 directory: Dovecot's users could not reach a Maildir there."""
    if os.geteuid() != 0:
        pytest.skip("only root's Dovecot runs its processes as other users")
    with pytest.raises(setup.DemoError, match="cannot enter .* \\(closed to others\\)"):
        setup.start_dovecot(tmp_path / "demo", free_port())
