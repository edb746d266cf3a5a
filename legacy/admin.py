"""Admin views of the legacy import's state, for operators: what waits for whose first login.

Read-only, and without the legacy salt, wrapped key or ciphertext (never key material in the admin).
"""

from django.contrib import admin

from .models import LegacyImportMap, LegacyUserKey


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(LegacyUserKey)
class LegacyUserKeyAdmin(_ReadOnly):
    list_display = ("user", "legacy_id", "state", "failure", "imported_at", "converted_at")
    list_filter = ("state",)
    fields = ("user", "legacy_id", "state", "failure", "imported_at", "converted_at")
    search_fields = ("user__username",)


@admin.register(LegacyImportMap)
class LegacyImportMapAdmin(_ReadOnly):
    list_display = ("table", "legacy_id", "kind", "target_pk", "owner", "imported_at")
    list_filter = ("table", "kind")
    fields = ("table", "legacy_id", "kind", "target_pk", "owner", "note", "imported_at")
    search_fields = ("=legacy_id", "target_pk")
