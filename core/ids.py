"""Primary keys read from request data (form fields, query strings), checked before they reach a query.

A view that passes a raw POST value to ``pk=`` or ``pk__in=`` turns a tampered form ("1' OR 1=1", a
number where a UUID belongs) into a server error: the database field refuses the value while the
query is built. These helpers convert with the model's own primary key field and drop what it
refuses, so a malformed id means "nothing selected", like an id of another user's row.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import models


def clean_ids(model: type[models.Model], values: Iterable[str]) -> list:
    """The values that are valid primary keys of `model`, converted; the others left out."""
    field = model._meta.pk
    ids = []
    for value in values:
        try:
            ids.append(field.to_python(value))
        except ValidationError:
            continue
    return [pk for pk in ids if pk is not None]


def clean_id(model: type[models.Model], value: str | None):
    """`value` as a primary key of `model`, or None when it is missing or not one."""
    ids = clean_ids(model, [value]) if value else []
    return ids[0] if ids else None
