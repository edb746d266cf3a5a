"""analysis.rows writes the list's and the search results' row markup in Python; it must be the markup
the templates wrote before (kept here as the reference), for every branch a row has, escaped alike and
in the reader's language."""

from __future__ import annotations

import re

import pytest
from django.template import Context, Template
from django.utils import translation

from analysis.rows import MessageRow, list_rows_html, result_rows_html

# The row loops of mail/message_list.html and mail/_result_rows.html before they moved to analysis.rows.
LIST_TEMPLATE = """{% load i18n icons %}{% translate "Flagged" as flagged_label %}{% translate "Calendar invitation" as invitation_label %}{% translate "Has attachments" as attachments_label %}
        {% for m in rows %}
        <tr class="{% if not m.seen %}unread{% endif %}{% if m.flagged %} flagged{% endif %}" data-message="{{ m.pk }}">
          <td><input type="checkbox" name="ids" value="{{ m.pk }}" aria-label="{{ m.select_label }}"></td>
          <td class="from">{{ m.sender }}{% if not account %}<br><small class="muted">{{ m.location }}</small>{% endif %}</td>
          <td class="subject"><a href="{{ m.url }}">{{ m.subject }}</a>{% if m.flagged %} {% icon "flag" flagged_label %}{% endif %}{% if m.is_invitation %} {% icon "invite" invitation_label %}{% endif %}{% if m.has_attachments %} {% icon "attachment" attachments_label %}{% endif %}{% if m.moving %} <small class="muted">({% translate "moving…" %})</small>{% endif %}
            {% if m.tags %}<span class="tags-inline">{% for name, color in m.tags %}<span class="tag" style="--tag: {{ color }}">{{ name }}</span>{% endfor %}</span>{% endif %}
            {% if m.summary %}<br><small class="muted summary">{{ m.summary }}</small>{% endif %}</td>
          <td class="priority">{% if m.analysis_state == "done" %}<span class="badge cat-{{ m.category }}">{{ m.category_label }}</span>
            <span class="score u{{ m.urgency }} i{{ m.importance }}" title="{{ m.score_title }}">U{{ m.urgency }}·I{{ m.importance }}</span>{% elif m.analysis_state == "failed" %}<small class="muted">{% translate "not analysed" %}</small>{% else %}<small class="muted">…</small>{% endif %}</td>
          <td class="date"><time datetime="{{ m.date_iso }}">{{ m.date_text }}</time></td>
        </tr>
        {% endfor %}"""  # noqa: E501

RESULT_TEMPLATE = """{% load i18n icons %}{% translate "Has attachments" as attachments_label %}{% for m in results %}<tr class="{% if not m.seen %}unread{% endif %}" data-message="{{ m.pk }}"><td class="from">{{ m.sender }}<br><small class="muted">{{ m.location }}</small></td>
  <td class="subject"><a href="{{ m.url }}">{{ m.subject }}</a>{% if m.has_attachments %} {% icon "attachment" attachments_label %}{% endif %}
    {% if m.tags %}<span class="tags-inline">{% for name, color in m.tags %}<span class="tag" style="--tag: {{ color }}">{{ name }}</span>{% endfor %}</span>{% endif %}</td>
  <td class="date"><time datetime="{{ m.date_iso }}">{{ m.date_text }}</time></td></tr>{% endfor %}"""  # noqa: E501

HOSTILE = "<script>alert(\"x\")</script> & 'quoted'"


def row(n: int, **changes) -> MessageRow:
    values = dict(
        pk=f"00000000-0000-0000-0000-{n:012d}", url=f"/mail/messages/{n}/", seen=False, flagged=False,
        sender=f"Anna {HOSTILE}", location=f"Work / INBOX {HOSTILE}", subject=f"Subject {HOSTILE}",
        has_attachments=False, is_invitation=False, moving=False, tags=(), analysis_state="done",
        summary=f"Summary {HOSTILE}", category="reply_expected", category_label=f"Reply {HOSTILE}",
        urgency=3, importance=1, confidence="0.75", date_iso="2026-03-01T10:00:00+01:00",
        date_text="2026-03-01 10:00", select_label=f"Select {HOSTILE}", score_title=f"score {HOSTILE}",
    )  # fmt: skip
    values.update(changes)
    return MessageRow(**values)


ROWS = [
    row(1),
    row(2, seen=True, flagged=True, is_invitation=True, has_attachments=True, moving=True),
    row(3, tags=(("Urgent", "#aa0000"), (f"Tag {HOSTILE}", '"red"')), summary=""),
    row(4, analysis_state="failed", summary="", category="", category_label="", urgency=None, importance=None),
    row(5, analysis_state="pending", summary="", category="", category_label="", urgency=None, importance=None),
    row(6, analysis_state="", subject="", sender=""),
]


def squeezed(html: str) -> str:
    """Whitespace between tags does not count (the loop's indentation moved)."""
    return re.sub(r">\s+<", "><", html.strip())


@pytest.mark.parametrize("language", ["en", "de"])
@pytest.mark.parametrize("spans_accounts", [True, False])
def test_list_rows_are_the_templates_markup(language, spans_accounts):
    with translation.override(language):
        context = {"rows": ROWS, "account": None if spans_accounts else object()}
        expected = Template(LIST_TEMPLATE).render(Context(context))
        written = list_rows_html(ROWS, show_location=spans_accounts)
    assert squeezed(written) == squeezed(expected)
    assert "<script>" not in written and "&lt;script&gt;" in written
    if language == "de":
        assert "Markiert" in written and "wird verschoben…" in written and "nicht analysiert" in written


@pytest.mark.parametrize("language", ["en", "de"])
def test_result_rows_are_the_templates_markup(language):
    with translation.override(language):
        expected = Template(RESULT_TEMPLATE).render(Context({"results": ROWS}))
        written = result_rows_html(ROWS)
    assert squeezed(written) == squeezed(expected)
    assert "<script>" not in written
