"""German and English (#14, first part): the browser's language, the user's choice, their time zone, and
the German catalogue held complete for every template converted so far."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from mail.models import Message
from tests.plugins.mail import create_account, make_raw, run_sync

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "locale" / "de" / "LC_MESSAGES" / "django.po"
# Templates whose every word is marked for translation: every template under templates/ (#14), which
# test_every_template_is_marked holds to. A new template joins this list, or UNMARKED with the reason.
CONVERTED = [
    "base.html",
    "accounts/login.html",
    "accounts/2fa_verify.html",
    "accounts/preferences.html",
    "mail/dashboard.html",
    "mail/message_list.html",
    "mail/message_detail.html",
    "mail/compose.html",
    "mail/_draft_status.html",
    "mail/_draft_body.html",
    "mail/new_message.html",
    "mail/draft_list.html",
    "mail/reply_settings.html",
    "mail/account_list.html",
    "mail/account_form.html",
    "mail/account_confirm_delete.html",
    "mail/account_folders.html",
    "mail/_connection_report.html",
    "mail/_sync_progress.html",
    "mail/sync_run.html",
    "mail/_backfill_status.html",
    "mail/conversation.html",
    "mail/similar_page.html",
    "mail/_similar.html",
    "mail/trusted_senders.html",
    "mail/search.html",
    "mail/analysis_settings.html",
    "mail/_address_options.html",
    "mail/_field.html",
    "mail/_provider_report.html",
    "accounts/settings.html",
    "accounts/register.html",
    "accounts/register_invite_only.html",
    "accounts/register_closed.html",
    "accounts/2fa_setup.html",
    "accounts/2fa_recovery.html",
    "accounts/recovery_codes.html",
    "accounts/regenerate_codes.html",
    "accounts/recover.html",
    "accounts/strict_mode.html",
    "accounts/password_change.html",
    "accounts/delete_account.html",
    "accounts/rate_limited.html",
    "accounts/admin_invitation_created.html",
    "accounts/_form.html",
    "home.html",
    "rules/dry_run.html",
    "rules/rule_confirm_delete.html",
    "rules/rule_form.html",
    "rules/rule_list.html",
    "rules/rule_log.html",
    "tags/suggestions.html",
    "tags/tag_confirm_delete.html",
    "tags/tag_form.html",
    "tags/tag_list.html",
    "newsletters/finish.html",
    "newsletters/list.html",
    "digest/digest.html",
    "digest/digest.txt",
    "digest/settings.html",
    "events/card.html",
    "core/_job_progress.html",
    "core/job.html",
    "mailhelper/operations.html",
    "admin/index.html",
]


# Templates allowed to keep words outside translate tags: name -> why. None today.
UNMARKED: dict[str, str] = {}


def test_every_template_is_marked():
    on_disk = {
        str(path.relative_to(ROOT / "templates"))
        for path in (ROOT / "templates").rglob("*")
        if path.suffix in {".html", ".txt"}
    }
    assert len(CONVERTED) == len(set(CONVERTED)), "a template is listed twice"
    assert sorted(on_disk - set(UNMARKED)) == sorted(CONVERTED), "add the new template to CONVERTED (and mark it)"


def test_the_login_page_speaks_the_browsers_language():
    german = Client(HTTP_ACCEPT_LANGUAGE="de-DE,de;q=0.9,en;q=0.5").get(reverse("accounts:login")).content.decode()
    assert '<html lang="de">' in german and "<h1>Anmelden</h1>" in german and "Benutzername" in german
    english = Client(HTTP_ACCEPT_LANGUAGE="fr-FR").get(reverse("accounts:login")).content.decode()
    assert '<html lang="en">' in english and "<h1>Log in</h1>" in english


def test_a_user_who_chose_german_gets_german_whatever_the_browser(alice, alice_client):
    response = alice_client.post(reverse("accounts:preferences"), {"language": "de", "time_zone": ""}, follow=True)
    html = response.content.decode()
    assert "Sprache und Zeitzone gespeichert." in html
    assert ">Übersicht</a>" in html and "alice abmelden" in html
    alice.user.refresh_from_db()
    assert alice.user.language == "de"

    alice_client.post(reverse("accounts:preferences"), {"language": "", "time_zone": ""})
    assert ">Dashboard</a>" in alice_client.get(reverse("mail:drafts")).content.decode()


def test_unknown_language_or_time_zone_is_refused(alice, alice_client):
    response = alice_client.post(reverse("accounts:preferences"), {"language": "xx", "time_zone": "Mars/Olympus"})
    assert response.status_code == 200 and response.content.decode().count('class="error"') == 2
    alice.user.refresh_from_db()
    assert (alice.user.language, alice.user.time_zone) == ("", "")


def test_times_are_the_users_and_tomorrow_morning_is_their_morning(alice, alice_client, imap_user, dovecot):
    dovecot.deliver(imap_user, make_raw(1, subject="Zone", date=datetime(2026, 1, 15, 12, 0, tzinfo=UTC)))
    account = create_account(alice.user, imap_user, dovecot)
    assert run_sync(account).status == "success"
    message = Message.objects.get(account=account)
    assert "2026-01-15 12:00" in alice_client.get(reverse("mail:list")).content.decode()

    alice_client.post(reverse("accounts:preferences"), {"language": "", "time_zone": "Asia/Tokyo"})
    assert "2026-01-15 21:00" in alice_client.get(reverse("mail:list")).content.decode()
    alice_client.post(reverse("mail:snooze", args=[message.pk]), {"snooze": "tomorrow"})
    message.refresh_from_db()
    tokyo = message.snoozed_until.astimezone(timezone.get_fixed_timezone(9 * 60))
    assert (tokyo.hour, tokyo.minute) == (8, 0) and message.snoozed_until - timezone.now() < timedelta(days=2)


def _entries(text: str) -> list[tuple[str, str, bool]]:
    """(msgid, msgstr, fuzzy) of each entry of a .po file, the header left out."""
    found = []
    for block in text.split("\n\n"):
        fuzzy = "#, fuzzy" in block
        msgid = "".join(re.findall(r'"(.*)"', block.split("msgstr", 1)[0].split("msgid", 1)[-1]))
        msgstr = "".join(re.findall(r'"(.*)"', block.split("msgstr", 1)[-1]))
        if msgid:
            found.append((msgid, msgstr, fuzzy))
    return found


def test_the_german_catalogue_is_complete_and_not_fuzzy():
    entries = _entries(CATALOGUE.read_text())
    assert len(entries) >= 40
    assert [e[0] for e in entries if not e[1] or e[2]] == []


_CODE = re.compile(r"{%.*?%}|{{.*?}}|{#.*?#}", re.S)
_TRANSLATE_BLOCK = re.compile(r"{%\s*blocktranslate.*?{%\s*endblocktranslate\s*%}", re.S)
_TAG = re.compile(r"<[^>]*>", re.S)
_ENTITY = re.compile(r"&#?\w+;")
_TEXT_ATTRIBUTE = re.compile(r'\b(?:title|placeholder|aria-label|alt)="([^"]*)"')


@pytest.mark.parametrize("name", CONVERTED)
def test_converted_templates_mark_every_word(name):
    source = (ROOT / "templates" / name).read_text()
    for value in _TEXT_ATTRIBUTE.findall(source):
        unmarked = _CODE.sub("", _TRANSLATE_BLOCK.sub("", value))
        assert not re.search(r"[A-Za-z]{2,}", unmarked), f"{name}: attribute text {value!r} is not marked"
    text = _ENTITY.sub(" ", _TAG.sub(" ", _CODE.sub(" ", _TRANSLATE_BLOCK.sub(" ", source))))
    words = [w for w in re.findall(r"[A-Za-zÄÖÜäöüß]{2,}", text) if w not in {"Mailhelper"}]
    assert words == [], f"{name}: words outside translate tags: {words[:10]}"


_F_STRING = re.compile(r"^[rRbB]?[fF][rR]?['\"]")
_CALL_IN_BRACES = re.compile(r"\{[^{}]*\b(?:gettext|ngettext|pgettext|gettext_lazy|_)\(")


def _python_sources():
    skipped = {".venv", "tests", "bench", "migrations", "node_modules", ".git"}
    for path in ROOT.rglob("*.py"):
        if not skipped.intersection(path.relative_to(ROOT).parts):
            yield path


def test_no_translated_string_hides_inside_an_f_string():
    """xgettext (makemessages) does not read inside f-strings: a gettext() there is never extracted,
    and the next makemessages marks its translation obsolete (it happened to "moving…")."""
    import io
    import tokenize

    hidden = []
    for path in _python_sources():
        for token in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
            if token.type == tokenize.STRING and _F_STRING.match(token.string) and _CALL_IN_BRACES.search(token.string):
                hidden.append(f"{path.relative_to(ROOT)}:{token.start[0]}")
    assert hidden == []
