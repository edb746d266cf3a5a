"""The calendar event a message carries: one row per invitation message (its update or cancellation
is another message, hence another row of the same `uid_hash`)."""

from __future__ import annotations

import json

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.fields import EncryptedModel, EncryptedTextField


class Event(EncryptedModel):
    """What the card shows. Title, place, people and the recurrence rule are content (encrypted); the
    times, method and answer are metadata the conflict check and the lists query (plain)."""

    class Answer(models.TextChoices):
        NONE = "", "not answered"
        ACCEPTED = "accepted", _("Accepted")
        TENTATIVE = "tentative", _("Tentative")
        DECLINED = "declined", _("Declined")

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    message = models.OneToOneField("mail.Message", on_delete=models.CASCADE, related_name="event")
    source = models.ForeignKey(
        "mail.Attachment", on_delete=models.SET_NULL, null=True, related_name="+",
        help_text="The calendar part (downloadable as .ics).",
    )  # fmt: skip
    uid = EncryptedTextField(default="")
    uid_hash = models.CharField(max_length=64, help_text="SHA-256 of the iCalendar UID: joins updates and cancels.")
    method = models.CharField(max_length=20)
    sequence = models.PositiveIntegerField(default=0)
    starts_at = models.DateTimeField(null=True)
    ends_at = models.DateTimeField(null=True)
    all_day = models.BooleanField(default=False)
    time_zone = models.CharField(max_length=64, blank=True)
    zone_note = models.CharField(max_length=200, blank=True)
    summary = EncryptedTextField(default="")
    location = EncryptedTextField(default="")
    organizer_email = EncryptedTextField(default="")
    organizer_name = EncryptedTextField(default="")
    attendees_json = EncryptedTextField(default="[]")
    recurrence = EncryptedTextField(default="")
    recurrence_id = models.DateTimeField(null=True, blank=True, help_text="Set when about one occurrence.")
    cancelled = models.BooleanField(default=False)
    superseded = models.BooleanField(default=False, help_text="A newer invitation for the same event arrived.")
    answer = models.CharField(max_length=10, choices=Answer.choices, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    answer_error = models.CharField(max_length=300, blank=True)
    parse_error = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["owner", "uid_hash"], name="event_owner_uid"),
            models.Index(fields=["owner", "starts_at"], name="event_owner_start"),
        ]

    def __str__(self) -> str:
        return f"event {self.pk}"

    @property
    def attendees(self) -> list[dict]:
        return json.loads(self.attendees_json or "[]")

    @property
    def answerable(self) -> bool:
        return self.method == "REQUEST" and not self.cancelled and not self.parse_error and bool(self.organizer_email)
