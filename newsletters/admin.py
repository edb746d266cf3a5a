from django.contrib import admin

from .models import Unsubscription


@admin.register(Unsubscription)
class UnsubscriptionAdmin(admin.ModelAdmin):
    list_display = ("created_at", "owner", "method", "state")  # the sender says what the user reads: detail only
    list_filter = ("method", "state")
    search_fields = ("owner__username",)
    raw_id_fields = ("owner", "account", "archive_rule")
    readonly_fields = ("owner", "account", "sender", "method", "state", "detail", "archive_rule", "created_at")

    def has_add_permission(self, request) -> bool:
        return False
