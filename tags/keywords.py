"""Tags and the category as IMAP keywords, so what the user sorted here shows in every mail client (#18).

The contract:
- Per user, off by default (TagSettings.server_keywords). Off: nothing is queued and nothing read back.
- Mapping, deterministic and shown on the tags page (`mapping`): a tag's keyword is its name with
  runs of white space as "_", letters with accents as their base letter (a few like ß, æ, ø spelled
  out), every other character that cannot stand in an IMAP atom dropped (mail.imap.is_keyword), a
  leading "$" dropped (clients treat $-keywords as their own system flags), at most 60 characters.
  Nothing left (a name of only emoji or CJK): "tag_" + 8 hex digits of the name's SHA-256. A name
  that would begin with the category prefix gets "tag_" before it.
- The category is "mh_" + its value (mh_reply_expected, mh_newsletter, ...): lower case ASCII and
  "_" only, so every server takes it and no client mistakes it for a system flag ($...); the
  prefix says it is Mailhelper's and keeps it apart from tags both ways (no tag ever maps to it,
  and it is never read back as a tag). A message carries at most one of them.
- Writing: tags.service calls `tag_added` / `tag_removed` for manual, rule and suggestion
  assignments (never for those read from the server: source "server"); this module hands the
  keyword string to mail.actions.set_keywords, which queues it in the outbox. A keyword another
  tag on the same message still maps to is not removed. Renaming a tag trades its messages' old
  keyword for the new one (if the mapping changed); deleting it removes the keyword first.
  Switching on catches up once (`catch_up`, task tags.keywords_catch_up): keywords already on the
  server become tags, then every tag assigned here is written.
- Reading back: mail.signals.keywords_changed (sync saw other keywords on a message than it held)
  and messages_stored (new mail with keywords) arrive in `keywords_changed` / `messages_stored`.
  A keyword added becomes the tag that maps to it (made if there is none, named like the keyword),
  assigned with source "server"; one removed takes away the tags that map to it. Read back only
  keywords that are their own mapping (keyword_for_tag(k) == k): that leaves out system keywords
  ($Forwarded, $MDNSent, $Junk, $NotJunk, $label1-5 and every other $-keyword), the Junk / NonJunk /
  NotJunk of older clients, the category keywords and anything not an ASCII atom.
- No loops: a keyword written from here is in Message.keywords before the server has it, so the
  sync that sees it finds no change; a tag read from the server has source "server" and is not
  written back (its keyword is there already).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable

from mail import actions
from mail.imap import KEYWORD_SPECIALS, is_keyword
from mail.models import Message

from .models import Tag, TagAssignment, TagSettings

CATEGORY_PREFIX = "mh_"
MAX_LENGTH = 60  # a tag name's length (Tag.name), so every keyword read back fits a tag
#: Keywords of mail clients' own (junk filters) read back as nothing, besides every $-keyword.
CLIENT_KEYWORDS = frozenset({"junk", "nonjunk", "notjunk"})
_SPELLED_OUT = str.maketrans({"ß": "ss", "æ": "ae", "Æ": "AE", "ø": "o", "Ø": "O", "œ": "oe", "Œ": "OE",
                              "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "þ": "th", "Þ": "Th"})  # fmt: skip


#: (value, label) of each category, registered by analysis (a higher floor) when it starts.
CATEGORIES: list[tuple[str, str]] = []


def register_categories(choices: Iterable[tuple[str, str]]) -> None:
    CATEGORIES[:] = list(choices)


def category_mapping() -> list[tuple[str, str]]:
    """(label, keyword) of every category, for the tags page."""
    return [(label, category_keyword(value)) for value, label in CATEGORIES]


def keyword_for_tag(name: str) -> str:
    """The IMAP keyword that stands for a tag of this name (see the module docstring)."""
    text = unicodedata.normalize("NFKD", name.translate(_SPELLED_OUT))
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = re.sub(r"\s+", "_", text.strip())
    text = "".join(c for c in text if c.isascii() and 32 < ord(c) < 127 and c not in KEYWORD_SPECIALS)
    text = text.lstrip("$")[:MAX_LENGTH]
    if not text:
        return "tag_" + hashlib.sha256(name.encode()).hexdigest()[:8]
    if text.casefold().startswith(CATEGORY_PREFIX):
        text = ("tag_" + text)[:MAX_LENGTH]
    return text


def category_keyword(category: str) -> str:
    return CATEGORY_PREFIX + category


def is_category_keyword(keyword: str) -> bool:
    return keyword.casefold().startswith(CATEGORY_PREFIX)


def readable(keyword: str) -> bool:
    """Whether a keyword found on the server is read back as a tag."""
    return (
        is_keyword(keyword)
        and keyword.casefold() not in CLIENT_KEYWORDS
        and not is_category_keyword(keyword)
        and keyword_for_tag(keyword) == keyword
    )


def enabled(owner_id: int) -> bool:
    return TagSettings.objects.filter(owner_id=owner_id, server_keywords=True).exists()


def mapping(owner_id: int) -> list[dict]:
    """Every tag of the user with its keyword; `shared` names the other tags with the same keyword."""
    rows = [{"tag": tag, "keyword": keyword_for_tag(tag.name)} for tag in Tag.objects.filter(owner_id=owner_id)]
    for row in rows:
        key = row["keyword"].casefold()
        row["shared"] = [r["tag"].name for r in rows if r is not row and r["keyword"].casefold() == key]
    return rows


# --- writing -----------------------------------------------------------------------------------------


def _messages(messages: Iterable[Message]) -> list[Message]:
    return [m for m in messages if m.uid is not None]


def tag_added(owner_id: int, tag: Tag, messages: Iterable[Message]) -> int:
    """Queue the tag's keyword on messages just tagged here (when the user opted in). Returns how many."""
    if not enabled(owner_id):
        return 0
    keyword = keyword_for_tag(tag.name)
    return sum(actions.set_keywords(m, add=[keyword]) for m in _messages(messages) if actions.keywords_possible(m))


def _still_needed(message: Message, keyword: str, tag: Tag) -> bool:
    """Whether another tag on the message maps to the keyword too."""
    others = Tag.objects.filter(assignments__message=message).exclude(pk=tag.pk).values_list("name", flat=True)
    return any(keyword_for_tag(name).casefold() == keyword.casefold() for name in others)


def tag_removed(owner_id: int, tag: Tag, messages: Iterable[Message], name: str | None = None) -> int:
    """Queue the removal of the tag's keyword (of `name`, default its name) from messages just untagged
    (or the messages of a tag about to be deleted), unless another of their tags maps to it."""
    if not enabled(owner_id):
        return 0
    keyword = keyword_for_tag(tag.name if name is None else name)
    queued = 0
    for message in _messages(messages):
        if actions.keywords_possible(message) and not _still_needed(message, keyword, tag):
            queued += actions.set_keywords(message, remove=[keyword])
    return queued


def tag_renamed(owner_id: int, tag: Tag, old_name: str) -> int:
    """A renamed tag's messages trade the old keyword for the new one (when the mapping changed)."""
    if not enabled(owner_id) or keyword_for_tag(old_name) == keyword_for_tag(tag.name):
        return 0
    tagged = list(Message.objects.filter(tag_assignments__tag=tag).select_related("account", "folder"))
    return tag_removed(owner_id, tag, tagged, name=old_name) + tag_added(owner_id, tag, tagged)


def show_category(owner_id: int, message: Message, category: str) -> int:
    """Make the message's category keyword on the server say `category` (empty: none). Idempotent."""
    if not enabled(owner_id) or message.uid is None or not actions.keywords_possible(message):
        return 0
    wanted = category_keyword(category) if category else ""
    stale = [k for k in message.keywords if is_category_keyword(k) and k.casefold() != wanted.casefold()]
    return actions.set_keywords(message, add=[wanted] if wanted else [], remove=stale)


def catch_up(owner_id: int) -> tuple[int, int]:
    """After the user switched keywords on: read back the keywords their mail holds, then write every
    tag assigned here. Returns (tags read back, keywords queued). Repeatable: what is in place is skipped."""
    if not enabled(owner_id):
        return 0, 0
    live = Message.objects.filter(owner_id=owner_id, expunged_at__isnull=True, uid__isnull=False)
    read = 0
    for message in live.filter(keywords__len__gt=0).select_related("account", "folder").iterator(chunk_size=500):
        read += read_back(owner_id, message, [], message.keywords)[0]
    written = 0
    assignments = (
        TagAssignment.objects.filter(owner_id=owner_id, message__in=live)
        .exclude(source=TagAssignment.Source.SERVER)
        .select_related("tag", "message__account", "message__folder")
    )
    for assignment in assignments.iterator(chunk_size=500):
        if actions.keywords_possible(assignment.message):
            written += actions.set_keywords(assignment.message, add=[keyword_for_tag(assignment.tag.name)])
    return read, written


# --- reading back ------------------------------------------------------------------------------------


def read_back(owner_id: int, message: Message, old: Iterable[str], new: Iterable[str]) -> tuple[int, int]:
    """Tags for the keywords another client added to / removed from a message. Returns (added, removed)."""
    from . import service  # service calls this module's writers

    before = {k.casefold(): k for k in old if readable(k)}
    after = {k.casefold(): k for k in new if readable(k)}
    added = removed = 0
    tags = list(Tag.objects.filter(owner_id=owner_id))
    for key, keyword in after.items():
        if key in before:
            continue
        matching = [t for t in tags if keyword_for_tag(t.name).casefold() == key]
        if not matching:
            tag, _ = Tag.objects.get_or_create(owner_id=owner_id, name__iexact=keyword, defaults={"name": keyword})
            tags.append(tag)
            matching = [tag]
        for tag in matching:
            added += service.assign(owner_id, tag, [message], source=TagAssignment.Source.SERVER)
    for key in before:
        if key in after:
            continue
        for tag in [t for t in tags if keyword_for_tag(t.name).casefold() == key]:
            removed += service.unassign(owner_id, tag, [message], from_server=True)
    return added, removed


def keywords_changed(sender, owner_id: int, changes: list[tuple[Message, list[str], list[str]]], **kwargs) -> None:
    """Receiver of mail.signals.keywords_changed: (message, old keywords, new keywords) per message."""
    if not changes or not enabled(owner_id):
        return
    for message, old, new in changes:
        read_back(owner_id, message, old, new)


def messages_stored(sender, messages: list[Message], **kwargs) -> None:
    """Receiver of mail.signals.messages_stored: new mail that already carries keywords (set elsewhere)."""
    with_keywords = [m for m in messages if any(readable(k) for k in m.keywords)]
    if not with_keywords:
        return
    owners = {m.owner_id for m in with_keywords}
    opted_in = set(
        TagSettings.objects.filter(owner_id__in=owners, server_keywords=True).values_list("owner_id", flat=True)
    )
    for message in with_keywords:
        if message.owner_id in opted_in:
            read_back(message.owner_id, message, [], message.keywords)
