"""Every page carries a Content-Security-Policy that allows scripts from this server only."""

import re
from email.message import EmailMessage
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from mail.models import Message
from tests.plugins.mail import create_account, run_sync

pytestmark = pytest.mark.django_db

TEMPLATES = Path(settings.BASE_DIR) / "templates"


def _directives(response) -> dict[str, str]:
    header = response.headers["Content-Security-Policy"]
    return dict(part.strip().split(" ", 1) for part in header.split(";"))


def test_pages_allow_scripts_from_this_server_only(alice_client, client):
    for response in (client.get(reverse("accounts:login")), alice_client.get(reverse("mail:list"))):
        directives = _directives(response)
        assert directives["script-src"] == "'self'"
        assert "unsafe" not in directives["default-src"] + directives["style-src"]
        assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
        assert "camera=()" in response.headers["Permissions-Policy"]
        assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"


def test_templates_have_no_inline_script_or_handler():
    """What the policy would block must not be written in the first place (it would silently break)."""
    offenders = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        text = path.read_text()
        if re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text):
            offenders.append(f"{path.name}: inline <script>")
        if re.search(r"\son[a-z]+\s*=", text):
            offenders.append(f"{path.name}: on... handler attribute")
        if "javascript:" in text.lower():
            offenders.append(f"{path.name}: javascript: URL")
    assert offenders == []


def test_remote_images_are_allowed_only_where_the_user_asked(alice, alice_client, dovecot, imap_user):
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "a@example.test", "me@example.test", "Pictures"
    msg.set_content("Hi")
    msg.add_alternative('<p>Hi</p><img src="https://tracker.example/p.gif">', subtype="html")
    dovecot.deliver(imap_user, bytes(msg))
    run_sync(create_account(alice.user, imap_user, dovecot))
    message = Message.objects.get(owner=alice.user)
    page = reverse("mail:message", args=[message.pk])
    assert "https:" not in _directives(alice_client.get(page))["img-src"]
    assert "https:" in _directives(alice_client.get(page + "?images=1"))["img-src"]
