"""Model fields whose values are stored encrypted with the owner's data key.

Usage in any app::

    class Message(EncryptedModel):
        owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
        subject = EncryptedTextField(blank=True, default="")

Reading `message.subject` decrypts on first access (and caches the plaintext on the instance);
saving encrypts with associated data binding the value to (owner, model, field, primary key), so a
ciphertext copied to another row, field or user fails to open. The model therefore inherits
EncryptedModel (a UUID key known before the first save) and has an `owner` foreign key (or `owner_field=`).

Plaintext can never reach the database by accident: `update()`, `bulk_update()` and lookups with a
plain value raise TypeError instead of writing or comparing cleartext.
"""

from __future__ import annotations

import base64
import contextvars
import uuid
from typing import ClassVar

from django.core import checks
from django.db import models
from django.db.models.query_utils import DeferredAttribute

from . import crypto
from .crypto import value_aad


class Sealed(bytes):
    """Ciphertext as read from or written to the database (as opposed to plaintext bytes)."""


# While set, encrypted attributes hand out their ciphertext instead of decrypting it: used by
# refresh_from_db, which copies every field from a fresh instance and must not need the key.
_raw_access: contextvars.ContextVar[bool] = contextvars.ContextVar("mailhelper_raw_access", default=False)


def sealed_label_of(model: type[models.Model]) -> str:
    """The label a model's encrypted values are bound to: its own, or the one it had before it moved."""
    return getattr(model, "sealed_label", None) or model._meta.label_lower


def encrypted_fields(model: type[models.Model]) -> tuple[tuple[str, bool, bool], ...]:
    """(name, compressed, text) of each encrypted field of a model: what code that seals values
    without Django needs to know to seal them as the fields do (mail/sync_pool.py)."""
    return tuple(
        (f.name, f.compress, isinstance(f, EncryptedTextField))
        for f in model._meta.concrete_fields
        if isinstance(f, _EncryptedField)
    )


def sealed_value(model: type[models.Model], name: str, owner_id: int, pk: object, value, dek: bytes) -> Sealed:
    """A value of an encrypted field sealed as save() would seal it in the row (owner_id, pk), for
    code that writes rows without instances (core.db.copy.copy_insert_values)."""
    field = model._meta.get_field(name)
    if not isinstance(field, _EncryptedField):
        raise TypeError(f"{model._meta.label}.{name} is not encrypted")
    aad = value_aad(owner_id, sealed_label_of(model), name, pk)
    return Sealed(crypto.seal(dek, field.to_plain_bytes(value), aad, compress=field.compress))


def seal_fields(instance, dek: bytes, names: tuple[str, ...] | None = None) -> None:
    """Encrypt an unsaved instance's encrypted fields now (see _EncryptedField.seal_with)."""
    for field in instance._meta.concrete_fields:
        if isinstance(field, _EncryptedField) and (names is None or field.name in names):
            field.seal_with(instance, dek)


class EncryptedModel(models.Model):
    """Base for models with encrypted fields: a UUID key known before the first save (it is part of
    each value's associated data), and a refresh_from_db that does not decrypt (so it works for a
    locked strict-mode user and costs nothing until a value is read)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)

    #: The model label bound into each value's associated data. A model that moves to another app
    #: keeps the label its values were sealed under (set it to the old label), or they no longer open.
    sealed_label: ClassVar[str | None] = None

    class Meta:
        abstract = True

    def refresh_from_db(self, using=None, fields=None, from_queryset=None):
        token = _raw_access.set(True)
        try:
            super().refresh_from_db(using=using, fields=fields, from_queryset=from_queryset)
        finally:
            _raw_access.reset(token)


def open_value(model: type[models.Model], field_name: str, owner_id: int, pk: object, sealed: bytes | None):
    """The plaintext of an encrypted value read with values() or values_list(), or None.

    Pages that need a few fields of many rows (the message list) read them as values instead of
    model instances; there is no instance to decrypt lazily, so the caller names the model, the row's
    owner and primary key, which are the value's associated data, exactly as the instance would.
    """
    if sealed is None:
        return None
    from .keyring import dek_for

    field = model._meta.get_field(field_name)
    aad = value_aad(owner_id, sealed_label_of(model), field.name, pk)
    return field.from_plain_bytes(crypto.open_sealed(dek_for(owner_id), sealed, aad))


class _EncryptedAttribute(DeferredAttribute):
    """Data descriptor: holds plaintext or Sealed in the instance dict, decrypts lazily."""

    def __get__(self, instance, cls=None):
        if instance is None:
            return self
        value = super().__get__(instance, cls)
        if isinstance(value, Sealed) and not _raw_access.get():
            value = self.field.decrypt(instance, value)
            instance.__dict__[self.field.attname] = value
        return value

    def __set__(self, instance, value) -> None:
        instance.__dict__[self.field.attname] = value


class _EncryptedField(models.BinaryField):
    descriptor_class = _EncryptedAttribute

    def __init__(self, *args, owner_field: str = "owner", compress: bool = False, **kwargs):
        self.owner_field = owner_field
        self.compress = compress
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        if self.owner_field != "owner":
            kwargs["owner_field"] = self.owner_field
        if self.compress:
            kwargs["compress"] = True
        kwargs.pop("editable", None)
        return name, path, args, kwargs

    def check(self, **kwargs):
        errors = super().check(**kwargs)
        opts = self.model._meta
        try:
            opts.get_field(self.owner_field)
        except Exception:
            errors.append(
                checks.Error(
                    f"{opts.label}.{self.name} needs an owner foreign key named {self.owner_field!r}",
                    obj=self,
                    id="accounts.E101",
                )
            )
        if not issubclass(self.model, EncryptedModel):
            errors.append(
                checks.Error(
                    f"{opts.label}.{self.name} is encrypted: the model must inherit accounts.fields.EncryptedModel "
                    "(UUID primary key known before saving; refresh without decrypting)",
                    obj=self,
                    id="accounts.E102",
                )
            )
        return errors

    # -- conversion between plaintext and bytes; overridden per field type
    def to_plain_bytes(self, value) -> bytes:
        raise NotImplementedError

    def from_plain_bytes(self, raw: bytes):
        raise NotImplementedError

    def _aad(self, instance) -> bytes:
        owner_id = getattr(instance, f"{self.owner_field}_id")
        if owner_id is None or instance.pk is None:
            raise ValueError(f"{instance._meta.label}.{self.name}: owner and primary key must be set first")
        return value_aad(owner_id, sealed_label_of(type(instance)), self.name, instance.pk)

    def decrypt(self, instance, sealed: Sealed):
        from .keyring import dek_for

        owner_id = getattr(instance, f"{self.owner_field}_id")
        return self.from_plain_bytes(crypto.open_sealed(dek_for(owner_id), sealed, self._aad(instance)))

    def encrypt(self, instance, value) -> Sealed:
        from .keyring import dek_for

        owner_id = getattr(instance, f"{self.owner_field}_id")
        plaintext = self.to_plain_bytes(value)
        return Sealed(crypto.seal(dek_for(owner_id), plaintext, self._aad(instance), compress=self.compress))

    def seal_with(self, instance, dek: bytes) -> None:
        """Encrypt the instance's value now, with a key the caller already holds.

        For bulk work off the request/DB thread (sync encrypts in its fetch thread, so compression
        and encryption overlap with database writes); save() then stores the ciphertext as is.
        """
        value = instance.__dict__.get(self.attname)
        if value is None or isinstance(value, Sealed):
            return
        plaintext = self.to_plain_bytes(value)
        sealed = crypto.seal(dek, plaintext, self._aad(instance), compress=self.compress)
        instance.__dict__[self.attname] = Sealed(sealed)

    def pre_save(self, model_instance, add):
        value = model_instance.__dict__.get(self.attname)
        if value is None or isinstance(value, Sealed):
            return value
        return self.encrypt(model_instance, value)

    def from_db_value(self, value, expression, connection):
        if value is None:
            return None
        return Sealed(value)

    def get_prep_value(self, value):
        if value is None or isinstance(value, Sealed):
            return value
        raise TypeError(
            f"{self.model._meta.label}.{self.name} is encrypted: plaintext cannot be written with "
            "update()/bulk_update() nor used in a lookup; assign it and call save()"
        )

    def get_db_prep_value(self, value, connection, prepared=False):
        value = self.get_prep_value(value) if not prepared else value
        return None if value is None else bytes(value)

    def value_to_string(self, obj):
        """Serialise the ciphertext, never the plaintext (dumpdata, fixtures)."""
        raw = obj.__dict__.get(self.attname)
        if raw is None:
            return None
        if not isinstance(raw, Sealed):
            raw = self.encrypt(obj, raw)
        return base64.b64encode(raw).decode("ascii")

    def to_python(self, value):
        return value


class EncryptedTextField(_EncryptedField):
    """Text (subject, body, password) encrypted with the owner's data key."""

    def get_default(self):
        return models.Field.get_default(self)

    def _check_str_default_value(self):
        return []  # a text default ("") is right here; BinaryField's check expects bytes

    def to_plain_bytes(self, value) -> bytes:
        if not isinstance(value, str):
            raise TypeError(f"{self.model._meta.label}.{self.name} holds text, got {type(value).__name__}")
        return value.encode("utf-8")

    def from_plain_bytes(self, raw: bytes) -> str:
        return raw.decode("utf-8")


class EncryptedBinaryField(_EncryptedField):
    """Bytes (raw message source, attachments) encrypted with the owner's data key."""

    def to_plain_bytes(self, value) -> bytes:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise TypeError(f"{self.model._meta.label}.{self.name} holds bytes, got {type(value).__name__}")
        return bytes(value)

    def from_plain_bytes(self, raw: bytes) -> bytes:
        return raw
