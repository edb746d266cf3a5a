"""A test-only model exercising the encrypted fields the way product apps will use them."""

from django.conf import settings
from django.db import models

from accounts.fields import EncryptedBinaryField, EncryptedModel, EncryptedTextField


class Note(EncryptedModel):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    title = models.CharField(max_length=100, blank=True)
    body = EncryptedTextField(blank=True, default="")
    attachment = EncryptedBinaryField(null=True, blank=True)

    def __str__(self) -> str:
        return self.title or str(self.id)
