"""Rules (converted by legacy.rules) and their execution log."""

from __future__ import annotations

from typing import Any

from analysis.models import MessageAnalysis
from legacy.models import LegacyImportMap
from mail.models import Folder
from rules.models import Rule, RuleLog
from tags.models import Tag

from .. import rules as rule_conversion
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
)


def _resolver(ctx: Context, owner: int | None) -> rule_conversion.Resolver:
    if ctx.dry_run or owner is None:
        tags = ctx.present.get("email_tags", set())
        return rule_conversion.Resolver(
            tag=lambda v: 1 if (isinstance(v, int) and v in tags) or (isinstance(v, str) and v.strip()) else None,
            folder=lambda v: 1 if isinstance(v, str) and v.strip() else None,
        )
    cache = ctx.cache.setdefault("resolvers", {})
    if owner not in cache:
        by_name = {n.lower(): pk for pk, n in Tag.objects.filter(owner_id=owner).values_list("pk", "name")}
        folders: dict[str, int] = {}
        for pk, name in Folder.objects.filter(account__owner_id=owner).order_by("pk").values_list("pk", "name"):
            folders.setdefault(name, pk)

        def tag(value: Any) -> int | None:
            if isinstance(value, int) and not isinstance(value, bool):
                pk = ctx.row_pk("email_tags", value)
                return (
                    int(pk)
                    if pk and ctx.owner.get("email_tags", {}).get(value) == ctx.legacy_id("users", owner)
                    else None
                )
            return by_name.get(value.strip().lower()) if isinstance(value, str) else None

        def folder(value: Any) -> int | None:
            return folders.get(value.strip()) if isinstance(value, str) else None

        cache[owner] = rule_conversion.Resolver(tag=tag, folder=folder)
    return cache[owner]


class AutoRules(Mapper):
    table, label = "auto_rules", "rules.rule"
    fks = {"user_id": ("users", True)}
    mapped = frozenset(
        {
            "user_id",
            "name",
            "is_active",
            "priority",
            "conditions_json",
            "actions_json",
            "times_triggered",
            "last_triggered_at",
            "created_at",
        }
    )

    def _convert(self, row, ctx) -> rule_conversion.RuleConversion:
        return rule_conversion.convert_rule(
            row.get("conditions_json"), row.get("actions_json"), _resolver(ctx, ctx.user_pk(row["user_id"]))
        )

    def _report(self, row, conversion, ctx) -> None:
        for key in conversion.unconverted:
            ctx.report.unknown_rule_keys.append(f"auto_rules #{row['id']} ({row.get('name') or ''}): {key}")
        for problem in conversion.problems:
            ctx.report.warnings.append(f"auto_rules #{row['id']}: {problem}")

    def predict_skip(self, row: dict, ctx: Context) -> str | None:
        self._report(row, self._convert(row, ctx), ctx)
        return None

    def report_existing(self, row: dict, ctx: Context) -> None:
        self._report(row, self._convert(row, ctx), ctx)

    def create(self, rows: list[dict], ctx: Context) -> list[Result]:
        results, made = [], []
        for row in rows:
            conversion = self._convert(row, ctx)
            self._report(row, conversion, ctx)
            if conversion.definition is None:
                results.append(Result(row["id"], RECORD, why="no condition or action could be converted"))
                continue
            note: dict = {}
            if conversion.unconverted or conversion.problems:
                note["unconverted"] = conversion.unconverted
                note["problems"] = conversion.problems
            enabled = bool(row.get("is_active")) and conversion.complete
            if enabled != bool(row.get("is_active")):
                keep_original(note, "is_active", row.get("is_active"))
            if row.get("created_at") is None:
                keep_original(note, "created_at", None)
            rule = Rule(
                owner_id=ctx.user_pk(row["user_id"]),
                name=(row.get("name") or "(unnamed rule)")[:120],
                order=max(0, row.get("priority") or 0),
                enabled=enabled,
                definition=conversion.definition,
                times_triggered=max(0, row.get("times_triggered") or 0),
                last_triggered_at=row.get("last_triggered_at"),
            )
            if rule.name != row.get("name"):
                keep_original(note, "name", row.get("name"))
            made.append((rule, row, note))
        Rule.objects.bulk_create([r for r, _, _ in made])
        for rule, row, note in made:
            rule.created_at = row.get("created_at") or rule.created_at
            results.append(Result(row["id"], ROW, str(rule.pk), note))
        restore_times(Rule, [r for r, _, _ in made], ["created_at"])
        return results

    def adjust(self, row: dict, d: dict, ctx: Context) -> None:
        d.pop("conditions_json", None)
        d.pop("actions_json", None)
        d["definition"] = self._convert(row, ctx).definition
        d["is_active"] = bool(row.get("is_active"))
        d["priority"] = max(0, row.get("priority") or 0)
        d["times_triggered"] = max(0, row.get("times_triggered") or 0)

    def target_rows(self, pks: list[str], entries: dict[str, LegacyImportMap], ctx: Context) -> dict[str, dict]:
        return {
            str(r.pk): clear_none(
                {
                    "user_id": ctx.legacy_id("users", r.owner_id),
                    "name": r.name,
                    "is_active": r.enabled,
                    "priority": r.order,
                    "definition": r.definition,
                    "times_triggered": r.times_triggered,
                    "last_triggered_at": canonical(r.last_triggered_at),
                    "created_at": canonical(r.created_at),
                }
            )
            for r in Rule.objects.filter(pk__in=pks)
        }


class RuleLogs(Mapper):
    table, label = "rule_execution_logs", "rules.rulelog"
    fks = {
        "user_id": ("users", True),
        "rule_id": ("auto_rules", True),
        "processed_email_id": ("processed_emails", False),
        "mail_account_id": ("mail_accounts", False),
    }
    mapped = frozenset(
        {"user_id", "rule_id", "processed_email_id", "executed_at", "success", "error_message", "action_type"}
    )

    def create(self, rows: list[dict], ctx: Context) -> list[Result]:
        results, made = [], []
        pairs = ctx.cache.setdefault("logged", set())
        messages = [message_of_analysis(ctx, r.get("processed_email_id")) for r in rows]
        pairs.update(existing_pairs(RuleLog, "rule_id", messages))
        for row in rows:
            rule_pk = ctx.row_pk("auto_rules", row["rule_id"])
            message_pk = message_of_analysis(ctx, row.get("processed_email_id"))
            if rule_pk is None or message_pk is None:
                results.append(Result(row["id"], RECORD, why="its rule or message is not a Mailhelper row"))
                continue
            key = (int(rule_pk), message_pk)
            if key in pairs:
                results.append(Result(row["id"], RECORD, why="a second log of the same rule on the same message"))
                continue
            pairs.add(key)
            note: dict = {}
            if len(row.get("error_message") or "") > 300:
                keep_original(note, "error_message", row["error_message"])
            if row.get("executed_at") is None:
                keep_original(note, "executed_at", None)
            log = RuleLog(
                owner_id=ctx.user_pk(row["user_id"]),
                rule_id=rule_pk,
                message_id=message_pk,
                actions=[row["action_type"]] if row.get("action_type") else [],
                success=row.get("success") is not False,
                error=(row.get("error_message") or "")[:300],
            )
            made.append((log, row, note))
        RuleLog.objects.bulk_create([r for r, _, _ in made])
        for log, row, note in made:
            log.ran_at = row.get("executed_at") or log.ran_at
            results.append(Result(row["id"], ROW, str(log.pk), note))
        restore_times(RuleLog, [r for r, _, _ in made], ["ran_at"])
        return results

    def adjust(self, row: dict, d: dict, ctx: Context) -> None:
        d["success"] = row.get("success") is not False

    def target_rows(self, pks: list[str], entries: dict[str, LegacyImportMap], ctx: Context) -> dict[str, dict]:
        analysis_of = {
            str(m): a
            for a, m in MessageAnalysis.objects.filter(message__rule_logs__pk__in=pks).values_list("pk", "message_id")
        }
        return {
            str(r.pk): clear_none(
                {
                    "user_id": ctx.legacy_id("users", r.owner_id),
                    "rule_id": ctx.legacy_id("auto_rules", r.rule_id),
                    "processed_email_id": ctx.legacy_id("processed_emails", analysis_of.get(str(r.message_id))),
                    "executed_at": canonical(r.ran_at),
                    "success": r.success,
                    "error_message": r.error or None,
                    "action_type": r.actions[0] if r.actions else None,
                }
            )
            for r in RuleLog.objects.filter(pk__in=pks)
        }
