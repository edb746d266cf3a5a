from django.contrib import admin

from .models import DigestSettings


@admin.register(DigestSettings)
class DigestSettingsAdmin(admin.ModelAdmin):
    list_display = ("owner", "enabled", "hour", "time_zone", "last_sent_at")
    list_filter = ("enabled",)
    search_fields = ("owner__username",)
    raw_id_fields = ("owner", "account", "periodic_task")
    readonly_fields = ("last_sent_at", "last_error")
