"""Texts that a worker stores for the user to read later, translated when they are read.

A Celery worker has no active language, so a sentence it makes with `gettext` is English and stays
English in the database. Instead a worker stores a `Text`: the English msgid (marked with
`gettext_noop`, or made with `Text(...)` whose first argument makemessages extracts, see below) and its
arguments, and the page renders it in the viewer's language at display time.

1. Make: `Text(gettext_noop("Login failed: %(error)s"), error=other_text)`. Arguments are plain
   values (str, int), other Texts or lazy translations such as choice labels (both rendered in the
   same language). `Text.plural(singular, plural, "count", count=3)` picks the form with ngettext
   when rendered (mark such a pair with `ngettext_lazy(singular, plural, 0)` somewhere so makemessages
   extracts it as one plural entry); constant wording ("Analysed: %(count)s") needs none of that.
2. Store: `dump(text, max_length)` gives the string for a CharField (JSON, `{"msgid": ...}`); it
   shortens the longest string argument, never cuts the JSON, so it always fits and always parses.
   A Text without arguments is stored as its bare msgid, exactly like a row from before.
   A list of Texts dumps as one string that renders its parts joined by "; ".
3. Show: `render(value)` in Python (views, admin), `{{ value|stored_text }}` in templates
   (`{% load stored_text %}`). A value that is not a dumped Text (rows from before, a plain
   sentence) is shown as it is, translated if it equals a msgid of the catalogue.

`str(text)` renders in the language active at that moment, so a Text can be the message of an
exception that a page shows at once (connection test) and a worker stores (sync).
These texts appear in admin lists too: never mail content, a password or a token in an argument.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.utils import translation
from django.utils.functional import Promise
from django.utils.translation import gettext, ngettext

#: Every dumped Text starts like this; nothing a person writes does.
_PREFIX = '{"msgid":'
_JOIN = '{"join":'
JOINER = "; "


class Text:
    """One translatable sentence with its arguments; rendered by `str()` in the active language."""

    __slots__ = ("msgid", "plural_msgid", "count_arg", "args")

    def __init__(self, msgid: str, **args: Any) -> None:
        self.msgid = msgid
        self.plural_msgid = ""
        self.count_arg = ""
        self.args = args

    @classmethod
    def plural(cls, singular: str, plural: str, count_arg: str, **args: Any) -> Text:
        """A sentence with a plural form chosen by the argument named `count_arg`."""
        text = cls(singular, **args)
        text.plural_msgid, text.count_arg = plural, count_arg
        return text

    def __str__(self) -> str:
        return _render_data(self.as_data())

    def __repr__(self) -> str:
        return f"Text({self.msgid!r}, **{self.args!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Text) and self.as_data() == other.as_data()

    def __hash__(self) -> int:
        return hash(json.dumps(self.as_data(), sort_keys=True))

    def as_data(self) -> dict:
        data: dict[str, Any] = {"msgid": self.msgid}
        if self.plural_msgid:
            data["plural"], data["count"] = self.plural_msgid, self.count_arg
        if self.args:
            data["args"] = {k: _arg_data(v) for k, v in self.args.items()}
        return data


def _arg_data(value: Any) -> Any:
    """An argument as stored: a Text as its data, a lazy translation (a model's choice label) as the
    Text of its msgid, so it too is translated when shown, and anything else as it is."""
    if isinstance(value, Text):
        return value.as_data()
    if isinstance(value, Promise):
        return lazy_text(value).as_data()
    return value


def lazy_text(value: Promise) -> Text:
    """The Text of a lazy translation (`gettext_lazy`, a choice label): its msgid, kept untranslated."""
    with translation.override(None):  # no catalogue: str() gives the msgid itself
        return Text(str(value))


def dump(value: Text | str | list[Text | str], max_length: int | None = None) -> str:
    """The string to store for `value` (a Text, a plain str kept as it is, or a list joined by "; ").

    Fits in `max_length`: the longest string argument is shortened first, then (for a list) the
    last parts are dropped. A plain str is only cut.
    """
    if isinstance(value, str):
        return value[:max_length] if max_length else value
    if isinstance(value, list):
        items = list(value)
        while len(items) > 1:
            parts = [p.as_data() if isinstance(p, Text) else str(p) for p in items]
            out = _JOIN + json.dumps(parts, ensure_ascii=False) + "}"
            if not max_length or len(out) <= max_length:
                return out
            items.pop()
        return dump(items[0], max_length) if items else ""
    data = value.as_data()
    if "args" not in data and "plural" not in data:
        return value.msgid[:max_length] if max_length else value.msgid  # a constant: stored like an old row
    out = json.dumps(data, ensure_ascii=False)
    while max_length and len(out) > max_length:
        if not _shorten_longest(data, len(out) - max_length):
            return value.msgid[:max_length]  # no argument left to shorten: the bare sentence
        out = json.dumps(data, ensure_ascii=False)
    return out


def _shorten_longest(data: dict, excess: int) -> bool:
    """Cut the longest string argument anywhere in `data` by `excess` (at least 1); False if none."""
    best: tuple[dict, str] | None = None
    stack = [data]
    while stack:
        node = stack.pop()
        for key, arg in node.get("args", {}).items():
            if isinstance(arg, dict):
                stack.append(arg)
            elif isinstance(arg, str) and arg and (best is None or len(arg) > len(best[0]["args"][best[1]])):
                best = (node, key)
    if best is None:
        return False
    node, key = best
    arg = node["args"][key]
    node["args"][key] = arg[: len(arg) - excess - 1] + "…" if len(arg) > excess + 1 else ""
    return True


def load(value: str) -> Text | list | None:
    """The Text (or list of parts) in a stored value; None if it holds a plain sentence."""
    if not value or not value.startswith("{"):
        return None
    try:
        data = json.loads(value)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    if "join" in data and isinstance(data["join"], list):
        return [_from_data(p) if isinstance(p, dict) else str(p) for p in data["join"]]
    if isinstance(data.get("msgid"), str):
        return _from_data(data)
    return None


def _from_data(data: dict) -> Text:
    args = {k: _from_data(v) if isinstance(v, dict) else v for k, v in (data.get("args") or {}).items()}
    text = Text(str(data.get("msgid", "")), **args)
    if data.get("plural"):
        text.plural_msgid, text.count_arg = str(data["plural"]), str(data.get("count", ""))
    return text


def render(value: Any) -> str:
    """The stored value as the viewer reads it, in the active language; "" for an empty value."""
    if value is None or value == "":
        return ""
    if isinstance(value, Text):
        return str(value)
    if isinstance(value, list | tuple):
        return JOINER.join(render(v) for v in value)
    value = str(value)
    loaded = load(value)
    if loaded is None:
        return gettext(value)  # a plain sentence from before: translated if it is a msgid, else as is
    return render(loaded)


def _render_data(data: dict) -> str:
    args = {k: _render_data(v) if isinstance(v, dict) else v for k, v in (data.get("args") or {}).items()}
    if data.get("plural"):
        count = args.get(data.get("count", ""), 0)
        try:
            count = int(count)
        except (TypeError, ValueError):
            count = 0
        template = ngettext(data["msgid"], data["plural"], count)
    else:
        template = gettext(data["msgid"])
    if not args:
        return template
    try:
        return template % args
    except (KeyError, TypeError, ValueError):
        # A translation that lost a placeholder, or arguments from an older version: the English.
        try:
            return data["msgid"] % args
        except (KeyError, TypeError, ValueError):
            return data["msgid"]


def message_of(exc: BaseException) -> Text | str:
    """An exception's message as a Text when it was raised with one (to store), else its text."""
    first = exc.args[0] if exc.args else None
    return first if isinstance(first, Text) else str(exc)


def column(field: str, label: str) -> Callable[[Any], str]:
    """An admin list column that shows a stored-text field rendered (in the operator's language),
    not its JSON: `list_display = (..., stored_text.column("error", "error"))`."""

    def show(obj: Any) -> str:
        return render(getattr(obj, field))

    show.short_description = label  # type: ignore[attr-defined]
    show.admin_order_field = field  # type: ignore[attr-defined]
    show.__name__ = f"{field}_text"
    return show
