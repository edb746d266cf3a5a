"""Forms for mail accounts and message actions."""

from __future__ import annotations

from django import forms
from django.urls import reverse_lazy
from django.utils.translation import gettext_lazy as _

from .models import Draft, MailAccount, ReplySettings, a_year_ago

#: The standard ports of the incoming server, per protocol: implicit TLS, and STARTTLS/STLS or plain.
DEFAULT_PORTS = {"imap": {"ssl": 993, "other": 143}, "pop3": {"ssl": 995, "other": 110}}


def default_port(protocol: str, security: str) -> int:
    ports = DEFAULT_PORTS.get(protocol, DEFAULT_PORTS["imap"])
    return ports["ssl"] if security == "ssl" else ports["other"]


class MailAccountForm(forms.ModelForm):
    """Add or edit an account. A blank password on edit keeps the stored one.

    The incoming server speaks IMAP or POP3 (`protocol`); an empty port, or the other protocol's
    standard port left in the field, becomes the chosen protocol's (993/143 or 995/110).
    """

    imap_password_input = forms.CharField(
        label=_("Password"),
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}, render_value=False),
    )
    smtp_password_input = forms.CharField(
        label=_("SMTP password"),
        required=False,
        strip=False,
        help_text=_("Leave empty to use the incoming server's password."),
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}, render_value=False),
    )

    class Meta:
        model = MailAccount
        fields = [
            "name",
            "email_address",
            "protocol",
            "imap_host",
            "imap_port",
            "imap_security",
            "imap_username",
            "smtp_host",
            "smtp_port",
            "smtp_security",
            "smtp_username",
            "sync_interval_minutes",
            "pop3_delete_after_days",
            "first_sync",
            "first_sync_since",
            "first_sync_newest",
            "backfill_older",
            "analyse_on_fetch",
            "urgency_booster",
            "use_language_model",
            "enabled",
        ]
        widgets = {
            "first_sync": forms.RadioSelect,
            "first_sync_since": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            "first_sync_newest": forms.NumberInput(attrs={"min": 1, "max": 100000}),
            "sync_interval_minutes": forms.NumberInput(attrs={"min": 1, "max": 1440}),
            "pop3_delete_after_days": forms.NumberInput(attrs={"min": 1, "max": 3650}),
        }
        labels = {
            "name": _("Name"),
            "email_address": _("Email address"),
            "imap_host": _("Incoming mail server"),
            "imap_port": _("Port"),
            "imap_security": _("Security"),
            "imap_username": _("User name"),
            "sync_interval_minutes": _("Sync interval minutes"),
            "enabled": _("Enabled"),
        }

    field_order = [
        "name",
        "email_address",
        "protocol",
        "imap_host",
        "imap_port",
        "imap_security",
        "imap_username",
        "imap_password_input",
        "smtp_host",
        "smtp_port",
        "smtp_security",
        "smtp_username",
        "smtp_password_input",
        "sync_interval_minutes",
        "pop3_delete_after_days",
        "first_sync",
        "first_sync_since",
        "first_sync_newest",
        "backfill_older",
        "analyse_on_fetch",
        "urgency_booster",
        "use_language_model",
        "enabled",
    ]

    def __init__(self, *args, owner, **kwargs):
        self.owner = owner
        super().__init__(*args, **kwargs)
        self.fields["imap_port"].required = False
        self.fields["protocol"].required = False  # not posted: IMAP, as before POP3 existed
        self.fields["imap_port"].help_text = _("Empty: the standard port (IMAP 993/143, POP3 995/110).")
        # Not posted by older forms (and tests): the model's defaults stand.
        for name in ("first_sync", "first_sync_newest"):
            self.fields[name].required = False
        self.fields["first_sync_since"].help_text = _(
            "With “Mail since a date”: mail that arrived on or after this day is fetched first. "
            "Empty: the last 12 months."
        )
        self.fields["first_sync"].help_text = _(
            "IMAP only (POP3 fetches the whole inbox). Applies to each folder's first sync, so the newest "
            "mail is there within a minute even for a mailbox of many years; mail arriving later is always "
            "fetched. Changing it later affects only folders not synced yet."
        )
        if self.instance.uses_oauth:  # signs in with its provider's tokens: no passwords, IMAP only
            for name in ("imap_password_input", "smtp_password_input", "protocol"):
                del self.fields[name]
        elif self.instance._state.adding:
            self.fields["imap_password_input"].required = True
        else:
            self.fields["imap_password_input"].help_text = _("Leave empty to keep the stored password.")

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        clash = MailAccount.objects.filter(owner=self.owner, name__iexact=name).exclude(pk=self.instance.pk)
        if clash.exists():
            raise forms.ValidationError(_("You already have an account with this name."))
        return name

    def clean_sync_interval_minutes(self) -> int:
        minutes = self.cleaned_data["sync_interval_minutes"]
        if not 1 <= minutes <= 1440:
            raise forms.ValidationError(_("Choose between 1 minute and 1 day (1440 minutes)."))
        return minutes

    def clean_protocol(self) -> str:
        return self.cleaned_data.get("protocol") or MailAccount.Protocol.IMAP

    def clean_pop3_delete_after_days(self) -> int | None:
        days = self.cleaned_data.get("pop3_delete_after_days")
        if days is not None and not 1 <= days <= 3650:
            raise forms.ValidationError(_("Choose between 1 day and 10 years (3650 days), or leave it empty."))
        return days

    def clean(self):
        cleaned = super().clean()
        protocol = cleaned.get("protocol") or MailAccount.Protocol.IMAP
        port, security = cleaned.get("imap_port"), cleaned.get("imap_security") or "ssl"
        other = "imap" if protocol == "pop3" else "pop3"
        if port is None or port in DEFAULT_PORTS[other].values():
            port = cleaned["imap_port"] = default_port(protocol, security)
        if port in (993, 995) and security == "plain":
            self.add_error("imap_security", _("Port %(port)s expects SSL/TLS.") % {"port": port})
        if protocol != MailAccount.Protocol.POP3:
            cleaned["pop3_delete_after_days"] = None  # a POP3 setting: an IMAP account never deletes by age
        mode = cleaned.get("first_sync") or MailAccount.FirstSync.SINCE
        cleaned["first_sync"] = mode
        if mode == MailAccount.FirstSync.SINCE and not cleaned.get("first_sync_since"):
            cleaned["first_sync_since"] = a_year_ago()  # empty: the last 12 months
        newest = cleaned.get("first_sync_newest")
        if mode == MailAccount.FirstSync.NEWEST and not (newest and 1 <= newest <= 100_000):
            self.add_error("first_sync_newest", _("Choose between 1 and 100,000 messages per folder."))
        elif newest is None:
            cleaned["first_sync_newest"] = self.instance.first_sync_newest
        return cleaned

    def save(self, commit: bool = True) -> MailAccount:
        account = super().save(commit=False)
        account.owner = self.owner
        if self.cleaned_data.get("imap_password_input"):
            account.imap_password = self.cleaned_data["imap_password_input"]
        if self.cleaned_data.get("smtp_password_input"):
            account.smtp_password = self.cleaned_data["smtp_password_input"]
        if commit:
            account.save()
        return account


class FolderSelectionForm(forms.Form):
    folders = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple, label=_("Folders to sync"))

    def __init__(self, *args, choices, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["folders"].choices = choices


class MessageActionForm(forms.Form):
    ACTIONS = [
        ("mark_read", _("Mark read")),
        ("mark_unread", _("Mark unread")),
        ("flag", _("Flag")),
        ("unflag", _("Remove flag")),
        ("move", _("Move")),
        ("delete", _("Delete")),
        ("archive", _("Archive")),
    ]
    action = forms.ChoiceField(choices=ACTIONS)
    target_folder = forms.IntegerField(required=False)


def _recipients_widget(name: str) -> forms.TextInput:
    """A recipients field whose <datalist> htmx fills with the user's correspondents as they type."""
    return forms.TextInput(
        attrs={
            "autocomplete": "off",
            "list": f"{name}-suggestions",
            "hx-get": reverse_lazy("mail:address-completions"),
            "hx-trigger": "input changed delay:250ms",
            "hx-target": f"#{name}-suggestions",
            "hx-swap": "innerHTML",
            "hx-sync": "this:replace",
        }
    )


class DraftForm(forms.Form):
    """A new message, reply or forward as the user edits it; recipients are checked, saved as typed (normalised)."""

    to = forms.CharField(label=_("To"), required=False, max_length=10_000, widget=_recipients_widget("to"))
    cc = forms.CharField(label=_("Cc"), required=False, max_length=10_000, widget=_recipients_widget("cc"))
    bcc = forms.CharField(
        label=_("Bcc"),
        required=False,
        max_length=10_000,
        widget=_recipients_widget("bcc"),
        help_text=_("Receive the message without the other recipients seeing them."),
    )
    subject = forms.CharField(label=_("Subject"), required=False, max_length=998)
    body = forms.CharField(label=_("Message"), required=False, strip=False, widget=forms.Textarea(attrs={"rows": 18}))
    style = forms.ChoiceField(label=_("Style"), required=False, choices=Draft.Style.choices)

    def _addresses(self, name: str) -> str:
        from .replies import AddressListError, format_list, parse_address_list

        try:
            return format_list(parse_address_list(self.cleaned_data[name]))
        except AddressListError as exc:
            raise forms.ValidationError(_("%(error)s Separate addresses with commas.") % {"error": exc}) from None

    def clean_to(self) -> str:
        return self._addresses("to")

    def clean_cc(self) -> str:
        return self._addresses("cc")

    def clean_bcc(self) -> str:
        return self._addresses("bcc")

    def clean_subject(self) -> str:
        return " ".join(self.cleaned_data["subject"].split())  # no line breaks in a header

    def require_recipient(self) -> bool:
        if self.is_valid() and not any(self.cleaned_data[f] for f in ("to", "cc", "bcc")):
            self.add_error("to", _("Add at least one recipient."))
        return self.is_valid()


class ReplySettingsForm(forms.Form):
    """Reply style (one per user) and a signature per account, on one page."""

    greeting = forms.CharField(
        label=_("Greeting"),
        required=False,
        max_length=200,
        help_text=_("e.g. 'Dear {name},' — {name} becomes the recipient's name. Empty: each style's own."),
    )
    closing = forms.CharField(
        label=_("Closing"),
        required=False,
        max_length=200,
        help_text=_("e.g. 'Kind regards,'. Empty: each style's own."),
    )
    address_form = forms.ChoiceField(label=_("Form of address"), choices=ReplySettings.AddressForm.choices)
    instructions = forms.CharField(
        label=_("Instructions for the language model"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Only used when a language model writes your drafts, e.g. 'Never promise dates.'"),
    )

    def __init__(self, *args, accounts, **kwargs):
        super().__init__(*args, **kwargs)
        self.accounts = list(accounts)
        for account in self.accounts:
            self.fields[self.signature_field(account)] = forms.CharField(
                label=_("Signature for %(account)s") % {"account": account.name},
                required=False,
                max_length=2000,
                strip=False,
                widget=forms.Textarea(attrs={"rows": 4}),
            )

    @staticmethod
    def signature_field(account) -> str:
        return f"signature_{account.pk.hex}"
