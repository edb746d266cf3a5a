"""Admin for users, their key wraps, audit logs and invitations: metadata only, never a key, wrap,
code or invitation token (a new invitation's link is shown once, on the page after "Save")."""

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import ValidationError
from django.template.response import TemplateResponse

from . import invitations
from .models import AuditEvent, DataKeyWrap, Invitation, RecoveryDevice, User


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


class InvitationAddForm(forms.ModelForm):
    days = forms.IntegerField(
        min_value=1,
        help_text="How long the invitation stays valid.",
        initial=lambda: settings.MAILHELPER_INVITATION_DAYS,
    )
    with_link = forms.BooleanField(
        label="Make a link",
        required=False,
        initial=True,
        help_text="A single-use link, shown once after saving. Without it, registering with this address is allowed.",
    )

    class Meta:
        model = Invitation
        fields = ("email",)

    def clean_email(self) -> str:
        try:
            return invitations.normalise_email(self.cleaned_data["email"])
        except ValidationError as exc:
            raise forms.ValidationError(exc.messages) from None


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    """Invitations to sign up. Added through accounts/invitations.py; the token's hash is never shown."""

    list_display = ("email", "kind", "created_at", "expires_at", "used_at", "used_by", "invited_by")
    list_filter = ("used_at", "expires_at")
    search_fields = ("email",)
    list_select_related = ("used_by", "invited_by")
    fields = ("email", "kind", "invited_by", "created_at", "expires_at", "used_at", "used_by")
    readonly_fields = fields
    actions = ["withdraw"]

    @admin.display(description="kind")
    def kind(self, obj: Invitation) -> str:
        return "link" if obj.is_link else "address only"

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs = {"form": InvitationAddForm, **kwargs}
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        return ("email", "days", "with_link") if obj is None else self.fields

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def has_change_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        # The service fills in the expiry and the token hash; the raw token lives only until the next page.
        obj.invited_by = request.user
        data = form.cleaned_data
        obj.raw_token = invitations.prepare(obj, days=data["days"], with_link=data["with_link"])
        obj.save()

    def response_add(self, request, obj, post_url_continue=None):
        """Instead of a redirect (and a message kept in the session), one page that shows the link."""
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Invitation created",
            "invitation": obj,
            "link": invitations.link(obj.raw_token) if obj.raw_token else "",
        }
        return TemplateResponse(request, "accounts/admin_invitation_created.html", context)  # never_cache: admin

    @admin.action(description="Withdraw the selected unused invitations")
    def withdraw(self, request, queryset):
        self.message_user(request, f"{invitations.withdraw(queryset)} invitation(s) withdrawn.")
