"""What the legacy import keeps besides the rows it creates in the apps' own models.

Models of the `legacy` app; they keep the tables (and, for sealed values, the labels) they had in the
project package, where they lived until round two.

- LegacyImportMap: one row per imported legacy row (table, legacy id -> target pk). It is what makes
  re-running the import add nothing twice, and what the checksums read the target rows through.
- LegacySealedValue: a legacy ciphertext waiting for its owner's first login. The legacy encrypted the
  value under a key derived from the user's password, which the server does not have; storing the
  opaque ciphertext is as safe as the legacy database was. The first-login conversion decrypts it,
  writes the plaintext into the Mailhelper field (encrypted with the user's Mailhelper key) and clears
  the ciphertext. The fingerprint (SHA-256 of the ciphertext) stays, so checksums still match afterwards.
- LegacyUserKey: the legacy salt and wrapped data key of an imported user, until the first login
  derives the legacy key from the password; then they are cleared.
- LegacyRecord: legacy data Mailhelper has no column for yet (reply styles, sender patterns, the
  tag-name suggestion queue, legacy settings and per-message extras such as Bcc or translations), kept
  per legacy row so nothing is lost: plain values as JSON, encrypted ones encrypted with the owner's
  Mailhelper key after conversion.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from accounts.fields import EncryptedModel, EncryptedTextField


class LegacyImportMap(models.Model):
    class Kind(models.TextChoices):
        ROW = "row", "imported into a Mailhelper row"
        RECORD = "record", "kept as a legacy record"
        SKIPPED = "skipped", "not imported (see note)"

    table = models.CharField(max_length=40)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.ROW)
    legacy_id = models.BigIntegerField()
    target_pk = models.CharField(max_length=64, blank=True, help_text="The row, or the LegacyRecord, it became.")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.CASCADE, related_name="+")
    note = models.JSONField(default=dict, blank=True, help_text="Renames, skips, unconverted rule parts; no content.")
    imported_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "mailhelper_legacyimportmap"
        constraints = [models.UniqueConstraint(fields=["table", "legacy_id"], name="legacy_map_unique")]
        indexes = [models.Index(fields=["table", "target_pk"], name="legacy_map_target")]

    def __str__(self) -> str:
        return f"{self.table}#{self.legacy_id} -> {self.target_pk or '-'}"


class LegacySealedValue(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    target = models.CharField(max_length=60, help_text="Model label of the row the value belongs to.")
    target_pk = models.CharField(max_length=64)
    field = models.CharField(max_length=60, help_text="The legacy column.")
    ciphertext = models.TextField(  # noqa: DJ001 - NULL (cleared) differs from an empty legacy value
        null=True, blank=True, help_text="Legacy ciphertext; cleared once converted."
    )
    fingerprint = models.CharField(max_length=64)
    converted_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=200, blank=True)

    class Meta:
        db_table = "mailhelper_legacysealedvalue"
        constraints = [models.UniqueConstraint(fields=["target", "target_pk", "field"], name="legacy_sealed_unique")]
        indexes = [models.Index(fields=["owner", "target", "converted_at"], name="legacy_sealed_pending")]

    def __str__(self) -> str:
        return f"sealed {self.field} of {self.target} {self.target_pk}"


class LegacyUserKey(models.Model):
    class State(models.TextChoices):
        WAITING = "waiting", "waiting for first login"
        CONVERTING = "converting", "converting"
        DONE = "done", "converted"
        FAILED = "failed", "failed"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="legacy_key")
    legacy_id = models.BigIntegerField(unique=True)
    salt = models.TextField(blank=True)
    encrypted_dek = models.TextField(blank=True)
    state = models.CharField(max_length=12, choices=State.choices, default=State.WAITING)
    failure = models.CharField(max_length=300, blank=True, help_text="Why conversion stopped; never a secret.")
    imported_at = models.DateTimeField(auto_now_add=True)
    converted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "mailhelper_legacyuserkey"

    def __str__(self) -> str:
        return f"legacy key of user {self.user_id} ({self.state})"


class LegacyRecord(EncryptedModel):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    table = models.CharField(max_length=40)
    legacy_id = models.BigIntegerField()
    data = models.JSONField(default=dict, blank=True, help_text="Plain legacy columns without a Mailhelper home.")
    secrets = EncryptedTextField(default="", help_text="JSON of the decrypted legacy columns (after conversion).")

    sealed_label = "mailhelper.legacyrecord"  # sealed while the model was the project package's

    class Meta:
        db_table = "mailhelper_legacyrecord"
        constraints = [models.UniqueConstraint(fields=["table", "legacy_id"], name="legacy_record_unique")]
        indexes = [models.Index(fields=["owner", "table"], name="legacy_record_owner")]

    def __str__(self) -> str:
        return f"legacy {self.table}#{self.legacy_id}"
