"""Tags, assignments, rejections; the tag-name suggestion queue and sender statistics (kept as records)."""

from __future__ import annotations

import re

from analysis.models import MessageAnalysis
from legacy.models import LegacyImportMap
from tags.models import Tag, TagAssignment, TagSuggestion

from ..context import Context, Result
from .analysis import message_of_analysis
from .base import (
    RECORD,
    ROW,
    Mapper,
    canonical,
    clear_none,
    existing_pairs,
    keep_original,
    restore_times,
    unique_name,
)

# --- tags ----------------------------------------------------------------------------------------------

_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


class EmailTags(Mapper):
    table, label = "email_tags", "tags.tag"
    fks = {"user_id": ("users", True)}
    mapped = frozenset({"user_id", "name", "color", "description", "created_at"})
    ignored = frozenset({"learned_embedding", "negative_embedding"})

    def create(self, rows: list[dict], ctx: Context) -> list[Result]:
        results, tags = [], []
        names = ctx.cache.setdefault("tag_names", {})
        for row in rows:
            owner = ctx.user_pk(row["user_id"])
            if owner not in names:
                names[owner] = {n.lower() for n in Tag.objects.filter(owner_id=owner).values_list("name", flat=True)}
            note: dict = {}
            name = unique_name((row.get("name") or "(unnamed)").strip() or "(unnamed)", names[owner], 60)
            if name != row.get("name"):
                keep_original(note, "name", row.get("name"))
            color = row.get("color") or ""
            if not _COLOR.match(color):
                keep_original(note, "color", row.get("color"))
                color = "#4c6ef5"
            description = row.get("description") or ""
            if len(description) > 300:
                keep_original(note, "description", description)
            if row.get("created_at") is None:
                keep_original(note, "created_at", None)
            tag = Tag(owner_id=owner, name=name, color=color, description=description[:300])
            tags.append((tag, row, note))
        Tag.objects.bulk_create([t for t, _, _ in tags])
        for tag, row, note in tags:
            tag.created_at = row.get("created_at") or tag.created_at
            results.append(Result(row["id"], ROW, str(tag.pk), note))
        restore_times(Tag, [t for t, _, _ in tags], ["created_at"])
        return results

    def target_rows(self, pks: list[str], entries: dict[str, LegacyImportMap], ctx: Context) -> dict[str, dict]:
        return {
            str(t.pk): clear_none(
                {
                    "user_id": ctx.legacy_id("users", t.owner_id),
                    "name": t.name,
                    "color": t.color,
                    "description": t.description or None,
                    "created_at": canonical(t.created_at),
                }
            )
            for t in Tag.objects.filter(pk__in=pks)
        }


class _TagOnMessage(Mapper):
    """Legacy rows that put one of the user's tags on one of their emails (assignments, rejections).

    Owned through the tag; a pair that exists already (imported before, or twice in the legacy
    table) or whose message was kept as a record is reported as a record instead of a second row.
    """

    fks = {"email_id": ("processed_emails", True), "tag_id": ("email_tags", True)}
    target_model: type[TagAssignment] | type[TagSuggestion]
    duplicate_why = ""

    def owner_legacy(self, row: dict, ctx: Context) -> int | None:
        return self._owner_of(ctx, "email_tags", row.get("tag_id"))

    def check(self, row: dict, ctx: Context) -> str | None:
        if self._owner_of(ctx, "processed_emails", row["email_id"]) != self.owner_legacy(row, ctx):
            return "tag and message belong to different users"
        return None

    def new_pairs(self, rows: list[dict], ctx: Context, results: list[Result]) -> list[tuple[dict, int, object]]:
        """(row, tag pk, message pk) of the rows to create; the others are appended to results as records."""
        pairs = ctx.cache.setdefault(self.table, set())
        messages = [message_of_analysis(ctx, r["email_id"]) for r in rows]
        pairs.update(existing_pairs(self.target_model, "tag_id", messages))
        fresh = []
        for row, message_pk in zip(rows, messages, strict=True):
            tag_pk = ctx.row_pk("email_tags", row["tag_id"])
            if message_pk is None or tag_pk is None:
                results.append(Result(row["id"], RECORD, why="its message was kept as a legacy record"))
                continue
            key = (int(tag_pk), message_pk)
            if key in pairs:
                results.append(Result(row["id"], RECORD, why=self.duplicate_why))
                continue
            pairs.add(key)
            fresh.append((row, tag_pk, message_pk))
        return fresh


class TagAssignments(_TagOnMessage):
    table, label = "email_tag_assignments", "tags.tagassignment"
    mapped = frozenset({"email_id", "tag_id", "assigned_at", "auto_assigned"})
    target_model = TagAssignment
    duplicate_why = "the same tag on the same message twice"

    def create(self, rows: list[dict], ctx: Context) -> list[Result]:
        results: list[Result] = []
        made = []
        for row, tag_pk, message_pk in self.new_pairs(rows, ctx, results):
            note: dict = {}
            if row.get("assigned_at") is None:
                keep_original(note, "assigned_at", None)
            assignment = TagAssignment(
                owner_id=ctx.user_pk(self.owner_legacy(row, ctx)),
                tag_id=tag_pk,
                message_id=message_pk,
                source=TagAssignment.Source.SUGGESTION if row.get("auto_assigned") else TagAssignment.Source.MANUAL,
            )
            made.append((assignment, row, note))
        TagAssignment.objects.bulk_create([a for a, _, _ in made])
        for assignment, row, note in made:
            assignment.created_at = row.get("assigned_at") or assignment.created_at
            results.append(Result(row["id"], ROW, str(assignment.pk), note))
        restore_times(TagAssignment, [a for a, _, _ in made], ["created_at"])
        return results

    def adjust(self, row: dict, d: dict, ctx: Context) -> None:
        d["auto_assigned"] = bool(row.get("auto_assigned"))

    def target_rows(self, pks: list[str], entries: dict[str, LegacyImportMap], ctx: Context) -> dict[str, dict]:
        analysis_of = {
            str(m): a
            for a, m in MessageAnalysis.objects.filter(message__tag_assignments__pk__in=pks).values_list(
                "pk", "message_id"
            )
        }
        out = {}
        for a in TagAssignment.objects.filter(pk__in=pks):
            out[str(a.pk)] = clear_none(
                {
                    "email_id": ctx.legacy_id("processed_emails", analysis_of.get(str(a.message_id))),
                    "tag_id": ctx.legacy_id("email_tags", a.tag_id),
                    "assigned_at": canonical(a.created_at),
                    "auto_assigned": a.source == TagAssignment.Source.SUGGESTION,
                }
            )
        return out


class TagSuggestionQueue(Mapper):
    table = "tag_suggestion_queue"
    fks = {
        "user_id": ("users", True),
        "source_email_id": ("processed_emails", False),
        "merged_into_tag_id": ("email_tags", False),
    }
    record_why = "Mailhelper suggests existing tags, not new tag names; kept for later"


class TagNegativeExamples(_TagOnMessage):
    """A tag the user rejected for a message -> a rejected TagSuggestion (so it is not suggested again)."""

    table, label = "tag_negative_examples", "tags.tagsuggestion"
    mapped = frozenset({"tag_id", "email_id", "created_at"})
    ignored = frozenset({"negative_embedding"})
    target_model = TagSuggestion
    duplicate_why = "the same rejection twice"

    def create(self, rows: list[dict], ctx: Context) -> list[Result]:
        results: list[Result] = []
        made = []
        for row, tag_pk, message_pk in self.new_pairs(rows, ctx, results):
            suggestion = TagSuggestion(
                owner_id=ctx.user_pk(self.owner_legacy(row, ctx)),
                tag_id=tag_pk,
                message_id=message_pk,
                score=0.0,
                state=TagSuggestion.State.REJECTED,
                decided_at=row.get("created_at"),
            )
            made.append((suggestion, row))
        TagSuggestion.objects.bulk_create([s for s, _ in made])
        results += [Result(row["id"], ROW, str(s.pk)) for s, row in made]
        return results

    def target_rows(self, pks: list[str], entries: dict[str, LegacyImportMap], ctx: Context) -> dict[str, dict]:
        analysis_of = {
            str(m): a
            for a, m in MessageAnalysis.objects.filter(message__tag_suggestions__pk__in=pks).values_list(
                "pk", "message_id"
            )
        }
        return {
            str(s.pk): clear_none(
                {
                    "tag_id": ctx.legacy_id("email_tags", s.tag_id),
                    "created_at": canonical(s.decided_at),
                    "email_id": ctx.legacy_id("processed_emails", analysis_of.get(str(s.message_id))),
                }
            )
            for s in TagSuggestion.objects.filter(pk__in=pks)
        }


class SenderPatterns(Mapper):
    table = "sender_patterns"
    fks = {"user_id": ("users", True)}
    record_why = "sender statistics by hash; Mailhelper learns senders in its own classifier"
