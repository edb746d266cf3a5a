from __future__ import annotations

import re

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import Tag, TagSettings


class TagForm(forms.ModelForm):
    class Meta:
        model = Tag
        fields = ["name", "color", "description"]
        labels = {"name": _("Name"), "color": _("Color"), "description": _("Description")}
        widgets = {"color": forms.TextInput(attrs={"type": "color"})}

    def __init__(self, *args, owner, **kwargs):
        super().__init__(*args, **kwargs)
        self.owner = owner

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        clash = Tag.objects.filter(owner=self.owner, name__iexact=name).exclude(pk=self.instance.pk)
        if clash.exists():
            raise forms.ValidationError(_("You already have a tag with this name."))
        return name

    def clean_color(self) -> str:
        color = self.cleaned_data["color"].strip()
        if not re.fullmatch(r"#[0-9a-fA-F]{6}", color):
            raise forms.ValidationError(_("Use a colour like #3366ff."))
        return color.lower()

    def save(self, commit: bool = True) -> Tag:
        tag = super().save(commit=False)
        tag.owner = self.owner
        if commit:
            tag.save()
        return tag


class TagSettingsForm(forms.ModelForm):
    class Meta:
        model = TagSettings
        fields = ["auto_apply", "auto_apply_threshold", "server_keywords"]
        labels = {
            "auto_apply": _("Apply confident suggestions automatically"),
            "auto_apply_threshold": _("Confidence needed"),
            "server_keywords": _("Show tags and categories in other mail apps (IMAP keywords)"),
        }
        help_texts = {
            "auto_apply": _("Apply confident suggestions without asking."),
            "auto_apply_threshold": _("Score from 0 to 1 at which to apply."),
            "server_keywords": _(
                "Tags and the category are written to your mail server as keywords (see the "
                "list below), and keywords your other apps set come back as tags. Only where the server keeps "
                "keywords. Switching on also writes the tags you have now and reads the keywords your mail has."
            ),
        }

    def clean_auto_apply_threshold(self) -> float:
        value = self.cleaned_data["auto_apply_threshold"]
        if not 0.5 <= value <= 1.0:
            raise forms.ValidationError(_("Choose between 0.5 and 1.0."))
        return value
