"""`{{ value|stored_text }}`: a text a worker stored (core.stored_text), in the viewer's language."""

from __future__ import annotations

from typing import Any

from django import template

from core import stored_text as texts

register = template.Library()


@register.filter(name="stored_text")
def stored_text(value: Any) -> str:
    """Autoescaped like any string: the arguments may hold server names and folder names."""
    return texts.render(value)
