from django.contrib import admin

from .models import Event


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    """Metadata only: title, place and people are the user's content (encrypted, not shown)."""

    list_display = ("created_at", "owner", "method", "starts_at", "answer", "cancelled", "superseded")
    list_filter = ("method", "answer", "cancelled")
    search_fields = ("owner__username",)
    fields = ("owner", "message", "method", "sequence", "starts_at", "ends_at", "all_day", "time_zone", "answer",
              "answered_at", "answer_error", "cancelled", "superseded", "parse_error", "created_at")  # fmt: skip
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False
