from __future__ import annotations

from zoneinfo import available_timezones

from django import forms
from django.utils.translation import gettext_lazy as _

from mail.models import MailAccount

from .models import DigestSettings

_ZONES = sorted(available_timezones() - {"localtime", "Factory"})


class DigestSettingsForm(forms.ModelForm):
    hour = forms.TypedChoiceField(coerce=int, choices=[(h, f"{h:02d}:00") for h in range(24)], label=_("Time"))
    time_zone = forms.ChoiceField(choices=[(z, z) for z in _ZONES], label=_("Time zone"))

    class Meta:
        model = DigestSettings
        fields = ["enabled", "hour", "time_zone", "account", "include_summaries"]
        labels = {
            "enabled": _("Send me a daily digest"),
            "account": _("Send from and to"),
            "include_summaries": _("Include the one-line summaries (otherwise only subjects and senders)"),
        }
        help_texts = {
            "account": _("Sends the digest to its own address through its SMTP server."),
            "include_summaries": _("Also the analysis' one-line summaries (mail content) in the digest."),
        }

    def __init__(self, *args, owner, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Only the user's own accounts that can send: another user's account id is not a choice.
        self.fields["account"].queryset = MailAccount.objects.filter(owner=owner).exclude(smtp_host="")
        self.fields["account"].empty_label = _("my first account with an SMTP server")
        self.fields["account"].label_from_instance = lambda a: f"{a.name} <{a.email_address}>"
