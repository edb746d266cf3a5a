"""Tags, their assignments to messages, suggestions, and what each tag learned from examples."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower

from accounts.fields import EncryptedBinaryField, EncryptedModel


class Tag(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=60)
    color = models.CharField(max_length=7, default="#4c6ef5", help_text="#rrggbb")
    description = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(Lower("name"), "owner", name="tag_name_unique_per_owner")]

    def __str__(self) -> str:
        return self.name


class TagAssignment(models.Model):
    class Source(models.TextChoices):
        MANUAL = "manual", "manual"
        RULE = "rule", "rule"
        SUGGESTION = "suggestion", "suggestion"
        SERVER = "server", "from the server"  # another mail client set its IMAP keyword (tags/keywords.py)

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="assignments")
    message = models.ForeignKey("mail.Message", on_delete=models.CASCADE, related_name="tag_assignments")
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.MANUAL)
    confidence = models.FloatField(null=True, blank=True, help_text="For suggestions: the score when applied.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tag", "message"], name="tag_once_per_message")]
        indexes = [models.Index(fields=["owner", "tag"])]

    def __str__(self) -> str:
        return f"{self.tag_id} on {self.message_id}"


class TagSuggestion(models.Model):
    class State(models.TextChoices):
        OPEN = "open", "open"
        ACCEPTED = "accepted", "accepted"
        REJECTED = "rejected", "rejected"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="suggestions")
    message = models.ForeignKey("mail.Message", on_delete=models.CASCADE, related_name="tag_suggestions")
    score = models.FloatField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-score"]
        constraints = [models.UniqueConstraint(fields=["tag", "message"], name="suggestion_once_per_message")]
        indexes = [models.Index(fields=["owner", "state"])]

    def __str__(self) -> str:
        return f"suggest {self.tag_id} for {self.message_id} ({self.state})"


class TagModelState(EncryptedModel):
    """What a tag learned from its examples: hashed feature weights, encrypted like the mail."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    tag = models.OneToOneField(Tag, on_delete=models.CASCADE, related_name="model_state")
    state = EncryptedBinaryField(null=True, compress=True)
    positives = models.PositiveIntegerField(default=0)
    negatives = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"model of tag {self.tag_id}"


class TagSettings(models.Model):
    owner = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tag_settings")
    auto_apply = models.BooleanField(default=False, help_text="Apply confident suggestions without asking.")
    auto_apply_threshold = models.FloatField(default=0.8, help_text="Score from 0 to 1 at which to apply.")
    server_keywords = models.BooleanField(
        default=False,
        help_text="Write tags and the category to the mail server as IMAP keywords, and read other clients' "
        "keywords back as tags.",
    )

    def __str__(self) -> str:
        return f"tag settings of {self.owner_id}"
