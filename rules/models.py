"""Rules and their execution log."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Rule(models.Model):
    """A user's rule: conditions and actions as JSON validated against rules.spec.RULE_SCHEMA."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="rules")
    name = models.CharField(max_length=120)
    order = models.PositiveIntegerField(default=0)
    enabled = models.BooleanField(default=True)
    definition = models.JSONField(help_text='{"match": "all"|"any", "conditions": [...], "actions": [...]}')
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_triggered_at = models.DateTimeField(null=True, blank=True)
    times_triggered = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["order", "id"]

    def __str__(self) -> str:
        return self.name


class RuleLog(models.Model):
    """One rule applied to one message: when, which actions, and whether they worked.

    The unique (rule, message) pair is also what makes rules run once per message: the log row
    is claimed before the actions run, so a redelivered task finds it and does nothing.
    """

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="logs")
    message = models.ForeignKey("mail.Message", on_delete=models.CASCADE, related_name="rule_logs")
    ran_at = models.DateTimeField(auto_now_add=True)
    actions = models.JSONField(default=list, help_text="Descriptions of the actions taken; no content.")
    success = models.BooleanField(default=True)
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-ran_at"]
        constraints = [models.UniqueConstraint(fields=["rule", "message"], name="rule_once_per_message")]
        indexes = [models.Index(fields=["owner", "-ran_at"])]

    def __str__(self) -> str:
        return f"rule {self.rule_id} on {self.message_id}"
