"""The analysis pipeline: stored message -> inputs -> (LLM or built-in) -> learned blend -> stored.

A service over models: the tasks, the `reprocess` command and the tests call it. A provider
failure falls back to the built-in analyser and is recorded; an unexpected error marks the
analysis failed with its reason and retry count, so nothing stays silently unanalysed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_noop

from accounts import keyring
from core.db.locks import lock_key, try_advisory_lock
from core.stored_text import Text, dump, message_of
from mail.models import Folder, MailAccount, Message
from mail.search_tokens import SearchKey, search_key_for
from mail.threading_keys import relink_subjects, subject_hash
from tags import keywords

from . import heuristics, language, learning, post_analysis, similarity
from .models import LearnedClassifier, MessageAnalysis, ProviderSettings, TrustedSender
from .provider_settings import config_for, enabled_for
from .providers import ProviderError, get_provider
from .search import index_ids
from .types import AnalysisResult, MessageInput, UserContext

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
TEXT_LIMIT = 50_000


def message_input(message: Message) -> MessageInput:
    return MessageInput(
        subject=message.subject,
        text=message.text_body[:TEXT_LIMIT],
        from_address=message.from_address,
        from_name=message.from_name,
        to=list(message.to_addresses),
        cc=list(message.cc_addresses),
        list_id=message.list_id,
        has_list_unsubscribe=message.has_list_unsubscribe,
        precedence=message.precedence,
        auto_submitted=message.auto_submitted,
        has_attachments=message.has_attachments,
        date=message.date,
        in_reply_to=message.in_reply_to,
        references=list(message.references),
    )


@dataclass
class OwnerContext:
    """What is the same for all of one user's messages: loaded once per batch, not per message."""

    owner_id: int
    addresses: set[str]
    vip_patterns: dict[object, list[str]]  # account id (None: all accounts) -> patterns
    provider: ProviderSettings | None
    classifier: learning.OnlineClassifier
    classifier_row: LearnedClassifier | None
    search_key: SearchKey
    no_booster: frozenset = frozenset()  # accounts whose urgency booster is off: their VIPs count as anyone
    no_model: frozenset = frozenset()  # accounts whose mail is never sent to the language model
    _topics: object = None  # (version, Projection) | False, loaded on first use

    def topics(self) -> tuple[int, similarity.Projection] | None:
        """The owner's topic projection, decrypted once per batch (None: no topics learned yet)."""
        if self._topics is None:
            self._topics = similarity.load_projection(self.owner_id) or False
        return self._topics or None

    @classmethod
    def load(cls, owner_id: int) -> OwnerContext:
        addresses = {
            a.lower() for a in MailAccount.objects.filter(owner_id=owner_id).values_list("email_address", flat=True)
        }
        vips: dict[object, list[str]] = {}
        for account_id, pattern in TrustedSender.objects.filter(owner_id=owner_id).values_list("account_id", "pattern"):
            vips.setdefault(account_id, []).append(pattern)
        provider = enabled_for(owner_id, "analysis")
        row = LearnedClassifier.objects.filter(owner_id=owner_id).first()
        try:
            classifier = learning.OnlineClassifier.from_state(row.state if row and row.state else None)
        except ValueError:  # damaged or from an unknown version: analyse without it rather than not at all
            log.warning("learned classifier of user %s could not be loaded; ignoring it", owner_id)
            classifier = learning.OnlineClassifier.from_state(None)
        switches = MailAccount.objects.filter(owner_id=owner_id).values_list(
            "pk", "urgency_booster", "use_language_model"
        )
        return cls(
            owner_id,
            addresses,
            vips,
            provider,
            classifier,
            row,
            search_key_for(owner_id),
            no_booster=frozenset(pk for pk, booster, _ in switches if not booster),
            no_model=frozenset(pk for pk, _, model in switches if not model),
        )

    def user_context(self, message: Message) -> UserContext:
        sender = message.from_address
        sent = Message.objects.filter(
            owner_id=self.owner_id, folder__special_use=Folder.SpecialUse.SENT
        )  # the user's own sent mail
        in_thread = bool(message.thread_key) and (
            Message.objects.filter(
                owner_id=self.owner_id, thread_key=message.thread_key, from_address__in=self.addresses
            )
            .exclude(pk=message.pk)
            .exists()
        )
        vips = self.vip_patterns.get(None, []) + self.vip_patterns.get(message.account_id, [])
        return UserContext(
            addresses=self.addresses,
            vip_senders=[] if message.account_id in self.no_booster else vips,
            sent_to_sender_count=sent.filter(to_addresses__contains=[sender]).count() if sender else 0,
            received_from_sender_count=(
                Message.objects.filter(owner_id=self.owner_id, from_address=sender).count() if sender else 0
            ),
            thread_has_user_message=in_thread,
            now=timezone.now(),
        )


def _provider_result(
    ctx: OwnerContext, msg: MessageInput, user_ctx: UserContext, account_id=None
) -> tuple[AnalysisResult | None, str]:
    settings_row = ctx.provider
    if settings_row is None or account_id in ctx.no_model:  # off for this account: the built-in analyser
        return None, ""
    try:
        return get_provider(config_for(settings_row)).analyse(msg, user_ctx), ""
    except ProviderError as exc:
        reason = Text(
            gettext_noop("%(provider)s: %(error)s"), provider=settings_row.get_kind_display(), error=message_of(exc)
        )
        return None, dump(reason, 300)  # a core.stored_text: the message page shows it in the reader's language


def analyse(analysis: MessageAnalysis, ctx: OwnerContext) -> MessageAnalysis:
    """Analyse one message and store the result on its analysis row."""
    message = analysis.message
    link_subject(message, ctx.search_key)
    msg = message_input(message)
    user_ctx = ctx.user_context(message)
    # Detected before the analysers run: the built-in one attributes shared words by it and a
    # language model is asked to summarise in it.
    analysis.language = language.detect(msg.text, msg.subject)
    user_ctx.language_hint = analysis.language
    result, fallback = _provider_result(ctx, msg, user_ctx, message.account_id)
    if result is None:
        result = heuristics.analyse(msg, user_ctx)
    result = learning.blend(result, ctx.classifier, msg, user_ctx)
    analysis.urgency, analysis.importance, analysis.category = result.urgency, result.importance, result.category
    analysis.is_spam, analysis.is_newsletter = result.is_spam, result.is_newsletter
    # Built-in reasons are content-free labels; a model's reasons may quote the mail, and this
    # column is not encrypted, so they are not kept.
    reasons = result.reasons[:10] if not result.method.startswith("llm:") else []
    analysis.confidence, analysis.method, analysis.reasons = result.confidence, result.method, reasons
    analysis.summary = result.summary
    analysis.fallback_reason = fallback
    analysis.state, analysis.failure_reason = MessageAnalysis.State.DONE, ""
    analysis.attempts += 1
    analysis.analysed_at = timezone.now()
    # The durable marker of what comes next (analysis/post_analysis.py), in the result's transaction.
    analysis.stages_pending, analysis.stage_attempts, analysis.stage_error = post_analysis.stage_names(), 0, ""
    analysis.refresh_final()
    analysis.save()
    # The keyword index is built here, right after the sync stored the message: hashing every word
    # costs ~2 ms a message, which would halve the sync's throughput if done there.
    message.search_ids = index_ids(message, ctx.search_key)
    Message.objects.filter(pk=message.pk).update(search_ids=message.search_ids)
    # The topic vector comes from the same ids; without a projection yet, the first fit writes it.
    topics = ctx.topics()
    if topics is not None:
        version, projection = topics
        vector = similarity.vector_of(projection, message, ctx.search_key)
        similarity.store_vectors(ctx.owner_id, version, [(message.pk, vector)])
    return analysis


def link_subject(message: Message, key: SearchKey) -> None:
    """Store the message's keyed subject hash and join header-less replies of that subject to their
    conversation (mail/threading_keys.py); first, so the analysis sees the conversation it is in."""
    hashed = subject_hash(message.subject, key)
    if hashed != message.subject_hash:
        Message.objects.filter(pk=message.pk).update(subject_hash=hashed)
        message.subject_hash = hashed
    if relink_subjects(message.owner_id, [hashed], key):
        message.thread_key = Message.objects.filter(pk=message.pk).values_list("thread_key", flat=True).get()


def analyse_many(analyses: Iterable[MessageAnalysis]) -> tuple[int, int]:
    """Analyse rows (any owners), one context per owner, then run the post-analysis stages on each
    owner's analysed messages once their results are committed. Returns (done, failed) analyses."""
    contexts: dict[int, OwnerContext | None] = {}
    analysed: dict[int, list[Message]] = {}
    done = failed = 0
    for analysis in analyses:
        owner_id = analysis.owner_id
        if owner_id not in contexts:
            contexts[owner_id] = None if keyring.is_locked(owner_id) else OwnerContext.load(owner_id)
        ctx = contexts[owner_id]
        if ctx is None:
            continue  # strict mode, logged out: stays pending until the user is back
        try:
            with transaction.atomic():
                analyse(analysis, ctx)
            done += 1
            analysed.setdefault(owner_id, []).append(analysis.message)
        except Exception as exc:  # noqa: BLE001 - recorded on the row; the batch goes on
            log.warning("analysis of message %s failed: %s", analysis.message_id, type(exc).__name__)
            MessageAnalysis.objects.filter(pk=analysis.pk).update(
                state=MessageAnalysis.State.FAILED,
                attempts=analysis.attempts + 1,
                failure_reason=f"{type(exc).__name__}"[:300],
            )
            failed += 1
    for owner_id, messages in analysed.items():
        post_analysis.run(owner_id, messages)  # topics, tags, rules; a failing stage is recorded, not raised
    return done, failed


PENDING_CHUNK = 200


def analyse_pending(account_id) -> tuple[int, int] | None:
    """Analyse the account's pending messages until none is left; returns (done, failed), or None
    when another analysis of the account is running.

    One analysis per account at a time (an advisory lock): a long first sync announces new mail
    every thousand messages, and two runs over the same pending rows would analyse them, and run
    the user's rules on them, twice. The holder reads what is pending again after each chunk
    (newest first in a first sync, which stores newest first), so mail stored while it works
    is not left waiting for the stragglers sweep.
    """
    with try_advisory_lock(lock_key(f"analysis/account/{account_id}")) as acquired:
        if not acquired:
            return None
        done = failed = 0
        while chunk := list(pending_for_account(account_id)[:PENDING_CHUNK]):
            d, f = analyse_many(chunk)
            done, failed = done + d, failed + f
            if not d + f:
                break  # the owner is locked (strict mode, logged out): the rows wait for them
        return done, failed


def pending_for_account(account_id) -> Iterable[MessageAnalysis]:
    return (
        MessageAnalysis.objects.filter(message__account_id=account_id, state=MessageAnalysis.State.PENDING)
        .select_related("message")
        .order_by("queued_at")
    )


def stragglers(older_than: timedelta = timedelta(minutes=10)):
    """Pending rows nobody picked up, and failed rows that may succeed on another try."""
    cutoff = timezone.now() - older_than
    return (
        MessageAnalysis.objects.filter(
            Q(state=MessageAnalysis.State.PENDING, queued_at__lt=cutoff)
            | Q(state=MessageAnalysis.State.FAILED, attempts__lt=MAX_ATTEMPTS)
        )
        .select_related("message")
        .order_by("queued_at")
    )


# --- corrections and learning ---------------------------------------------------------------------


@transaction.atomic
def correct(
    analysis: MessageAnalysis,
    *,
    urgency: int | None = None,
    importance: int | None = None,
    category: str | None = None,
    is_spam: bool | None = None,
) -> None:
    """Store the user's correction and teach their classifier at once."""
    ctx = OwnerContext.load(analysis.owner_id)
    message = analysis.message
    if urgency is not None:
        analysis.corrected_urgency = urgency
    if importance is not None:
        analysis.corrected_importance = importance
    if category:
        analysis.corrected_category = category
    if is_spam is not None:
        analysis.corrected_spam = is_spam
    analysis.refresh_final()
    analysis.save()
    if category:
        keywords.show_category(analysis.owner_id, message, analysis.final_category)  # opted-in users only
    ctx.classifier.learn(
        message_input(message),
        ctx.user_context(message),
        urgency=urgency,
        importance=importance,
        category=category or None,
        is_spam=is_spam,
    )
    row, _ = LearnedClassifier.objects.select_for_update().get_or_create(owner_id=analysis.owner_id)
    row.state = ctx.classifier.to_state()
    row.corrections += 1
    row.save()


def mark_done(analysis: MessageAnalysis, done: bool = True) -> bool:
    """Clear the message from the matrix (done) or put it back; returns whether that changed anything.

    Marking a message done twice (a double click, the shortcut and the button) keeps the first
    time: done_at says when the user dealt with it, not when they last pressed the button.
    """
    value = timezone.now() if done else None
    changed = MessageAnalysis.objects.filter(pk=analysis.pk, done_at__isnull=done).update(done_at=value) == 1
    if changed:
        analysis.done_at = value
    return changed


def reset_learning(owner_id: int) -> None:
    LearnedClassifier.objects.filter(owner_id=owner_id).delete()
