"""Admin for analysis: the state of each message's analysis and its post-analysis stages, for operators.

Metadata only: the summary (encrypted) and the reasons are never shown; nothing is editable, because a
correction is the user's and a rerun is `manage.py backfill_analysis` / the stragglers sweep.
"""

from django.contrib import admin

from .models import MessageAnalysis


@admin.register(MessageAnalysis)
class MessageAnalysisAdmin(admin.ModelAdmin):
    list_display = (
        "message_id",
        "owner",
        "state",
        "attempts",
        "method",
        "stage_attempts",
        "stage_error",
        "analysed_at",
    )
    list_filter = ("state", "method")
    search_fields = ("=message__id", "owner__username")
    fields = (
        "owner", "message", "state", "attempts", "failure_reason", "fallback_reason", "method",
        "stages_pending", "stage_attempts", "stage_error", "queued_at", "analysed_at",
    )  # fmt: skip
    readonly_fields = fields
    show_full_result_count = False
    list_select_related = ("owner",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
