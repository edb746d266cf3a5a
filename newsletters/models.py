"""What Mailhelper did when a user unsubscribed from a sender: the page shows it, support can read it."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Unsubscription(models.Model):
    """One unsubscribe attempt. No URL or address of the sender's list is kept: those links often
    carry a token that identifies the recipient, and they stay in the (encrypted) message."""

    class Method(models.TextChoices):
        ONE_CLICK = "one_click", _("one-click (RFC 8058)")
        MAILTO = "mailto", _("e-mail to the list")
        LINK = "link", _("the sender's web page")
        NONE = "none", _("none offered")

    class State(models.TextChoices):
        DONE = "done", _("unsubscribed")
        MANUAL = "manual", _("open the sender's page to finish")
        FAILED = "failed", _("failed")

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    account = models.ForeignKey("mail.MailAccount", on_delete=models.SET_NULL, null=True, related_name="+")
    sender = models.CharField(max_length=320, help_text="The From address the user unsubscribed from.")
    method = models.CharField(max_length=10, choices=Method.choices)
    state = models.CharField(max_length=10, choices=State.choices)
    detail = models.CharField(max_length=300, blank=True, help_text="Why it failed; never a URL or content.")
    archive_rule = models.ForeignKey(
        "rules.Rule", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        help_text="The rule created to archive this sender's mail, if the user asked for it.",
    )  # fmt: skip
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["owner", "sender", "-created_at"], name="unsub_owner_sender")]

    def __str__(self) -> str:
        return f"{self.sender}: {self.get_state_display()}"
