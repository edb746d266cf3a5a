"""Admin for mail: metadata only. Encrypted fields are not editable and never listed."""

from django.contrib import admin

from core import stored_text

from .models import Draft, Folder, MailAccount, Message, PendingAction, SyncRun


@admin.register(MailAccount)
class MailAccountAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "owner",
        "protocol",
        "auth_method",
        "imap_host",
        "enabled",
        "status",
        stored_text.column("status_message", "status message"),
        "sync_interval_minutes",
        "last_sync_at",
    )
    list_filter = ("protocol", "auth_method", "status", "enabled", "imap_security")
    search_fields = ("name", "owner__username", "imap_host")
    raw_id_fields = ("owner", "periodic_task")
    readonly_fields = (
        "status",
        "status_message",
        "last_sync_at",
        "periodic_task",
        "created_at",
        "auth_method",
        "oauth_provider",
        "oauth_expires_at",
    )


@admin.register(Folder)
class FolderAdmin(admin.ModelAdmin):
    list_display = ("name", "account", "special_use", "sync_enabled", "uidvalidity", "uidnext", "last_synced_at")
    list_filter = ("special_use", "sync_enabled")
    search_fields = ("name", "account__name")
    raw_id_fields = ("account",)


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    """Operators may see that a message exists and its sync state, never what it says."""

    list_display = ("id", "owner", "account", "folder", "uid", "size", "sort_date", "seen", "expunged_at")
    list_filter = ("seen", "flagged", "has_attachments")
    fields = (
        "owner", "account", "folder", "uidvalidity", "uid", "modseq", "size", "sort_date", "seen",
        "flagged", "answered", "has_attachments", "parse_warnings", "expunged_at",
    )  # fmt: skip
    readonly_fields = fields
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(SyncRun)
class SyncRunAdmin(admin.ModelAdmin):
    list_display = (
        "account", "trigger", "status", "queued_at", "messages_new", "messages_updated", "error_kind",
        stored_text.column("error", "error"),
    )  # fmt: skip
    list_filter = ("status", "trigger", "error_kind")
    raw_id_fields = ("account",)
    readonly_fields = [f.name for f in SyncRun._meta.fields]


@admin.register(PendingAction)
class PendingActionAdmin(admin.ModelAdmin):
    list_display = (
        "kind", "account", "source_folder", "target_folder", "created_at", "done_at", "attempts",
        stored_text.column("error", "error"),
    )  # fmt: skip
    list_filter = ("kind",)
    readonly_fields = [f.name for f in PendingAction._meta.fields]


@admin.register(Draft)
class DraftAdmin(admin.ModelAdmin):
    """Reply drafts: state and errors for support, never recipients, subject or text (all encrypted)."""

    list_display = ("id", "owner", "account", "kind", "status", "updated_at", "sent_at", "error")
    list_filter = ("status", "kind")
    fields = (
        "owner", "account", "original", "kind", "style", "status", "generated_by", "fallback_reason", "error",
        "rfc_message_id", "send_started_at", "sent_at", "created_at", "updated_at",
    )  # fmt: skip
    readonly_fields = fields
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
