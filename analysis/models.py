"""Analysis results per message, the user's learned classifier, provider settings, trusted senders.

Models of the `analysis` app since round two. They were the `mail` app's before: their tables keep
those names, and their encrypted values the label they were sealed under (`sealed_label`).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.fields import EncryptedBinaryField, EncryptedModel, EncryptedTextField

from .language import language_name
from .types import CATEGORY_LABELS, Category

CATEGORY_CHOICES = [(c.value, CATEGORY_LABELS[c]) for c in Category]
LEVEL_CHOICES = [(1, "low"), (2, "medium"), (3, "high")]


class MessageAnalysis(EncryptedModel):
    """What the analysers concluded about one message, and what the user corrected.

    Every stored message gets a row in state "pending" in the same transaction that stores it,
    so a lost task can delay an analysis but never skip it (a periodic task picks up stragglers).
    The final_* columns hold what the UI shows: the user's correction if any, else the analysis.
    `stages_pending` is the durable marker of the post-analysis pipeline (analysis/post_analysis.py):
    set to every stage with the analysis result, emptied stage by stage as each succeeds.
    """

    class State(models.TextChoices):
        PENDING = "pending", "pending"
        DONE = "done", "done"
        FAILED = "failed", "failed"
        # Stored while its account's "Analyse new mail" was off: waits for a re-analysis, not for the sweep.
        DEFERRED = "deferred", "not analysed (analysis of new mail is off)"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    message = models.OneToOneField("mail.Message", on_delete=models.CASCADE, related_name="analysis")
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    failure_reason = models.CharField(max_length=300, blank=True)
    fallback_reason = models.CharField(
        max_length=300, blank=True, help_text="Why the configured LLM was not used for this message."
    )
    urgency = models.PositiveSmallIntegerField(choices=LEVEL_CHOICES, null=True)
    importance = models.PositiveSmallIntegerField(choices=LEVEL_CHOICES, null=True)
    category = models.CharField(max_length=20, choices=CATEGORY_CHOICES, blank=True)
    is_spam = models.BooleanField(default=False)
    is_newsletter = models.BooleanField(default=False)
    confidence = models.FloatField(default=0.0)
    method = models.CharField(max_length=120, blank=True)
    reasons = models.JSONField(default=list, blank=True)
    summary = EncryptedTextField(default="")
    language = models.CharField(
        max_length=8, blank=True, help_text="ISO 639-1 code of the message's language; empty when unknown."
    )
    corrected_urgency = models.PositiveSmallIntegerField(choices=LEVEL_CHOICES, null=True, blank=True)
    corrected_importance = models.PositiveSmallIntegerField(choices=LEVEL_CHOICES, null=True, blank=True)
    corrected_category = models.CharField(max_length=20, choices=CATEGORY_CHOICES, blank=True)
    corrected_spam = models.BooleanField(null=True, blank=True)
    final_urgency = models.PositiveSmallIntegerField(null=True)
    final_importance = models.PositiveSmallIntegerField(null=True)
    final_category = models.CharField(max_length=20, choices=CATEGORY_CHOICES, blank=True)
    final_spam = models.BooleanField(default=False)
    done_at = models.DateTimeField(null=True, blank=True, help_text="Cleared from the matrix by the user.")
    queued_at = models.DateTimeField(auto_now_add=True)
    analysed_at = models.DateTimeField(null=True, blank=True)
    stages_pending = ArrayField(
        models.CharField(max_length=100),
        default=list,
        blank=True,
        help_text="Post-analysis stages still to run for this message (MAILHELPER_POST_ANALYSIS_STAGES).",
    )
    stage_attempts = models.PositiveSmallIntegerField(default=0, help_text="Runs of the stages that failed.")
    stage_error = models.CharField(
        max_length=300, blank=True, help_text="Stage and exception class of the last failure (never content)."
    )

    sealed_label = "mail.messageanalysis"

    class Meta:
        db_table = "mail_messageanalysis"
        indexes = [
            models.Index(fields=["owner", "state"], name="analysis_owner_state"),
            models.Index(fields=["owner", "final_urgency", "final_importance"], name="analysis_owner_cell"),
            # The stragglers sweep: only the few rows with stages still to run are in it.
            models.Index(
                fields=["analysed_at"], name="analysis_stages_pending", condition=~models.Q(stages_pending=[])
            ),
        ]

    def __str__(self) -> str:
        return f"analysis of {self.message_id} ({self.state})"

    def refresh_final(self) -> None:
        self.final_urgency = self.corrected_urgency or self.urgency
        self.final_importance = self.corrected_importance or self.importance
        self.final_category = self.corrected_category or self.category
        self.final_spam = self.corrected_spam if self.corrected_spam is not None else self.is_spam

    @property
    def is_corrected(self) -> bool:
        return bool(
            self.corrected_urgency or self.corrected_importance or self.corrected_category
            or self.corrected_spam is not None
        )  # fmt: skip

    @property
    def language_name(self) -> str:
        return language_name(self.language)


class LearnedClassifier(EncryptedModel):
    """The user's online classifier: hashed-feature weights only, encrypted like their mail."""

    owner = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    state = EncryptedBinaryField(null=True, compress=True)
    corrections = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    sealed_label = "mail.learnedclassifier"

    class Meta:
        db_table = "mail_learnedclassifier"

    def __str__(self) -> str:
        return f"classifier of user {self.owner_id}"


class ProviderSettings(EncryptedModel):
    """A user's optional LLM provider. Without one (or when it fails) the built-in analyser runs."""

    class Kind(models.TextChoices):
        OLLAMA = "ollama", "Ollama"
        OPENAI = "openai", _("OpenAI-compatible (OpenAI, Mistral, vLLM, LM Studio, llama.cpp)")
        ANTHROPIC = "anthropic", "Anthropic"

    owner = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    enabled = models.BooleanField(default=False)
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.OLLAMA)
    base_url = models.URLField(max_length=300, default="http://127.0.0.1:11434")
    model = models.CharField(max_length=120, default="llama3.1")
    api_key = EncryptedTextField(default="")
    timeout_seconds = models.PositiveIntegerField(default=30)
    use_for_replies = models.BooleanField(default=True)

    sealed_label = "mail.providersettings"

    class Meta:
        db_table = "mail_providersettings"

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for user {self.owner_id}"


class TrustedSender(models.Model):
    """A VIP/trusted sender pattern: an address, a domain ("@example.com") or a wildcard pattern.

    Raises urgency and importance (the "urgency booster") and is usable in rule conditions.
    """

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="trusted_senders")
    account = models.ForeignKey(
        "mail.MailAccount", null=True, blank=True, on_delete=models.CASCADE, help_text="Only for this account."
    )
    pattern = models.CharField(max_length=320)
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "mail_trustedsender"
        ordering = ["pattern"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "account", "pattern"], name="trusted_sender_unique", nulls_distinct=False
            )
        ]

    def __str__(self) -> str:
        return self.pattern


class TopicModel(EncryptedModel):
    """The user's topic projection (analysis/embeddings.py): bucket ids, idf and LSA components,
    encrypted like their mail. ``version`` grows with every fit; vectors of another version are stale."""

    owner = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    state = EncryptedBinaryField(null=True, compress=True)
    version = models.PositiveIntegerField(default=0)
    dims = models.PositiveSmallIntegerField(default=0)
    n_messages = models.PositiveIntegerField(default=0, help_text="Messages the projection was fitted on.")
    fitted_at = models.DateTimeField(null=True, blank=True)
    fit_seconds = models.FloatField(default=0.0)

    sealed_label = "mail.topicmodel"

    class Meta:
        db_table = "mail_topicmodel"

    def __str__(self) -> str:
        return f"topic model of user {self.owner_id} (v{self.version})"


class MessageVector(EncryptedModel):
    """One message's topic vector (float16, L2-normalised), encrypted and bound to owner and row.

    The primary key is the message's own id, so a vector can be written with one upsert whose
    ciphertext is sealed for the row it lands in.
    """

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    message = models.OneToOneField("mail.Message", on_delete=models.CASCADE, related_name="topic_vector")
    version = models.PositiveIntegerField()
    vector = EncryptedBinaryField()
    updated_at = models.DateTimeField(auto_now=True)

    sealed_label = "mail.messagevector"

    class Meta:
        db_table = "mail_messagevector"
        indexes = [models.Index(fields=["owner", "version", "updated_at"], name="vector_owner_version")]

    def __str__(self) -> str:
        return f"vector of {self.message_id}"


class MessageTranslation(EncryptedModel):
    """A message's subject and text in another language, made by the user's language model (or imported
    from the legacy application). Encrypted like the message it translates."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    message = models.ForeignKey("mail.Message", on_delete=models.CASCADE, related_name="translations")
    language = models.CharField(max_length=8, help_text="ISO 639-1 code of the translation's language.")
    subject = EncryptedTextField(default="")
    body = EncryptedTextField(default="")
    method = models.CharField(max_length=120, help_text='"llm:<kind>:<model>" or "legacy:<engine>".')
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["message", "language"], name="translation_message_language")]

    def __str__(self) -> str:
        return f"translation {self.pk}"

    @property
    def language_name(self) -> str:
        return language_name(self.language)


class TranslationSettings(models.Model):
    """Whether foreign mail is translated as it arrives, and into which language."""

    owner = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    auto_translate = models.BooleanField(default=False)
    language = models.CharField(max_length=8, default="en", help_text="ISO 639-1 code to translate into.")

    def __str__(self) -> str:
        return f"translation settings of user {self.owner_id}"
