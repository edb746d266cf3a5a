"""Running rules on stored mail: build what the engine reads, claim the log row, apply the plan.

The engine (rules/engine.py) only says what to do; this module does it, through the same paths as
the UI: mail.actions for anything that goes back to the IMAP server, tags.service for tags, and the
analysis row for category/urgency/importance/done.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import F, Prefetch
from django.utils import timezone
from django.utils.translation import gettext_noop

from analysis.models import MessageAnalysis, TrustedSender
from core import stored_text
from core.models import Job
from core.stored_text import Text
from mail import actions as mail_actions
from mail.models import Attachment, Folder, MailAccount, Message
from tags.models import Tag, TagAssignment
from tags.service import assign as assign_tag
from tags.service import unassign as unassign_tag

from . import engine, spec
from .models import Rule, RuleLog
from .senders import SenderPatterns

log = logging.getLogger(__name__)


def _extension(filename: str) -> str:
    return filename.rsplit(".", 1)[-1].lower() if "." in filename else ""


@dataclass
class OwnerRules:
    """A user's compiled rules and what RuleMessages need, loaded once per batch."""

    owner_id: int
    rules: list[engine.CompiledRule]
    broken: dict
    trusted: dict  # account id (None: all) -> SenderPatterns

    @classmethod
    def load(cls, owner_id: int, only: Iterable[Rule] | None = None) -> OwnerRules:
        rows = only if only is not None else Rule.objects.filter(owner_id=owner_id, enabled=True)
        compiled, broken = engine.prepare_rules([(r.pk, r.name, r.order, r.definition) for r in rows])
        patterns: dict = {}
        for account_id, pattern in TrustedSender.objects.filter(owner_id=owner_id).values_list("account_id", "pattern"):
            patterns.setdefault(account_id, []).append(pattern)
        trusted = {key: SenderPatterns(value) for key, value in patterns.items()}
        return cls(owner_id, compiled, broken, trusted)

    def is_trusted(self, message: Message) -> bool:
        for key in (None, message.account_id):
            matcher = self.trusted.get(key)
            if matcher is not None and matcher.matches(message.from_address):
                return True
        return False


def with_rule_data(qs):
    """What rule_message() reads, in a constant number of queries."""
    return qs.select_related("account", "folder", "analysis").prefetch_related(
        Prefetch("attachments", queryset=Attachment.objects.only("id", "message_id", "content_type", "filename")),
        Prefetch("tag_assignments", queryset=TagAssignment.objects.only("id", "message_id", "tag_id")),
    )


def rule_message(message: Message, ctx: OwnerRules) -> engine.RuleMessage:
    analysis = getattr(message, "analysis", None)
    done = analysis is not None and analysis.state == MessageAnalysis.State.DONE
    attachments = list(message.attachments.all())
    types: list[str] = []
    for attachment in attachments:
        types.append(attachment.content_type)
        extension = _extension(attachment.filename)
        if extension:
            types.append(extension)
    return engine.RuleMessage(
        id=str(message.pk),
        from_address=message.from_address,
        to_cc=list(message.to_addresses) + list(message.cc_addresses),
        subject=message.subject,
        body=message.text_body,
        has_attachment=message.has_attachments,
        attachment_types=types,
        folder=message.folder.name,
        account_id=str(message.account_id),
        is_list=bool(message.list_id or message.has_list_unsubscribe),
        size=message.size,
        date=message.date or message.sort_date,
        category=analysis.final_category if done else "",
        urgency=analysis.final_urgency if done else None,
        importance=analysis.final_importance if done else None,
        is_spam=bool(analysis.final_spam) if done else False,
        tag_ids={a.tag_id for a in message.tag_assignments.all()},
        sender_trusted=ctx.is_trusted(message),
    )


def _apply_plan(message: Message, plan: engine.Plan) -> str:
    """Do what the plan says; returns what was left out and why ("" when everything applied).

    A move (to a folder, Trash or Archive) of a POP3 account's message is left out with the reason
    and the rest of the plan still applies: tagging a POP3 message should not fail for its "move".
    """
    owner_id = message.owner_id
    tags = {t.pk: t for t in Tag.objects.filter(owner_id=owner_id, pk__in=plan.add_tags | plan.remove_tags)}
    for tag_id in plan.add_tags:
        if tag_id in tags:
            assign_tag(owner_id, tags[tag_id], [message], source=TagAssignment.Source.RULE)
    for tag_id in plan.remove_tags:
        if tag_id in tags:
            unassign_tag(owner_id, tags[tag_id], [message])
    analysis_fields = {}
    if plan.category:
        analysis_fields["corrected_category"] = plan.category
    if plan.urgency:
        analysis_fields["corrected_urgency"] = plan.urgency
    if plan.importance:
        analysis_fields["corrected_importance"] = plan.importance
    if plan.done:
        analysis_fields["done_at"] = timezone.now()
    if analysis_fields:
        analysis = MessageAnalysis.objects.filter(message=message).first()
        if analysis is not None:
            for key, value in analysis_fields.items():
                setattr(analysis, key, value)
            analysis.refresh_final()
            analysis.save()
    if plan.seen is not None:
        mail_actions.apply([message], "mark_read" if plan.seen else "mark_unread")
    if plan.flagged is not None:
        mail_actions.apply([message], "flag" if plan.flagged else "unflag")
    if plan.destination and message.account.is_pop3:
        return stored_text.dump(
            Text(gettext_noop("Not moved: %(reason)s"), reason=Text(MailAccount.POP3_ONLY_REASON)), 300
        )
    if plan.destination:
        target = _destination(message, plan)
        if target is not None:
            mail_actions.apply([message], "move", target)
    return ""


def _destination(message: Message, plan: engine.Plan) -> Folder | None:
    if plan.destination == "trash":
        return mail_actions.trash_folder(message.account)
    if plan.destination == "archive":
        return mail_actions.archive_folder(message.account)
    return Folder.objects.filter(pk=plan.folder_id, account_id=message.account_id).first()


def run_on_messages(owner_id: int, messages: list[Message], only: Iterable[Rule] | None = None) -> int:
    """Run the owner's enabled rules (or `only` these) on messages, once per rule and message.

    Returns how many (rule, message) applications happened. IMAP changes are queued through the
    outbox (mail.actions), which announces them on commit; mail.tasks then writes them back.
    """
    ctx = OwnerRules.load(owner_id, only)
    for rule_id, errors in ctx.broken.items():
        log.warning("rule %s skipped: invalid (%d problems)", rule_id, len(errors))
    if not ctx.rules or not messages:
        return 0
    messages = list(with_rule_data(Message.objects.filter(owner_id=owner_id, pk__in=[m.pk for m in messages])))
    now = timezone.now()
    applied = 0
    for message in messages:
        result = engine.run(ctx.rules, rule_message(message, ctx), now)
        for rule_id, count in result.timeouts.items():
            log.warning("rule %s: regex timed out %d time(s) on message %s", rule_id, count, message.pk)
        outcomes = []
        for outcome in result:
            try:
                with transaction.atomic():
                    RuleLog.objects.create(owner_id=owner_id, rule_id=outcome.rule_id, message=message)
            except IntegrityError:
                continue  # already applied to this message: rules run once per message
            outcomes.append(outcome)
        if not outcomes:
            continue
        plan = engine.combine(outcomes)
        error = ""
        try:
            with transaction.atomic():
                error = _apply_plan(message, plan)
        except mail_actions.ActionError as exc:
            error = stored_text.dump(stored_text.message_of(exc), 300)
        for outcome in outcomes:
            RuleLog.objects.filter(rule_id=outcome.rule_id, message=message).update(
                actions=[stored_text.dump(spec.action_text(a)) for a in outcome.actions], success=not error, error=error
            )
            Rule.objects.filter(pk=outcome.rule_id).update(
                last_triggered_at=now, times_triggered=F("times_triggered") + 1
            )
        applied += len(outcomes)
    return applied


def dry_run(rule: Rule, limit: int = 10_000, listed: int = 100) -> tuple[engine.DryRunResult, list[Message]]:
    """Which existing messages the rule would match, changing nothing."""
    ctx = OwnerRules.load(rule.owner_id, only=[rule])
    if not ctx.rules:
        raise ValueError("; ".join(ctx.broken.get(rule.pk, ["invalid rule"])))
    qs = with_rule_data(
        Message.objects.filter(owner_id=rule.owner_id, expunged_at__isnull=True).order_by("-sort_date")
    )[:limit]
    messages = list(qs)
    by_id = {str(m.pk): m for m in messages}
    result = engine.dry_run(ctx.rules[0], [rule_message(m, ctx) for m in messages], timezone.now(), max_listed=listed)
    return result, [by_id[i] for i in result.matched_ids if i in by_id]


def run_on_existing(rule_ids: list[int], owner_id: int, progress: Callable[[int, int], None] | None = None) -> int:
    """On demand: run the given rules over the owner's existing mail, in chunks."""
    rules = list(Rule.objects.filter(owner_id=owner_id, pk__in=rule_ids))
    ids = list(
        Message.objects.filter(owner_id=owner_id, expunged_at__isnull=True)
        .order_by("sort_date")
        .values_list("pk", flat=True)
    )
    applied = 0
    for start in range(0, len(ids), 200):
        chunk = list(Message.objects.filter(pk__in=ids[start : start + 200]))
        applied += run_on_messages(owner_id, chunk, only=rules)
        if progress:
            progress(min(start + 200, len(ids)), len(ids))
    return applied


def run_job(job: Job, progress: Callable[[int, int], None]) -> str:
    """The work of a "rules" job (core.jobs.run calls it): params["rule_ids"] over existing mail."""
    applied = run_on_existing(job.params.get("rule_ids", []), job.owner_id, progress)
    return stored_text.dump(Text(gettext_noop("Rule applications: %(count)s"), count=applied))
