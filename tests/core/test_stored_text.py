"""core.stored_text: what a worker stores is shown in the reader's language, and old rows still show."""

from __future__ import annotations

import json

from django.template import Context, Template
from django.urls import reverse
from django.utils import translation

from core.models import Job
from core.stored_text import Text, dump, load, message_of, render
from rules.spec import SIMPLE_ACTION_PHRASES

LOGIN = Text("Login failed: %(error)s", error=Text("The server rejected the user name or password."))


def test_a_stored_text_renders_in_the_active_language_and_nests():
    stored = dump(LOGIN, 300)
    assert json.loads(stored)["msgid"] == "Login failed: %(error)s"  # no language was active: nothing German stored
    with translation.override("de"):
        assert render(stored) == "Anmeldung fehlgeschlagen: Der Server hat Benutzername oder Passwort abgelehnt."
    with translation.override("en"):
        assert render(stored) == "Login failed: The server rejected the user name or password."


def test_old_rows_and_constant_texts_show_as_they_are_or_translated():
    with translation.override("de"):
        assert render("some sentence from an old version") == "some sentence from an old version"
        assert render("locked: log in to resume") == "gesperrt: zum Fortsetzen anmelden"  # a msgid: translated
        assert render("{not json") == "{not json" and render('{"other": 1}') == '{"other": 1}'
        assert render("") == "" and render(None) == ""
    # A text without arguments is stored as its bare msgid: old and new rows look the same.
    assert dump(Text("locked: log in to resume")) == "locked: log in to resume"


def test_dump_always_fits_and_stays_readable():
    long = Text("Server unreachable: %(error)s", error=Text("%(where)s did not answer in time.", where="h" * 900))
    stored = dump(long, 300)
    assert len(stored) <= 300 and isinstance(load(stored), Text)
    with translation.override("de"):
        assert render(stored).startswith("Server nicht erreichbar: hhh")
        assert render(stored).endswith("h… hat nicht rechtzeitig geantwortet.")
    parts = dump([Text("%(folder)s: %(error)s", folder=f"F{n}", error="x" * 40) for n in range(20)], 300)
    assert len(parts) <= 300 and render(parts).startswith("F0: xxx") and "; F1: " in render(parts)


def test_lazy_labels_are_stored_as_their_msgid():
    stored = dump(Text("%(value)s (%(label)s)", value=3, label=SIMPLE_ACTION_PHRASES["archive"]))
    assert '"archive"' in stored
    with translation.override("de"):
        assert render(stored) == "3 (archivieren)"


def test_a_lost_placeholder_in_a_translation_falls_back_to_english():
    broken = '{"msgid": "Login failed: %(error)s", "args": {"wrong": "x"}}'
    with translation.override("de"):
        assert render(broken) == "Login failed: %(error)s"


def test_an_exception_raised_with_a_text_keeps_it_and_str_translates():
    exc = ValueError(LOGIN)
    assert message_of(exc) is LOGIN and message_of(KeyError("k")) == "'k'"
    with translation.override("de"):
        assert str(exc).startswith("Anmeldung fehlgeschlagen")


def test_the_template_filter_escapes_like_any_string():
    stored = dump(Text("The folder %(folder)s cannot be opened.", folder="<b>x</b>"))
    with translation.override("de"):
        html = Template("{% load stored_text %}{{ value|stored_text }}").render(Context({"value": stored}))
    assert html == "Der Ordner &lt;b&gt;x&lt;/b&gt; lässt sich nicht öffnen."


def test_a_job_result_and_error_show_in_the_users_language(make_job, alice, alice_client):
    alice.user.language = "de"
    alice.user.save(update_fields=["language"])
    done = make_job(alice.user, status=Job.Status.SUCCESS)
    Job.objects.filter(pk=done.pk).update(result=dump(Text("Analysed: %(done)s, failed: %(failed)s", done=6, failed=1)))
    lost = make_job(alice.user, status=Job.Status.FAILED)
    Job.objects.filter(pk=lost.pk).update(error=dump(Text("lost: not started within %(minutes)s min", minutes=12)))
    old = make_job(alice.user, status=Job.Status.SUCCESS)
    Job.objects.filter(pk=old.pk).update(result="6 analysed")  # a row from before

    assert (
        "<p>Analysiert: 6, fehlgeschlagen: 1</p>"
        in alice_client.get(reverse("jobs:detail", args=[done.pk])).content.decode()
    )
    page = alice_client.get(reverse("jobs:detail", args=[lost.pk])).content.decode()
    assert "verloren: nicht innerhalb von 12 Min. gestartet" in page
    assert "<p>6 analysed</p>" in alice_client.get(reverse("jobs:detail", args=[old.pk])).content.decode()

    alice.user.language = "en"
    alice.user.save(update_fields=["language"])
    assert "<p>Analysed: 6, failed: 1</p>" in alice_client.get(reverse("jobs:detail", args=[done.pk])).content.decode()
