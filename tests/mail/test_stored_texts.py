"""What a sync stores for the user (account status, run errors) is shown in the reader's language.

A real sync against the session's Dovecot, with a wrong password and with a closed port: the worker
stores English msgids plus arguments; the account list and the run's page render them in German for a
user who chose German and in English for one who did not, and rows from before still show.
"""

from __future__ import annotations

import html

from django.urls import reverse

from mail import sync
from mail.models import MailAccount, SyncRun
from tests.plugins.accounts import verified_client
from tests.plugins.mail import create_account, run_sync


def choose(user, language: str) -> None:
    user.language = language
    user.save(update_fields=["language"])


def page(client, name: str, *args) -> str:
    return html.unescape(client.get(reverse(name, args=args)).content.decode())


def test_a_wrong_password_is_shown_in_german_and_in_english(dovecot, imap_user, alice):
    account = create_account(alice.user, imap_user, dovecot, imap_password="wrong")
    run = run_sync(account)
    assert run.status == SyncRun.Status.FAILED
    account.refresh_from_db()
    assert account.status == MailAccount.Status.NEEDS_ATTENTION and "wrong" not in account.status_message

    client = verified_client(alice)
    choose(alice.user, "de")
    german = page(client, "mail:accounts")
    assert "Anmeldung fehlgeschlagen: Der Server hat Benutzername oder Passwort abgelehnt." in german
    assert "Der Server hat Benutzername oder Passwort abgelehnt." in page(client, "mail:sync-run", run.pk)

    choose(alice.user, "en")
    english = page(client, "mail:accounts")
    assert "Login failed: The server rejected the user name or password." in english
    assert "Anmeldung" not in english


def test_an_unreachable_server_is_shown_in_the_readers_language(dovecot, imap_user, alice):
    account = create_account(alice.user, imap_user, dovecot, imap_port=1)
    outcome = sync.sync_account(account.pk)
    assert outcome.retryable and outcome.run.status == SyncRun.Status.FAILED
    sync.mark_unreachable(outcome.run)  # what the task does once its retries are used up
    sync.mark_retrying(outcome.run, 30)  # and before that, between the retries
    where = f"{dovecot.host}:1"
    refused_de = f"{where} hat die Verbindung abgelehnt: Prüfen Sie IMAP-Server, Port und Sicherheit."

    client = verified_client(alice)
    choose(alice.user, "de")
    assert f"<small>Server nicht erreichbar: {refused_de}</small>" in page(client, "mail:accounts")
    assert f"{refused_de} Neuer Versuch in 30 s." in page(client, "mail:sync-run", outcome.run.pk)

    choose(alice.user, "en")
    english = page(client, "mail:accounts")
    assert (
        f"<small>Server unreachable: {where} refused the connection: check the IMAP host, port and security.</small>"
        in english
    )
    assert "Retrying in 30 s." in page(client, "mail:sync-run", outcome.run.pk)


def test_folder_errors_of_a_successful_sync_are_listed_translated(dovecot, imap_user, alice):
    account = create_account(alice.user, imap_user, dovecot)
    assert run_sync(account).status == SyncRun.Status.SUCCESS
    run = SyncRun.objects.create(account=account, status=SyncRun.Status.SUCCESS)
    errors = [
        '{"msgid": "%(folder)s: %(error)s", "args": {"folder": "Archiv", "error": '
        '{"msgid": "The folder %(folder)s cannot be opened.", "args": {"folder": "\'Archiv\'"}}}}',
        "Old: a sentence stored before stored texts",
    ]
    SyncRun.objects.filter(pk=run.pk).update(errors=errors)
    MailAccount.objects.filter(pk=account.pk).update(status_message="Old: a sentence stored before stored texts")

    client = verified_client(alice)
    choose(alice.user, "de")
    run_page = page(client, "mail:sync-run", run.pk)
    assert "<li>Archiv: Der Ordner 'Archiv' lässt sich nicht öffnen.</li>" in run_page
    assert "<li>Old: a sentence stored before stored texts</li>" in run_page
    assert "<small>Old: a sentence stored before stored texts</small>" in page(client, "mail:accounts")


def test_a_locked_account_shows_the_constant_text_translated(dovecot, imap_user, alice):
    account = create_account(alice.user, imap_user, dovecot)
    MailAccount.objects.filter(pk=account.pk).update(
        status=MailAccount.Status.LOCKED, status_message="locked: log in to resume"
    )
    client = verified_client(alice)
    choose(alice.user, "de")
    assert "<small>gesperrt: zum Fortsetzen anmelden</small>" in page(client, "mail:accounts")


def test_the_admin_lists_show_the_text_not_its_json(dovecot, imap_user, alice, operator):
    account = create_account(alice.user, imap_user, dovecot, imap_password="wrong")
    run_sync(account)
    client = verified_client(operator)
    runs = html.unescape(client.get(reverse("admin:mail_syncrun_changelist")).content.decode())
    assert "The server rejected the user name or password." in runs
    accounts = html.unescape(client.get(reverse("admin:mail_mailaccount_changelist")).content.decode())
    assert "Login failed: The server rejected the user name or password." in accounts and '{"msgid"' not in accounts
