"""The job page, one for every kind: what the Job row holds, for its owner only (others get a 404).

core imports no other app, so the way back to where a job was started is a URL name per kind
(`BACK_LINKS`): names are resolved when the page renders, nothing is imported from above.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from .models import Job

#: Kind -> (link text, URL name) of the page the job was started from; every kind has one (tested).
BACK_LINKS: dict[str, tuple[str, str]] = {
    Job.Kind.REANALYSE: (_("Analysis settings"), "mail:analysis-settings"),
    Job.Kind.RULES: (_("Rules"), "rules:list"),
}


def _own_job(request: HttpRequest, job_id: int) -> Job:
    return get_object_or_404(Job.objects.filter(owner=request.user), pk=job_id)


def detail(request: HttpRequest, job_id: int) -> HttpResponse:
    job = _own_job(request, job_id)
    back_label, back_name = BACK_LINKS.get(job.kind, (_("Home"), "home"))
    return render(request, "core/job.html", {"job": job, "back_label": back_label, "back_url": reverse(back_name)})


def progress(request: HttpRequest, job_id: int) -> HttpResponse:
    """The fragment htmx polls while the job is queued or running (it stops polling once finished)."""
    return render(request, "core/_job_progress.html", {"job": _own_job(request, job_id)})
