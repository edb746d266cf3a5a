"""Users, the wrapped copies of their data keys, their audit logs, and invitations to sign up."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_otp.models import Device, ThrottlingMixin, TimestampMixin


class User(AbstractUser):
    email = models.EmailField("email address", unique=True)
    failed_login_count = models.PositiveIntegerField(default=0)
    locked_until = models.DateTimeField(null=True, blank=True)
    strict_mode = models.BooleanField(
        default=False,
        help_text="No server-wrapped data key is kept: background work runs only while the user is logged in.",
    )
    # Empty: the browser's language / the server's time zone (accounts/middleware.py).
    language = models.CharField(max_length=10, blank=True, choices=settings.LANGUAGES)
    time_zone = models.CharField(max_length=64, blank=True)

    def is_locked(self) -> bool:
        return self.locked_until is not None and self.locked_until > timezone.now()


class DataKeyWrap(models.Model):
    """One wrapped copy of a user's data key (DEK).

    The DEK itself is never stored. Each row holds it sealed under one key-encryption key: the
    user's password (Argon2id), one recovery code (HKDF), or the server's sync key. Changing a
    password or redeeming a code re-wraps the same DEK, so no content is ever re-encrypted.
    """

    class Kind(models.TextChoices):
        PASSWORD = "password", "password"
        RECOVERY = "recovery", "recovery code"
        SYNC = "sync", "server sync key"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="key_wraps")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    params = models.JSONField(default=dict, help_text="KDF name and parameters (salt, cost); no secret.")
    wrapped_key = models.BinaryField()
    key_id = models.CharField(max_length=32, blank=True, help_text="Fingerprint of the sync key used.")
    created_at = models.DateTimeField(auto_now_add=True)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "kind"],
                condition=~models.Q(kind="recovery"),
                name="one_password_and_sync_wrap_per_user",
            )
        ]
        indexes = [models.Index(fields=["kind", "key_id"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} wrap of user {self.user_id}"


class RecoveryDevice(TimestampMixin, ThrottlingMixin, Device):
    """django-otp device for the one-time recovery codes.

    The codes are not stored anywhere, not even hashed: a code is valid when it opens one of the
    user's unused recovery wraps. So a database dump reveals neither the codes nor the data key.
    """

    def get_throttle_factor(self) -> int:
        return 1

    def verify_token(self, token: str) -> bool:
        from .keyring import redeem_recovery_code

        verified, _ = self.verify_is_allowed()
        if not verified:
            return False
        if redeem_recovery_code(self.user, token) is None:
            self.throttle_increment()
            return False
        self.throttle_reset(commit=False)
        self.set_last_used_timestamp(commit=False)
        self.save()
        return True

    def remaining(self) -> int:
        return DataKeyWrap.objects.filter(
            user_id=self.user_id, kind=DataKeyWrap.Kind.RECOVERY, used_at__isnull=True
        ).count()


class AuditEvent(models.Model):
    """One security-relevant event of one user's account, for the user's own log (accounts/audit.py).

    Plain metadata only: when, what, from which address and browser. Never a password, code, key,
    token or any mail content; `detail` holds a few short labels (which login step failed, a mail
    account's name). The rows go with the user when the account is deleted.
    """

    class Kind(models.TextChoices):
        LOGIN = "login", _("Logged in")
        LOGIN_FAILED = "login_failed", _("Failed sign-in attempt")
        LOGIN_REFUSED_LOCKED = "login_refused_locked", _("Sign-in refused: account locked")
        LOCKED_OUT = "locked_out", _("Account locked after failed attempts")
        RECOVERY_LOGIN = "recovery_login", _("Logged in with a recovery code")
        PASSWORD_RESET = "password_reset", _("Password reset with a recovery code")
        TWO_FACTOR_ENABLED = "2fa_enabled", _("Two-factor authentication set up")
        RECOVERY_CODES_REGENERATED = "recovery_codes_new", _("New recovery codes made")
        PASSWORD_CHANGED = "password_changed", _("Password changed")
        STRICT_MODE_ON = "strict_mode_on", _("Strict mode turned on")
        STRICT_MODE_OFF = "strict_mode_off", _("Strict mode turned off")
        DATA_EXPORTED = "data_exported", _("Data downloaded")
        MAIL_ACCOUNT_ADDED = "mail_account_added", _("Mail account added")
        MAIL_ACCOUNT_CHANGED = "mail_account_changed", _("Mail account changed")
        MAIL_ACCOUNT_DELETED = "mail_account_deleted", _("Mail account removed")
        INVITATION_REDEEMED = "invitation_redeemed", _("Account created with an invitation")
        # Kept ready for OAuth sign-in to mail providers (not built yet).
        OAUTH_GRANTED = "oauth_granted", _("Access granted to a mail provider (OAuth)")
        OAUTH_REVOKED = "oauth_revoked", _("Access to a mail provider revoked (OAuth)")

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="audit_events")
    at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    ip = models.GenericIPAddressField("IP address", null=True, blank=True)
    user_agent = models.CharField(max_length=255, blank=True)
    detail = models.JSONField(default=dict, blank=True, help_text="Short labels only; no secret, no content.")

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["user", "-at"]), models.Index(fields=["at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} (user {self.user_id}, {self.at:%Y-%m-%d %H:%M})"


class Invitation(models.Model):
    """Leave to create one account, given by the operator (accounts/invitations.py has the rules).

    Either a link (`token_hash` set: the SHA-256 of a random token that appears once, in the link the
    operator passes on; the row alone cannot rebuild it) or the address alone (`token_hash` empty:
    registering with that e-mail address is allowed). Used once: `used_at`/`used_by` are set by one
    conditional UPDATE in the registration's transaction.
    """

    email = models.EmailField("email address", help_text="Stored in lower case.")
    token_hash = models.CharField(max_length=64, null=True, blank=True, unique=True, editable=False)
    invited_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    used_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["email"])]

    def __str__(self) -> str:
        return f"invitation of {self.email}"

    def save(self, *args, **kwargs) -> None:
        self.email = self.email.strip().lower()
        super().save(*args, **kwargs)

    @property
    def is_link(self) -> bool:
        return bool(self.token_hash)

    @property
    def state(self) -> str:
        """used | expired | valid, as the admin and the registration page say it."""
        if self.used_at is not None:
            return "used"
        if self.expires_at <= timezone.now():
            return "expired"
        return "valid"
