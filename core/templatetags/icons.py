"""`{% icon "attachment" "Has attachments" %}`: small inline SVG icons with a text alternative.

Emoji glyphs (📎, ★) show as empty boxes where no emoji font is installed (seen in headless Chromium
on a bare server), so icons are drawn, not typed. The SVG inherits the text colour (currentColor),
is sized by the `.icon` rule in app.css (no inline style: the CSP forbids it for the future) and
carries its label as `<title>` plus `aria-label`, so screen readers and tooltips say what it means.
An empty label marks the icon decorative (`aria-hidden`) for places where the text is next to it.
"""

from __future__ import annotations

from django import template
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

# 24x24 outline paths (stroke-drawn, in the manner of Feather/Lucide icons; drawn for this project).
PATHS: dict[str, str] = {
    "attachment": (
        '<path d="M21 11.5l-8.6 8.6a5 5 0 0 1-7.1-7.1l8.6-8.6a3.3 3.3 0 0 1 4.7 4.7l-8.6 8.6a1.7 1.7 0 0 1-2.4-2.4'
        'l7.9-7.9"/>'
    ),
    "flag": '<path d="M5 21V4"/><path d="M5 4h11l-2 4 2 4H5"/>',
    "invite": (
        '<rect x="3" y="5" width="18" height="16" rx="2"/><path d="M16 3v4M8 3v4M3 10h18"/><path d="M9 15l2 2 4-4"/>'
    ),
    "check": '<path d="M5 12.5l4.5 4.5L19 7"/>',
    "cross": '<path d="M6 6l12 12M18 6L6 18"/>',
    "up": '<path d="M12 19V5M6 11l6-6 6 6"/>',
    "down": '<path d="M12 5v14M6 13l6 6 6-6"/>',
}


@register.simple_tag
def icon(name: str, label: str = "") -> SafeString:
    """An icon by name (PATHS); an unknown name is a template error, not a silently empty span."""
    try:
        paths = PATHS[name]
    except KeyError:
        raise template.TemplateSyntaxError(f"no icon named {name!r}; known: {', '.join(sorted(PATHS))}") from None
    body = mark_safe(paths)  # noqa: S308 - constant markup from PATHS above, no user input
    # Always escaped: a string literal in a template arrives marked safe, and labels name tags and senders.
    label = escape(label)
    if not label:
        return format_html(
            '<svg class="icon icon-{}" viewBox="0 0 24 24" aria-hidden="true" focusable="false">{}</svg>', name, body
        )
    return format_html(
        '<svg class="icon icon-{}" viewBox="0 0 24 24" role="img" aria-label="{}" focusable="false">'
        "<title>{}</title>{}</svg>",
        name,
        label,
        label,
        body,
    )
