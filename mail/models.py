"""Mail accounts, folders with their server sync state, messages, attachments and sync runs.

Content (subjects, bodies, raw source, attachment names and data, passwords) is encrypted with the
owner's data key; metadata needed for queries (dates, flags, sizes, addresses, UIDs) stays plain.
Rows holding encrypted content carry an `owner` so that every query can be scoped to it.
"""

from __future__ import annotations

from datetime import date, timedelta

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from accounts.fields import EncryptedBinaryField, EncryptedModel, EncryptedTextField


class Security(models.TextChoices):
    SSL = "ssl", "SSL/TLS"
    STARTTLS = "starttls", "STARTTLS"
    PLAIN = "plain", _("none (plain text, loopback or testing only)")


def a_year_ago() -> date:
    """The default first-sync window of a new account: mail of the last 12 months."""
    return timezone.localdate() - timedelta(days=365)


class MailAccount(EncryptedModel):
    """One mailbox. The incoming server (`imap_*` fields) speaks IMAP or POP3, as `protocol` says.

    The fields keep their IMAP names for both protocols (one host, port, security, user name and
    encrypted password per account either way), so nothing that reads them needed a second set.
    A POP3 account syncs INBOX only (mail/pop3_sync.py) and has no server-side folders or flags:
    what needs them (moves, flags written back, IDLE, the Sent copy) is refused for it
    (`imap_only_reason`).
    """

    class Protocol(models.TextChoices):
        IMAP = "imap", "IMAP"
        POP3 = "pop3", "POP3"

    class AuthMethod(models.TextChoices):
        PASSWORD = "password", _("Password")
        OAUTH2 = "oauth2", _("Sign-in with the mail provider (OAuth2)")

    class Status(models.TextChoices):
        NEW = "new", _("not synced yet")
        OK = "ok", _("ok")
        NEEDS_ATTENTION = "needs_attention", _("needs attention")
        LOCKED = "locked", _("locked: log in to resume")

    class FirstSync(models.TextChoices):
        """What the first sync of a folder takes (mail/sync.py, "First sync"). Mail arriving later is always fetched."""

        SINCE = "since", _("Mail since a date")
        NEWEST = "newest", _("Only the newest messages of each folder")
        UNREAD = "unread", _("Only unread mail")
        ALL = "all", _("The whole mailbox")

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mail_accounts")
    name = models.CharField(max_length=100, help_text=_("How the account is shown, e.g. 'Work'."))
    email_address = models.EmailField(help_text=_("Your address on this account (used to recognise your own mail)."))
    protocol = models.CharField(
        _("Incoming mail protocol"),
        max_length=4,
        choices=Protocol.choices,
        default=Protocol.IMAP,
        help_text=_("IMAP keeps folders and read/flag state on the server; POP3 fetches the inbox only."),
    )
    imap_host = models.CharField(_("IMAP server"), max_length=255)
    imap_port = models.PositiveIntegerField(_("IMAP port"), default=993)
    imap_security = models.CharField(_("IMAP security"), max_length=10, choices=Security.choices, default=Security.SSL)
    imap_username = models.CharField(_("IMAP user name"), max_length=255)
    imap_password = EncryptedTextField(default="")
    smtp_host = models.CharField(_("SMTP server"), max_length=255, blank=True)
    smtp_port = models.PositiveIntegerField(_("SMTP port"), default=587)
    smtp_security = models.CharField(
        _("SMTP security"), max_length=10, choices=Security.choices, default=Security.STARTTLS
    )
    smtp_username = models.CharField(_("SMTP user name"), max_length=255, blank=True)
    smtp_password = EncryptedTextField(default="")
    # OAuth2 (mail/oauth.py): the tokens are secrets like the passwords, under the owner's data key;
    # which provider and until when the access token lasts are metadata.
    auth_method = models.CharField(_("Sign-in"), max_length=10, choices=AuthMethod.choices, default=AuthMethod.PASSWORD)
    oauth_provider = models.CharField(
        max_length=20, blank=True, help_text="The key of the provider in MAILHELPER_OAUTH_PROVIDERS (OAuth2 only)."
    )
    oauth_access_token = EncryptedTextField(null=True, blank=True)  # None: none yet (a column added to rows)
    oauth_refresh_token = EncryptedTextField(null=True, blank=True)
    oauth_expires_at = models.DateTimeField(null=True, blank=True, help_text="When the access token expires.")
    sync_interval_minutes = models.PositiveIntegerField(default=5)
    pop3_delete_after_days = models.PositiveIntegerField(
        _("Delete from the POP3 server after (days)"),
        null=True,
        blank=True,
        help_text=_(
            "POP3 only. Empty: leave messages on the server. A number: delete a message from the server "
            "once it has been stored here for that many days."
        ),
    )
    # What the first sync takes (per folder, when it is first synced or renumbered by the server).
    first_sync = models.CharField(
        _("First sync takes"),
        max_length=10,
        choices=FirstSync.choices,
        default=FirstSync.SINCE,
        help_text=_("Only the first sync of a folder is limited: new mail arriving later is always fetched."),
    )
    first_sync_since = models.DateField(
        _("Mail since"),
        null=True,
        blank=True,
        default=a_year_ago,
        help_text=_("With “Mail since a date”: mail that arrived on or after this day is fetched first."),
    )
    first_sync_newest = models.PositiveIntegerField(
        _("Newest messages per folder"),
        default=500,
        help_text=_("With “Only the newest messages”: how many of each folder's newest messages are fetched first."),
    )
    backfill_older = models.BooleanField(
        _("Fetch older mail in the background"),
        default=True,
        help_text=_(
            "With a date or the newest messages: once the first sync is done, older mail is fetched "
            "newest first, in small batches, while new mail keeps arriving as usual."
        ),
    )
    # Per-account switches of the analysis (analysis/pipeline.py reads them).
    analyse_on_fetch = models.BooleanField(
        _("Analyse new mail"),
        default=True,
        help_text=_(
            "Score, summarise, tag and apply your rules to mail as it arrives. Off: mail is stored and "
            "shown without scores, tags, rules or keyword search until you re-analyse it."
        ),
    )
    urgency_booster = models.BooleanField(
        _("Urgency booster"),
        default=True,
        help_text=_("Raise urgency and importance of mail from your trusted (VIP) senders."),
    )
    use_language_model = models.BooleanField(
        _("Use my language model"),
        default=True,
        help_text=_(
            "Analyse this account's mail with the language model set up in the analysis settings. "
            "Off: the built-in analyser only, and nothing of this account's mail leaves the server."
        ),
    )
    enabled = models.BooleanField(default=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.NEW)
    status_message = models.CharField(
        max_length=300, blank=True, help_text="Why the account needs attention; never a secret or mail content."
    )
    last_sync_at = models.DateTimeField(null=True, blank=True)
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="account_name_unique_per_owner")]

    def __str__(self) -> str:
        return f"{self.name} ({self.imap_username}@{self.imap_host})"

    @property
    def uses_oauth(self) -> bool:
        return self.auth_method == self.AuthMethod.OAUTH2

    @property
    def oauth_provider_name(self) -> str:
        """The provider's name as the operator configured it (its key if no longer configured)."""
        from .oauth import get_provider  # oauth imports this module

        provider = get_provider(self.oauth_provider) if self.uses_oauth else None
        return provider.name if provider else self.oauth_provider

    @property
    def is_pop3(self) -> bool:
        return self.protocol == self.Protocol.POP3

    #: The msgid of imap_only_reason, for texts a worker stores (core.stored_text).
    POP3_ONLY_REASON = gettext_noop(
        "POP3 accounts have only an inbox on the server: folders, moves and flags exist here only."
    )

    @property
    def imap_only_reason(self) -> str:
        """Why an IMAP-only action is refused for this account ("" for IMAP accounts); fit for the user."""
        return gettext(self.POP3_ONLY_REASON) if self.is_pop3 else ""


class Pop3Seen(models.Model):
    """A POP3 message (by its UIDL) that this account has already stored: the POP3 sync state.

    Written in the same transaction as the stored message (mail/pop3_sync.py), so a sync killed
    between two messages neither stores one twice nor skips one. Kept after the message was deleted
    from the server (`deleted_at`), until its UIDL is no longer listed: a DELE whose QUIT never
    arrived leaves the message on the server, and it must not come back as new.
    """

    account = models.ForeignKey(MailAccount, on_delete=models.CASCADE, related_name="pop3_seen")
    uidl = models.CharField(max_length=255, help_text="The server's unique id of the message (RFC 1939 UIDL).")
    message = models.ForeignKey("Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    stored_at = models.DateTimeField(default=timezone.now, help_text="When the message was stored here.")
    deleted_at = models.DateTimeField(null=True, blank=True, help_text="When we deleted it from the server.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "uidl"], name="pop3_seen_unique_uidl")]

    def __str__(self) -> str:
        return f"pop3 uidl of {self.account_id}"


class Folder(models.Model):
    class SpecialUse(models.TextChoices):
        NONE = "", "-"
        INBOX = "inbox", _("Inbox")
        SENT = "sent", _("Sent")
        DRAFTS = "drafts", _("Drafts")
        TRASH = "trash", _("Trash")
        JUNK = "junk", _("Junk")
        ARCHIVE = "archive", pgettext_lazy("folder", "Archive")
        ALL = "all", _("All mail")

    account = models.ForeignKey(MailAccount, on_delete=models.CASCADE, related_name="folders")
    name = models.CharField(max_length=500, help_text="The folder's name on the server.")
    delimiter = models.CharField(max_length=4, blank=True)
    special_use = models.CharField(max_length=10, choices=SpecialUse.choices, blank=True, default="")
    sync_enabled = models.BooleanField(default=False)
    exists_on_server = models.BooleanField(default=True)
    # Server state after the last completed sync of this folder.
    uidvalidity = models.BigIntegerField(null=True, blank=True)
    uidnext = models.BigIntegerField(null=True, blank=True)
    highestmodseq = models.BigIntegerField(null=True, blank=True)
    server_exists = models.PositiveIntegerField(null=True, blank=True, help_text="EXISTS count at last sync.")
    last_synced_at = models.DateTimeField(null=True, blank=True)
    keywords_allowed = models.BooleanField(
        null=True,
        blank=True,
        help_text="Whether the server keeps keywords here (PERMANENTFLAGS \\* at the last read-write SELECT); "
        "empty: not known yet.",
    )
    # The background fetch of older mail (mail/backfill.py), planned by a first sync that took a window.
    backfill_uidvalidity = models.BigIntegerField(null=True, blank=True)
    backfill_below_uid = models.BigIntegerField(
        null=True, blank=True, help_text="Older mail still to fetch has UIDs below this one; empty: none left."
    )
    backfill_before = models.DateField(
        null=True, blank=True, help_text="Only mail that arrived before this day (empty: every UID below)."
    )
    backfill_total = models.PositiveIntegerField(default=0, help_text="Older messages found when planned.")
    backfill_done = models.PositiveIntegerField(default=0, help_text="Older messages fetched so far.")
    backfill_reached = models.DateTimeField(null=True, blank=True, help_text="Arrival of the oldest fetched so far.")

    class Meta:
        ordering = ["account", "name"]
        constraints = [models.UniqueConstraint(fields=["account", "name"], name="folder_name_unique_per_account")]

    def __str__(self) -> str:
        return self.name

    @property
    def display_name(self) -> str:
        return self.name_shown(self.name, self.delimiter)

    @staticmethod
    def name_shown(name: str, delimiter: str) -> str:
        """display_name of a folder read as values (the message list reads no Folder instances)."""
        if name.upper() == "INBOX":
            return gettext("Inbox")
        return name.split(delimiter)[-1] if delimiter else name


class Message(EncryptedModel):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    account = models.ForeignKey(MailAccount, on_delete=models.CASCADE, related_name="messages")
    folder = models.ForeignKey(Folder, on_delete=models.CASCADE, related_name="messages")
    # Server identity. uid is NULL while a move made here waits for the next sync to learn the new UID.
    uidvalidity = models.BigIntegerField(null=True)
    uid = models.BigIntegerField(null=True)
    modseq = models.BigIntegerField(null=True, blank=True)
    # Plain metadata, for queries.
    message_id = models.CharField(max_length=995, blank=True, db_index=True)
    in_reply_to = models.CharField(max_length=995, blank=True)
    references = ArrayField(models.CharField(max_length=995), default=list, blank=True)
    thread_key = models.CharField(max_length=995, blank=True, db_index=True)
    # Keyed hash of the normalised subject (mail/threading_keys.py), never the subject: joins replies from
    # clients that send no In-Reply-To/References to their conversation. NULL: not computed yet.
    subject_hash = models.BigIntegerField(null=True, blank=True)
    date = models.DateTimeField(null=True, blank=True, help_text="From the Date header; empty if missing.")
    internal_date = models.DateTimeField(null=True, blank=True)
    sort_date = models.DateTimeField(help_text="Date header, else the server's arrival time.")
    from_address = models.CharField(max_length=320, blank=True, db_index=True)
    from_name = models.CharField(max_length=300, blank=True)
    to_addresses = ArrayField(models.CharField(max_length=320), default=list, blank=True)
    cc_addresses = ArrayField(models.CharField(max_length=320), default=list, blank=True)
    size = models.PositiveIntegerField(default=0)
    seen = models.BooleanField(default=False)
    flagged = models.BooleanField(default=False)
    answered = models.BooleanField(default=False)
    draft = models.BooleanField(default=False)
    keywords = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    has_attachments = models.BooleanField(default=False)
    list_id = models.CharField(max_length=300, blank=True)
    has_list_unsubscribe = models.BooleanField(default=False)
    precedence = models.CharField(max_length=20, blank=True)
    auto_submitted = models.CharField(max_length=40, blank=True)
    calendar_method = models.CharField(max_length=20, blank=True)
    has_remote_images = models.BooleanField(default=False)
    parse_warnings = models.JSONField(default=list, blank=True)
    # Blind keyword index: keyed hashes of the words of subject, body and addresses (mail/search_tokens.py).
    search_ids = ArrayField(models.BigIntegerField(), default=list, blank=True)
    expunged_at = models.DateTimeField(null=True, blank=True, help_text="Gone from the server folder.")
    # Times the user chose (mail/snooze.py): hidden from the open lists until then; reminded then if unanswered.
    snoozed_until = models.DateTimeField(null=True, blank=True)
    follow_up_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Encrypted content.
    subject = EncryptedTextField(default="")
    text_body = EncryptedTextField(default="", compress=True)
    html_body = EncryptedTextField(default="", compress=True)
    raw = EncryptedBinaryField(null=True, compress=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["folder", "uidvalidity", "uid"], name="message_unique_server_identity")
        ]
        indexes = [
            GinIndex(fields=["search_ids"], name="message_search_ids"),
            models.Index(
                fields=["folder"], condition=Q(seen=False, expunged_at__isnull=True), name="message_unread_by_folder"
            ),
            models.Index(fields=["owner", "-sort_date"], name="message_owner_date"),
            models.Index(fields=["folder", "-sort_date"], name="message_folder_date"),
            models.Index(
                fields=["owner", "subject_hash"], condition=Q(subject_hash__isnull=False), name="message_owner_subject"
            ),
            # The minute's dispatcher reads only the few rows with a time set.
            models.Index(fields=["snoozed_until"], condition=Q(snoozed_until__isnull=False), name="message_snoozed"),
            models.Index(fields=["follow_up_at"], condition=Q(follow_up_at__isnull=False), name="message_follow_up"),
        ]

    def __str__(self) -> str:
        return f"message {self.id}"


class Attachment(EncryptedModel):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attachments")
    position = models.PositiveSmallIntegerField(default=0)
    content_type = models.CharField(max_length=200)
    size = models.PositiveIntegerField(default=0)
    content_id = models.CharField(max_length=300, blank=True)
    is_inline = models.BooleanField(default=False)
    filename = EncryptedTextField(default="")
    data = EncryptedBinaryField(null=True, compress=True)

    class Meta:
        ordering = ["position"]

    def __str__(self) -> str:
        return f"attachment {self.id}"


class SyncRun(models.Model):
    """One sync of one account: what it did, shown with progress (lifecycle in mail/sync.py)."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        RUNNING = "running", _("running")
        SUCCESS = "success", _("finished")
        FAILED = "failed", _("failed")
        SKIPPED = "skipped", _("skipped")
        INTERRUPTED = "interrupted", _("interrupted (the worker stopped)")

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", _("schedule")
        MANUAL = "manual", _("sync now")
        COMMAND = "command", _("management command")
        PUSH = "push", _("new mail announced by the server")

    class ErrorKind(models.TextChoices):
        """What went wrong, for operators who sort thousands of accounts by it (the text says the rest)."""

        NONE = "", _("none")
        LOGIN = "login", _("login refused")
        NETWORK = "network", _("server unreachable")
        INTERRUPTED = "interrupted", _("interrupted")
        INTERNAL = "internal", _("internal error")

    account = models.ForeignKey(MailAccount, on_delete=models.CASCADE, related_name="sync_runs")
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.SCHEDULE)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    queued_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The run's last sign of life: written when it is queued, claimed, at every folder and every batch.
    heartbeat_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveSmallIntegerField(default=0)
    folders_total = models.PositiveIntegerField(default=0)
    folders_done = models.PositiveIntegerField(default=0)
    current_folder = models.CharField(max_length=500, blank=True)
    messages_new = models.PositiveIntegerField(default=0)
    messages_updated = models.PositiveIntegerField(default=0)
    messages_expunged = models.PositiveIntegerField(default=0)
    bytes_fetched = models.BigIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True, help_text="Per-folder problems; no content or secrets.")
    error = models.CharField(max_length=500, blank=True)
    error_kind = models.CharField(max_length=12, choices=ErrorKind.choices, blank=True, default=ErrorKind.NONE)

    class Meta:
        ordering = ["-queued_at"]
        indexes = [models.Index(fields=["account", "-queued_at"])]

    def __str__(self) -> str:
        return f"sync of {self.account_id} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class PendingAction(models.Model):
    """A change made here (UI or rule) that still has to be written to the IMAP server.

    The local row changes at once, so the user sees the result without waiting; this outbox row
    carries the server-side identity the message had when the change was made, and is worked off
    by a task that retries while the server is unreachable. Sync leaves messages with pending
    actions alone, so a sync running first cannot undo the user's change.
    """

    class Kind(models.TextChoices):
        MARK_READ = "mark_read", "mark read"
        MARK_UNREAD = "mark_unread", "mark unread"
        FLAG = "flag", "flag"
        UNFLAG = "unflag", "unflag"
        MOVE = "move", "move"
        MARK_ANSWERED = "mark_answered", "mark answered"
        MARK_FORWARDED = "mark_forwarded", "mark forwarded"
        APPEND_SENT = "append_sent", "copy to Sent"
        APPEND_DRAFT = "append_draft", "copy to Drafts"
        REMOVE_DRAFT = "remove_draft", "remove from Drafts"
        ADD_KEYWORD = "add_keyword", "add keyword"
        REMOVE_KEYWORD = "remove_keyword", "remove keyword"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    account = models.ForeignKey(MailAccount, on_delete=models.CASCADE, related_name="pending_actions")
    # None for the Sent copy of a new message (it answers nothing): every subquery on it skips NULLs.
    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.CASCADE, related_name="pending_actions"
    )
    # APPEND_SENT only: the sent draft whose stored MIME source goes into the Sent folder
    # (`message` is then the message it answered, which sync leaves alone until this is done).
    draft = models.ForeignKey("Draft", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    source_folder = models.CharField(max_length=500)
    source_uidvalidity = models.BigIntegerField(null=True)
    source_uid = models.BigIntegerField(null=True)
    target_folder = models.CharField(max_length=500, blank=True)
    # The Message-ID (no angle brackets) of a draft's copy on the server: a removal outlives the draft.
    draft_message_id = models.CharField(max_length=995, blank=True)
    # ADD_KEYWORD / REMOVE_KEYWORD: the IMAP keyword, chosen by the app that maps to keywords (tags).
    keyword = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    done_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["account", "done_at"])]

    def __str__(self) -> str:
        return f"{self.kind} of {self.message_id}"


class ReplySettings(EncryptedModel):
    """How a user's reply drafts begin and end, for the built-in templates and the LLM prompt alike.

    Greeting, closing and instructions are text the user wrote (they may name people, e.g.
    "Viele Grüße, Peter"), so they are encrypted like mail; the form of address is a plain choice.
    A greeting may contain "{name}": the recipient's full name (formal) or first name (informal).
    """

    class AddressForm(models.TextChoices):
        FORMAL = "formal", _("formal (full name: 'Dear Anna Schmidt')")
        INFORMAL = "informal", _("informal (first name: 'Hi Anna')")

    owner = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    greeting = EncryptedTextField(default="")
    closing = EncryptedTextField(default="")
    address_form = models.CharField(max_length=10, choices=AddressForm.choices, default=AddressForm.FORMAL)
    instructions = EncryptedTextField(default="")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"reply settings of user {self.owner_id}"


class AccountSignature(EncryptedModel):
    """The signature appended to drafts written from one account (encrypted: it is the user's text)."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    account = models.OneToOneField(MailAccount, on_delete=models.CASCADE, related_name="signature")
    text = EncryptedTextField(default="")

    def __str__(self) -> str:
        return f"signature of account {self.account_id}"


class DraftAttachment(EncryptedModel):
    """A file the user attached to a message they write: encrypted like mail's attachments, sent with
    the draft, served back only as a download."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    draft = models.ForeignKey("Draft", on_delete=models.CASCADE, related_name="uploads")
    content_type = models.CharField(max_length=200, default="application/octet-stream")
    size = models.PositiveIntegerField(default=0)
    filename = EncryptedTextField(default="")
    data = EncryptedBinaryField(null=True, compress=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"draft attachment {self.id}"


class Draft(EncryptedModel):
    """A new message, reply, reply-all or forward being written, sent, or sent.

    Recipients, subject and body are the user's mail content and are encrypted; the threading
    headers (In-Reply-To, References, the new Message-ID) are plain metadata like Message's.
    Sending moves the status draft/failed -> sending -> sent/failed under a row lock, so a
    double click or a redelivered task never sends twice: `send_started_at` marks an attempt
    that began talking to the SMTP server, and an attempt found half-done is failed for the
    user to check instead of being repeated. `error` is written for the user and never holds
    a secret or mail content. `sent_raw` keeps the exact bytes sent until the copy is in the
    Sent folder. A reply or forward belongs to the message it answers and goes with it; a new
    message has no original. Bcc recipients are in the envelope only, never in a header.
    """

    class Kind(models.TextChoices):
        NEW = "new", _("new message")
        REPLY = "reply", _("reply")
        REPLY_ALL = "reply_all", _("reply all")
        FORWARD = "forward", _("forward")

    class Style(models.TextChoices):
        FORMAL = "formal", _("formal")
        FRIENDLY = "friendly", _("friendly")
        BRIEF = "brief", _("brief")
        DECLINE = "decline", _("decline")

    class Status(models.TextChoices):
        DRAFT = "draft", "draft"
        SENDING = "sending", "sending"
        SENT = "sent", "sent"
        FAILED = "failed", "failed"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    account = models.ForeignKey(MailAccount, on_delete=models.CASCADE, related_name="drafts")
    original = models.ForeignKey(Message, null=True, blank=True, on_delete=models.CASCADE, related_name="drafts")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.REPLY)
    style = models.CharField(max_length=10, choices=Style.choices, default=Style.FRIENDLY)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    # Encrypted content.
    to = EncryptedTextField(default="")
    cc = EncryptedTextField(default="")
    # Nullable: adding an encrypted column to existing rows cannot write a default (it has no key). None = none.
    bcc = EncryptedTextField(null=True, blank=True)
    subject = EncryptedTextField(default="")
    body = EncryptedTextField(default="", compress=True)
    sent_raw = EncryptedBinaryField(null=True, compress=True)
    # Plain metadata.
    in_reply_to = models.CharField(max_length=995, blank=True)
    references = ArrayField(models.CharField(max_length=995), default=list, blank=True)
    rfc_message_id = models.CharField("Message-ID", max_length=995, blank=True)
    server_copy = models.BooleanField(default=False, help_text="A copy was queued for the server's Drafts folder.")
    generated_by = models.CharField(max_length=160, blank=True, help_text="'template' or the LLM that wrote it.")
    fallback_reason = models.CharField(max_length=300, blank=True, help_text="Why the LLM was not used.")
    error = models.CharField(max_length=300, blank=True)
    send_started_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [models.Index(fields=["owner", "-updated_at"], name="draft_owner_updated")]

    def __str__(self) -> str:
        return f"draft {self.id} ({self.status})"

    @property
    def editable(self) -> bool:
        return self.status in (self.Status.DRAFT, self.Status.FAILED)
