"""Admin for users, their key wraps and audit logs: metadata only, never a key, wrap or code."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from .models import AuditEvent, DataKeyWrap, RecoveryDevice, User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "email", "is_active", "is_staff", "strict_mode", "locked_until", "last_login")
    list_filter = (*DjangoUserAdmin.list_filter, "strict_mode")
    fieldsets = (
        *DjangoUserAdmin.fieldsets,
        ("Security", {"fields": ("strict_mode", "failed_login_count", "locked_until")}),
    )
    readonly_fields = ("strict_mode", "last_login", "date_joined")
    actions = ["unlock"]

    @admin.action(description="Unlock selected accounts")
    def unlock(self, request, queryset):
        updated = queryset.update(failed_login_count=0, locked_until=None)
        self.message_user(request, f"{updated} account(s) unlocked.")


@admin.register(DataKeyWrap)
class DataKeyWrapAdmin(admin.ModelAdmin):
    list_display = ("user", "kind", "key_id", "created_at", "used_at")
    list_filter = ("kind",)
    search_fields = ("user__username",)
    fields = ("user", "kind", "key_id", "created_at", "used_at")
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(RecoveryDevice)
class RecoveryDeviceAdmin(admin.ModelAdmin):
    list_display = ("user", "name", "confirmed", "codes_left", "last_used_at")
    fields = ("user", "name", "confirmed", "throttling_failure_count", "last_used_at")
    readonly_fields = fields

    @admin.display(description="unused codes")
    def codes_left(self, obj: RecoveryDevice) -> int:
        return obj.remaining()

    def has_add_permission(self, request):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The users' audit logs, read-only: the operator sees what each user sees, and cannot edit it."""

    list_display = ("at", "user", "kind", "ip", "short_user_agent")
    list_filter = ("kind", "at")
    search_fields = ("user__username",)
    date_hierarchy = "at"
    list_select_related = ("user",)
    fields = ("at", "user", "kind", "ip", "user_agent", "detail")
    readonly_fields = fields

    @admin.display(description="user agent")
    def short_user_agent(self, obj: AuditEvent) -> str:
        return obj.user_agent[:60]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
