"""Icons are inline SVG with a text alternative, and no template relies on an emoji font."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.template import Context, Template, TemplateSyntaxError
from django.urls import reverse

from core.templatetags.icons import PATHS
from mail.models import Message
from tests.plugins.mail import create_account, make_raw, run_sync

# Pictographs and dingbats: drawn only by an emoji or symbol font a bare server (or a phone) may lack.
NEEDS_A_SYMBOL_FONT = re.compile("[\u2600-\u27bf\u2b00-\u2bff\U0001f000-\U0001faff]")


def _render(text: str) -> str:
    return Template("{% load icons %}" + text).render(Context())


@pytest.mark.parametrize("name", sorted(PATHS))
def test_a_labelled_icon_is_an_image_with_its_label_and_an_unlabelled_one_is_hidden(name):
    labelled = _render(f'{{% icon "{name}" "Says <what>" %}}')
    assert labelled.startswith(f'<svg class="icon icon-{name}" viewBox="0 0 24 24" role="img"')
    assert 'aria-label="Says &lt;what&gt;"' in labelled and "<title>Says &lt;what&gt;</title>" in labelled
    hidden = _render(f'{{% icon "{name}" %}}')
    assert 'aria-hidden="true"' in hidden and "<title>" not in hidden and "role=" not in hidden


def test_an_unknown_icon_is_a_template_error():
    with pytest.raises(TemplateSyntaxError, match="no icon named 'paperclip'"):
        _render('{% icon "paperclip" %}')


def test_no_template_draws_a_symbol_with_a_font_glyph():
    found = []
    for path in Path(settings.BASE_DIR, "templates").rglob("*.html"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if NEEDS_A_SYMBOL_FONT.search(line):
                found.append(f"{path.relative_to(settings.BASE_DIR)}:{number}")
    assert not found, f"use {{% icon %}} instead of these glyphs: {found}"


@pytest.mark.django_db
def test_the_list_marks_attachments_flags_and_invitations_with_icons(alice, alice_client, dovecot, imap_user):
    dovecot.deliver(imap_user, make_raw(1, subject="With a file", attachment=b"%PDF-1.4 tiny"))
    dovecot.deliver(imap_user, make_raw(2, subject="A meeting"))
    account = create_account(alice.user, imap_user, dovecot)
    assert run_sync(account).status == "success"
    meeting = next(m for m in Message.objects.filter(account=account) if m.subject == "A meeting")
    Message.objects.filter(pk=meeting.pk).update(calendar_method="REQUEST", flagged=True)

    body = alice_client.get(reverse("mail:list")).content.decode()
    rows = {
        m.group(1): m.group(0) for m in re.finditer(r'<a href="[^"]+">(With a file|A meeting)</a>.*?</td>', body, re.S)
    }
    assert 'aria-label="Has attachments"' in rows["With a file"]
    assert 'aria-label="Flagged"' not in rows["With a file"] and "Calendar invitation" not in rows["With a file"]
    assert 'aria-label="Flagged"' in rows["A meeting"] and 'aria-label="Calendar invitation"' in rows["A meeting"]
    assert "Has attachments" not in rows["A meeting"]
