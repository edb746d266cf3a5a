"""Tagging, learning from tags, and suggestions: the one place that changes tag rows.

Learning events (see tags/suggest.py): a manual tag or an accepted suggestion is a positive
example, a rejected suggestion (or removing a tag that was applied automatically) a negative one.
Tags applied by rules or automatically are not learned from, or the model would keep confirming
its own guesses.

Every change of an assignment made here tells tags/keywords.py, which writes the tag to the
server as an IMAP keyword for users who opted in; assignments read from the server (source
"server") are not written back, and unassign(from_server=True) removes without writing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from django.db import IntegrityError, transaction
from django.utils import timezone

from mail.models import Message

from . import keywords, suggest
from .models import Tag, TagAssignment, TagModelState, TagSettings, TagSuggestion

Source = TagAssignment.Source


def message_features(message: Message) -> dict[int, float]:
    return suggest.features(message.subject, message.text_body, message.from_address, message.list_id)


def _load_models(owner_id: int, tag_ids: Iterable[int] | None = None, lock: bool = False) -> dict[int, TagModelState]:
    qs = TagModelState.objects.filter(owner_id=owner_id)
    if tag_ids is not None:
        qs = qs.filter(tag_id__in=list(tag_ids))
    if lock:
        qs = qs.select_for_update()
    return {row.tag_id: row for row in qs}


def _model_of(row: TagModelState | None) -> suggest.TagModel:
    if row is None or not row.state:
        return suggest.TagModel()
    return suggest.TagModel.from_json(json.loads(row.state))


def _learn(owner_id: int, examples: list[tuple[int, dict[int, float], bool]]) -> None:
    """Apply (tag id, features, positive?) examples, loading and saving each tag model once."""
    if not examples:
        return
    with transaction.atomic():
        rows = _load_models(owner_id, {tag_id for tag_id, _, _ in examples}, lock=True)
        models: dict[int, suggest.TagModel] = {}
        for tag_id, feat, positive in examples:
            model = models.setdefault(tag_id, _model_of(rows.get(tag_id)))
            if positive:
                model.add_positive(feat)
            else:
                model.add_negative(feat)
        for tag_id, model in models.items():
            row = rows.get(tag_id) or TagModelState(owner_id=owner_id, tag_id=tag_id)
            row.state = json.dumps(model.to_json()).encode()
            row.positives, row.negatives = model.n_pos, model.n_neg
            row.save()


def assign(owner_id: int, tag: Tag, messages: Iterable[Message], source: str = Source.MANUAL, confidence=None) -> int:
    """Put a tag on messages (of its owner); returns how many were newly tagged."""
    if tag.owner_id != owner_id:
        raise PermissionError("tag of another user")
    added, examples, tagged = 0, [], []
    for message in messages:
        if message.owner_id != owner_id:
            continue
        try:
            with transaction.atomic():
                TagAssignment.objects.create(
                    owner_id=owner_id, tag=tag, message=message, source=source, confidence=confidence
                )
        except IntegrityError:
            continue  # already tagged
        added += 1
        tagged.append(message)
        TagSuggestion.objects.filter(tag=tag, message=message, state=TagSuggestion.State.OPEN).update(
            state=TagSuggestion.State.ACCEPTED, decided_at=timezone.now()
        )
        if source == Source.MANUAL:
            examples.append((tag.pk, message_features(message), True))
    _learn(owner_id, examples)
    if source != Source.SERVER:  # one read from the server is there already
        keywords.tag_added(owner_id, tag, tagged)
    return added


def unassign(owner_id: int, tag: Tag, messages: Iterable[Message], from_server: bool = False) -> int:
    """Take a tag off messages; `from_server`: because another client removed its keyword (nothing to write)."""
    removed, examples, untagged = 0, [], []
    for message in messages:
        assignment = TagAssignment.objects.filter(owner_id=owner_id, tag=tag, message=message).first()
        if assignment is None:
            continue
        if assignment.source == Source.SUGGESTION:
            examples.append((tag.pk, message_features(message), False))  # an automatic guess was wrong
        assignment.delete()
        removed += 1
        untagged.append(message)
    _learn(owner_id, examples)
    if not from_server:
        keywords.tag_removed(owner_id, tag, untagged)
    return removed


def rename(owner_id: int, tag: Tag, old_name: str) -> None:
    """After a tag was saved under a new name: its keyword on the server follows (opted-in users)."""
    if tag.owner_id == owner_id and tag.name != old_name:
        keywords.tag_renamed(owner_id, tag, old_name)


@transaction.atomic
def delete(owner_id: int, tag: Tag) -> None:
    """Delete a tag (the messages stay); its keyword leaves the server copies of its messages first."""
    if tag.owner_id != owner_id:
        raise PermissionError("tag of another user")
    tagged = Message.objects.filter(tag_assignments__tag=tag).select_related("account", "folder")
    keywords.tag_removed(owner_id, tag, list(tagged))
    tag.delete()


def decide(owner_id: int, suggestions: Iterable[TagSuggestion], accept: bool) -> int:
    """Accept (tag the message, learn +) or reject (learn -) suggestions, one or in bulk."""
    decided, examples = 0, []
    for suggestion in suggestions:
        if suggestion.owner_id != owner_id or suggestion.state != TagSuggestion.State.OPEN:
            continue
        message = suggestion.message
        with transaction.atomic():
            suggestion.state = TagSuggestion.State.ACCEPTED if accept else TagSuggestion.State.REJECTED
            suggestion.decided_at = timezone.now()
            suggestion.save(update_fields=["state", "decided_at"])
            if accept:
                _, created = TagAssignment.objects.get_or_create(
                    owner_id=owner_id,
                    tag_id=suggestion.tag_id,
                    message=message,
                    defaults={"source": Source.SUGGESTION, "confidence": suggestion.score},
                )
                if created:
                    keywords.tag_added(owner_id, suggestion.tag, [message])
        examples.append((suggestion.tag_id, message_features(message), accept))
        decided += 1
    _learn(owner_id, examples)
    return decided


def suggest_for(owner_id: int, messages: list[Message]) -> int:
    """Suggest tags for newly analysed messages; apply confident ones if the user said so."""
    states = _load_models(owner_id)
    models = {tag_id: _model_of(row) for tag_id, row in states.items() if row.positives}
    if not models or not messages:
        return 0
    settings_row = TagSettings.objects.filter(owner_id=owner_id).first()
    tags = {t.pk: t for t in Tag.objects.filter(owner_id=owner_id, pk__in=list(models))}
    ids = [m.pk for m in messages]
    present: dict = {}
    for message_id, tag_id in TagAssignment.objects.filter(message_id__in=ids).values_list("message_id", "tag_id"):
        present.setdefault(message_id, set()).add(tag_id)
    for message_id, tag_id in TagSuggestion.objects.filter(message_id__in=ids).values_list("message_id", "tag_id"):
        present.setdefault(message_id, set()).add(tag_id)
    made = 0
    for message in messages:
        feat = message_features(message)
        for tag_id, score in suggest.suggest(models, feat, exclude=present.get(message.pk, set())):
            tag = tags.get(tag_id)
            if tag is None:
                continue
            if settings_row and settings_row.auto_apply and score >= settings_row.auto_apply_threshold:
                assign(owner_id, tag, [message], source=Source.SUGGESTION, confidence=score)
                TagSuggestion.objects.get_or_create(
                    owner_id=owner_id, tag=tag, message=message,
                    defaults={"score": score, "state": TagSuggestion.State.ACCEPTED, "decided_at": timezone.now()},
                )  # fmt: skip
            else:
                TagSuggestion.objects.get_or_create(
                    owner_id=owner_id, tag=tag, message=message, defaults={"score": score}
                )
            made += 1
    return made
