"""Forms of the account pages. Validation only: the work happens in keyring/lockout services."""

from __future__ import annotations

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import UserCreationForm
from django.utils.translation import gettext_lazy as _

from . import invitations
from .models import Invitation, User


class RegistrationForm(UserCreationForm):
    """Sign-up; in invite mode with the invitation it redeems (`invitation`, its address fixed) or,
    for an address-only invitation, `invited_address=True` (the address must be one invited)."""

    email = forms.EmailField(label=_("Email"), required=True)

    class Meta:
        model = User
        fields = ("username", "email")

    def __init__(self, *args, invitation: Invitation | None = None, invited_address: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.invitation = invitation
        self.invited_address = invited_address
        if invitation is not None:
            # A disabled field takes its initial value whatever the POST says.
            self.fields["email"].initial = invitation.email
            self.fields["email"].disabled = True
            self.fields["email"].help_text = _("The address you were invited with.")
        elif invited_address:
            self.fields["email"].help_text = _("The address the administrator invited.")

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError(_("An account with this email address already exists."))
        if self.invited_address:
            self.invitation = invitations.for_address(email)
            if self.invitation is None:
                raise forms.ValidationError(
                    _(
                        "This address has not been invited (or its invitation has expired). "
                        "Sign-up here is by invitation: ask the administrator."
                    )
                )
        return email


class LoginForm(forms.Form):
    username = forms.CharField(
        label=_("Username"), max_length=150, widget=forms.TextInput(attrs={"autocomplete": "username"})
    )
    password = forms.CharField(
        label=_("Password"), strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )


class TokenForm(forms.Form):
    token = forms.CharField(
        label=_("Code from your authenticator app"),
        max_length=8,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
                "pattern": "[0-9]*",
                "autofocus": True,
            }
        ),
    )

    def clean_token(self) -> str:
        return self.cleaned_data["token"].replace(" ", "")


class RecoveryCodeForm(forms.Form):
    code = forms.CharField(
        label=_("Recovery code"), max_length=32, widget=forms.TextInput(attrs={"autocomplete": "off"})
    )


class _NewPasswordMixin(forms.Form):
    new_password1 = forms.CharField(
        label=_("New password"), strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )
    new_password2 = forms.CharField(
        label=_("New password again"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def validate_new_password(self, user: User | None) -> None:
        p1, p2 = self.cleaned_data.get("new_password1"), self.cleaned_data.get("new_password2")
        if p1 and p2 and p1 != p2:
            self.add_error("new_password2", _("The two passwords do not match."))
            return
        if p1:
            try:
                password_validation.validate_password(p1, user)
            except forms.ValidationError as exc:
                self.add_error("new_password1", exc)


class PasswordChangeForm(_NewPasswordMixin):
    old_password = forms.CharField(
        label=_("Current password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    field_order = ["old_password", "new_password1", "new_password2"]

    def __init__(self, user: User, *args, **kwargs):
        self.user = user
        super().__init__(*args, **kwargs)

    def clean_old_password(self) -> str:
        password = self.cleaned_data["old_password"]
        if not self.user.check_password(password):
            raise forms.ValidationError(_("Your current password is not correct."))
        return password

    def clean(self):
        cleaned = super().clean()
        self.validate_new_password(self.user)
        return cleaned


class RecoverPasswordForm(_NewPasswordMixin):
    username = forms.CharField(label=_("Username"), max_length=150)
    code = forms.CharField(label=_("Recovery code"), max_length=32)
    field_order = ["username", "code", "new_password1", "new_password2"]

    def clean(self):
        cleaned = super().clean()
        user = User.objects.filter(username=cleaned.get("username", "")).first()
        self.validate_new_password(user)
        return cleaned


class ReauthForm(forms.Form):
    """Asks for the password again before a sensitive change."""

    password = forms.CharField(
        label=_("Your password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, user: User, *args, **kwargs):
        self.user = user
        super().__init__(*args, **kwargs)

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise forms.ValidationError(_("Your password is not correct."))
        return password


class StrictModeForm(ReauthForm):
    strict_mode = forms.BooleanField(
        required=False,
        label=_("Strict mode: keep no server copy of my data key (mail syncs only while I am logged in)"),
    )


class PreferencesForm(forms.Form):
    """Language and time zone (accounts/preferences.py); empty keeps the browser's / the server's."""

    language = forms.ChoiceField(label=_("Language"), required=False)
    time_zone = forms.ChoiceField(label=_("Time zone"), required=False)

    def __init__(self, *args, **kwargs):
        from django.conf import settings

        from .preferences import time_zones

        super().__init__(*args, **kwargs)
        self.fields["language"].choices = [("", _("As my browser asks"))] + list(settings.LANGUAGES)
        zones = [(name, name) for name in time_zones()]
        self.fields["time_zone"].choices = [("", _("The server's (%(zone)s)") % {"zone": settings.TIME_ZONE})] + zones
