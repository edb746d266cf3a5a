"""The digest settings page and its "send a test digest now" button."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from . import schedules, sending
from .forms import DigestSettingsForm
from .models import DigestSettings


def _settings_of(request: HttpRequest) -> DigestSettings:
    return DigestSettings.objects.filter(owner=request.user).first() or DigestSettings(
        owner=request.user, time_zone=settings.TIME_ZONE
    )


def digest_settings(request: HttpRequest) -> HttpResponse:
    prefs = _settings_of(request)
    form = DigestSettingsForm(request.POST or None, instance=prefs, owner=request.user)
    if request.method == "POST" and form.is_valid():
        prefs = form.save()
        schedules.ensure_schedule(prefs)
        if prefs.enabled:
            messages.success(
                request,
                _("The digest comes every day at %(hour)s (%(zone)s).")
                % {"hour": f"{prefs.hour:02d}:00", "zone": prefs.time_zone},
            )
        else:
            messages.success(request, _("The daily digest is off."))
        return redirect("digest:settings")
    return render(request, "digest/settings.html", {"form": form, "prefs": prefs})


@require_POST
def send_test(request: HttpRequest) -> HttpResponse:
    prefs = _settings_of(request)
    if prefs.pk is None:
        prefs.save()
    outcome = sending.send(request.user.pk, test=True)
    if outcome == sending.Outcome.SENT:
        messages.success(request, _("A test digest is on its way to your inbox."))
    else:
        prefs.refresh_from_db()
        messages.error(request, prefs.last_error or _("No digest was sent (%(outcome)s).") % {"outcome": outcome})
    return redirect("digest:settings")
