"""The legacy's analyses (processed_emails) and how other tables find their message through them."""

from __future__ import annotations

import uuid
from typing import Any

from django.utils import timezone

from accounts.fields import seal_fields
from analysis.models import MessageAnalysis
from legacy.models import LegacyImportMap

from .. import rules as rule_conversion
from ..context import Context, Result
from .base import (
    RECORD,
    ROW,
    Mapper,
    canonical,
    clear_none,
    keep_original,
)

# --- analysis ------------------------------------------------------------------------------------------


def _level(value: Any) -> int | None:
    return value if isinstance(value, int) and 1 <= value <= 3 else None


class ProcessedEmails(Mapper):
    """The legacy analysis of a message -> MessageAnalysis (state done). The legacy's second
    "optimize" pass and its German text/tags are kept in the record; the first pass is what Mailhelper
    shows, with the user's overrides as corrections."""

    table, label = "processed_emails", "mail.messageanalysis"
    fks = {"raw_email_id": ("raw_emails", True)}
    mapped = frozenset(
        {
            "raw_email_id",
            "dringlichkeit",
            "wichtigkeit",
            "kategorie_aktion",
            "spam_flag",
            "encrypted_summary_de",
            "ai_confidence",
            "analysis_method",
            "done",
            "done_at",
            "processed_at",
            "user_override_dringlichkeit",
            "user_override_wichtigkeit",
            "user_override_kategorie",
            "user_override_spam_flag",
        }
    )

    def owner_legacy(self, row: dict, ctx: Context) -> int | None:
        return self._owner_of(ctx, "raw_emails", row.get("raw_email_id"))

    def create(self, rows: list[dict], ctx: Context) -> list[Result]:
        results, analyses = [], []
        analysed = ctx.cache.setdefault("analysed", set())
        messages = [pk for pk in (ctx.row_pk("raw_emails", row["raw_email_id"]) for row in rows) if pk]
        analysed.update(
            str(m) for m in MessageAnalysis.objects.filter(message_id__in=messages).values_list("message_id", flat=True)
        )
        for row in rows:
            message_pk = ctx.row_pk("raw_emails", row["raw_email_id"])
            if message_pk is None:
                results.append(Result(row["id"], RECORD, why="its message was kept as a legacy record"))
                continue
            if message_pk in analysed:
                results.append(Result(row["id"], RECORD, why="a second analysis of the same message"))
                continue
            analysed.add(message_pk)
            note: dict = {}
            owner = ctx.user_pk(self.owner_legacy(row, ctx))
            for column in ("user_override_dringlichkeit", "user_override_wichtigkeit"):
                if row.get(column) is not None and _level(row[column]) is None:
                    keep_original(note, column, row[column])
            for column in ("kategorie_aktion", "user_override_kategorie"):
                if row.get(column) and rule_conversion.category(row[column]) is None:
                    keep_original(note, column, row[column])
            done_at = row.get("done_at") if row.get("done") else None
            if row.get("done") and done_at is None:
                done_at = row.get("processed_at") or timezone.now()
                keep_original(note, "done_at", None)
            elif not row.get("done") and row.get("done_at") is not None:
                keep_original(note, "done_at", row["done_at"])
            analysis = MessageAnalysis(
                id=uuid.uuid4(),
                owner_id=owner,
                message_id=message_pk,
                state=MessageAnalysis.State.DONE,
                urgency=_level(row.get("dringlichkeit")) or 2,
                importance=_level(row.get("wichtigkeit")) or 2,
                category=rule_conversion.category(row.get("kategorie_aktion")) or "information",
                is_spam=bool(row.get("spam_flag")),
                confidence=row.get("ai_confidence") or 0.0,
                method=(row.get("analysis_method") or "legacy")[:120],
                corrected_urgency=_level(row.get("user_override_dringlichkeit")),
                corrected_importance=_level(row.get("user_override_wichtigkeit")),
                corrected_category=rule_conversion.category(row.get("user_override_kategorie")) or "",
                corrected_spam=row.get("user_override_spam_flag"),
                done_at=done_at,
                analysed_at=row.get("processed_at"),
            )
            if _level(row.get("dringlichkeit")) is None:
                keep_original(note, "dringlichkeit", row.get("dringlichkeit"))
            if _level(row.get("wichtigkeit")) is None:
                keep_original(note, "wichtigkeit", row.get("wichtigkeit"))
            if rule_conversion.category(row.get("kategorie_aktion")) is None:
                keep_original(note, "kategorie_aktion", row.get("kategorie_aktion"))
            analysis.refresh_final()
            seal_fields(analysis, ctx.dek(owner))
            analyses.append(analysis)
            results.append(Result(row["id"], ROW, str(analysis.pk), note))
        MessageAnalysis.objects.bulk_create(analyses)
        return results

    def adjust(self, row: dict, d: dict, ctx: Context) -> None:
        for column in ("kategorie_aktion", "user_override_kategorie"):
            if row.get(column):
                d[column] = rule_conversion.category(row[column]) or row[column]
        d["spam_flag"] = bool(row.get("spam_flag"))
        d["ai_confidence"] = canonical(row.get("ai_confidence") or 0.0)
        d["analysis_method"] = (row.get("analysis_method") or "legacy")[:120]
        d["done"] = bool(row.get("done"))

    def target_rows(self, pks: list[str], entries: dict[str, LegacyImportMap], ctx: Context) -> dict[str, dict]:
        out = {}
        for a in MessageAnalysis.objects.filter(pk__in=pks).only(
            "id",
            "message_id",
            "urgency",
            "importance",
            "category",
            "is_spam",
            "confidence",
            "method",
            "done_at",
            "analysed_at",
            "corrected_urgency",
            "corrected_importance",
            "corrected_category",
            "corrected_spam",
        ):
            out[str(a.pk)] = clear_none(
                {
                    "raw_email_id": ctx.legacy_id("raw_emails", a.message_id),
                    "dringlichkeit": a.urgency,
                    "wichtigkeit": a.importance,
                    "kategorie_aktion": a.category or None,
                    "spam_flag": a.is_spam,
                    "ai_confidence": canonical(a.confidence),
                    "analysis_method": a.method,
                    "done": a.done_at is not None,
                    "done_at": canonical(a.done_at),
                    "processed_at": canonical(a.analysed_at),
                    "user_override_dringlichkeit": a.corrected_urgency,
                    "user_override_wichtigkeit": a.corrected_importance,
                    "user_override_kategorie": a.corrected_category or None,
                    "user_override_spam_flag": a.corrected_spam,
                }
            )
        return out


def message_of_analysis(ctx: Context, processed_legacy_id: int | None) -> str | None:
    """The Message pk of an imported legacy processed_emails row (assignments and logs point at those)."""
    pk = ctx.row_pk("processed_emails", processed_legacy_id)
    if pk is None:
        return None
    cache = ctx.cache.setdefault("analysis_message", {})
    if pk not in cache:  # load every imported analysis once, in slices under PostgreSQL's parameter limit
        pending = [
            m.target_pk for m in ctx.map_of("processed_emails").values() if m.kind == ROW and m.target_pk not in cache
        ]
        for start in range(0, len(pending), 5000):
            rows = MessageAnalysis.objects.filter(pk__in=pending[start : start + 5000]).values_list("pk", "message_id")
            cache.update({str(a): str(m) for a, m in rows})
        cache.setdefault(pk, None)
    return cache.get(pk)
