"""Forms of the analysis pages: corrections, the language-model provider, trusted senders."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from mail.models import MailAccount

from .models import CATEGORY_CHOICES, ProviderSettings, TrustedSender


class CorrectionForm(forms.Form):
    """The user's correction of an analysis; empty fields leave that part as it is."""

    LEVELS = [("", "—"), ("1", _("low")), ("2", _("medium")), ("3", _("high"))]
    urgency = forms.TypedChoiceField(choices=LEVELS, required=False, coerce=int, empty_value=None)
    importance = forms.TypedChoiceField(choices=LEVELS, required=False, coerce=int, empty_value=None)
    category = forms.ChoiceField(choices=[("", "—"), *CATEGORY_CHOICES], required=False)
    spam = forms.TypedChoiceField(
        choices=[("", "—"), ("yes", _("spam")), ("no", _("not spam"))],
        required=False,
        coerce=lambda v: v == "yes",
        empty_value=None,
    )


class ProviderSettingsForm(forms.ModelForm):
    base_url = forms.URLField(
        label=_("Base URL"),
        max_length=300,
        assume_scheme="https",
        help_text=_(
            "e.g. http://127.0.0.1:11434 for Ollama. A model on this server or your network must be allowed by "
            "the operator (MAILHELPER_OUTBOUND_ALLOW, MAILHELPER_ALLOW_PRIVATE_HOSTS)."
        ),
    )
    api_key_input = forms.CharField(
        label=_("API key"),
        required=False,
        strip=True,
        help_text=_("Stored encrypted. Leave empty to keep the stored key (Ollama needs none)."),
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
    )

    class Meta:
        model = ProviderSettings
        fields = ["enabled", "kind", "base_url", "model", "timeout_seconds", "use_for_replies"]
        labels = {
            "enabled": _("Enabled"),
            "kind": _("Kind"),
            "model": _("Model"),
            "timeout_seconds": _("Timeout seconds"),
            "use_for_replies": _("Use for replies"),
        }

    def clean_timeout_seconds(self) -> int:
        value = self.cleaned_data["timeout_seconds"]
        if not 1 <= value <= 300:
            raise forms.ValidationError(_("Choose between 1 and 300 seconds."))
        return value

    def save(self, commit: bool = True) -> ProviderSettings:
        row = super().save(commit=False)
        if self.cleaned_data.get("api_key_input"):
            row.api_key = self.cleaned_data["api_key_input"]
        if commit:
            row.save()
        return row


class TrustedSenderForm(forms.ModelForm):
    class Meta:
        model = TrustedSender
        fields = ["pattern", "account", "note"]
        labels = {"pattern": _("Pattern"), "account": _("Account"), "note": _("Note")}
        help_texts = {
            "pattern": _("An address (boss@example.com), a domain (@example.com) or a pattern (*@example.com)."),
            "account": _("Only for this account."),
        }

    def __init__(self, *args, owner, **kwargs):
        super().__init__(*args, **kwargs)
        self.owner = owner
        self.fields["account"].queryset = MailAccount.objects.filter(owner=owner)
        self.fields["account"].required = False
        self.fields["account"].empty_label = _("All accounts")

    def clean_pattern(self) -> str:
        pattern = self.cleaned_data["pattern"].strip().lower()
        if not pattern or " " in pattern:
            raise forms.ValidationError(_("Enter one address, domain or pattern without spaces."))
        return pattern

    def clean(self):
        cleaned = super().clean()
        pattern, account = cleaned.get("pattern"), cleaned.get("account")
        if pattern and TrustedSender.objects.filter(owner=self.owner, account=account, pattern=pattern).exists():
            self.add_error("pattern", _("This pattern is already in your list."))
        return cleaned

    def save(self, commit: bool = True) -> TrustedSender:
        row = super().save(commit=False)
        row.owner = self.owner
        if commit:
            row.save()
        return row
