"""What one message's page shows of tags, read in one query.

The page shows three things: the tags on the message (with where each came from), the open
suggestions for it (with their scores), and the menu of all the user's tags to add one. They were
three queries (assignments, suggestions, tags); each query costs the page ~0.4 ms of Django compiling
it (#15), and all three are rows about the user's tags. So the user's tags are read once, each joined
to this message's assignment and open suggestion: the unique constraints (tag, message) of both tables
mean at most one of each per tag, so the join never repeats a tag.

Owner scoping: only the user's tags are read, and the message is one the caller already found among
the user's own; an assignment or suggestion of another user's tag cannot join.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import FilteredRelation, Q

from .models import Tag, TagSuggestion


@dataclass(frozen=True)
class TagChoice:
    pk: int
    name: str
    color: str


@dataclass(frozen=True)
class ShownAssignment:
    """A tag on the message; `source` is TagAssignment.source ("manual", "rule", ...)."""

    pk: int
    tag: TagChoice
    source: str

    @property
    def tag_id(self) -> int:
        return self.tag.pk


@dataclass(frozen=True)
class ShownSuggestion:
    """An open suggestion; `pk` is the TagSuggestion's, which the accept and reject buttons send."""

    pk: int
    tag: TagChoice
    score: float


@dataclass(frozen=True)
class MessageTags:
    assignments: list[ShownAssignment]  # in the order they were made
    suggestions: list[ShownSuggestion]  # best first
    choices: list[TagChoice]  # every tag of the user, by name


def message_tags(owner_id: int, message_id) -> MessageTags:
    """The message's tags, its open suggestions and the user's tags to choose from (one query)."""
    rows = (
        Tag.objects.filter(owner_id=owner_id)
        .annotate(
            assigned=FilteredRelation("assignments", condition=Q(assignments__message_id=message_id)),
            suggested=FilteredRelation(
                "suggestions",
                condition=Q(suggestions__message_id=message_id, suggestions__state=TagSuggestion.State.OPEN),
            ),
        )
        .values_list("pk", "name", "color", "assigned__id", "assigned__source", "suggested__id", "suggested__score")
    )  # ordered by name (Tag.Meta)
    assignments: list[ShownAssignment] = []
    suggestions: list[ShownSuggestion] = []
    choices: list[TagChoice] = []
    for pk, name, color, assignment_id, source, suggestion_id, score in rows:
        tag = TagChoice(pk, name, color)
        choices.append(tag)
        if assignment_id is not None:
            assignments.append(ShownAssignment(assignment_id, tag, source))
        if suggestion_id is not None:
            suggestions.append(ShownSuggestion(suggestion_id, tag, score))
    assignments.sort(key=lambda a: a.pk)
    suggestions.sort(key=lambda s: (-s.score, s.pk))  # TagSuggestion.Meta: -score
    return MessageTags(assignments, suggestions, choices)
