"""The import's printed report: the checksum table, then what needs a human's attention."""

from __future__ import annotations

from .importer import ImportReport

MAX_LINES = 20


def render(result: ImportReport, dry_run: bool = False) -> str:
    lines = []
    if result.missing_tables:
        lines.append("Missing legacy tables: " + ", ".join(result.missing_tables))
    for table, columns in result.missing_columns.items():
        lines.append(f"{table}: columns missing in the legacy database (read as empty): {', '.join(columns)}")
    header = (
        f"{'table':<24} {'source':>8} {'rejected':>8} {'skipped':>8} {'target':>8} {'records':>8}  "
        f"{'source digest':<13} {'target digest':<13} status"
    )
    lines += [header, "-" * len(header)]
    for t in result.tables:
        imported = t.source.count
        target = "-" if t.target is None else str(t.target.count)
        target_digest = "-" if t.target is None else t.target.short
        lines.append(
            f"{t.table:<24} {t.source_rows:>8} {t.orphans:>8} {t.skipped:>8} {target:>8} {t.records:>8}  "
            f"{t.source.short if imported else '-':<13} {target_digest if imported or t.target else '-':<13} {t.status}"
        )
    reasons = [(t, reason, n) for t in result.tables for reason, n in sorted(t.reasons.items())]
    if reasons:
        lines.append("")
        lines.append("Rows not imported as Mailhelper rows (legacy ids in brackets):")
        for t, reason, n in reasons:
            ids = ", ".join(str(i) for i in t.examples.get(reason, []))
            lines.append(f"  {t.table}: {n} x {reason} [{ids}{', ...' if n > len(t.examples.get(reason, [])) else ''}]")
    unselected = [(t.table, t.unselected) for t in result.tables if t.unselected]
    if unselected:
        lines.append("Rows of other users, not selected (--user): " + ", ".join(f"{t} {n}" for t, n in unselected))
    for t in result.tables:
        if t.by_design:
            lines.append(f"  {t.table}: not imported by design: {t.by_design}")
    if result.unknown_rule_keys:
        lines.append("")
        lines.append("Rule parts not converted (rules imported disabled, parts kept with the rule's import note):")
        lines += [f"  {key}" for key in result.unknown_rule_keys[:200]]
    dropped = {k: n for k, n in result.dropped_columns.items() if n}
    if dropped:
        lines.append("")
        lines.append("Legacy columns not imported (derived data Mailhelper computes itself): ")
        lines += [f"  {column}: {n} row(s) with a value" for column, n in sorted(dropped.items())]
    if result.warnings:
        lines.append("")
        lines.append(f"Warnings ({len(result.warnings)}):")
        lines += [f"  {w}" for w in result.warnings[:MAX_LINES]]
        if len(result.warnings) > MAX_LINES:
            lines.append(f"  ... and {len(result.warnings) - MAX_LINES} more")
    return "\n".join(lines)
