"""Rules pages: list, editor, templates, dry-run, run on existing mail, execution log."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from core import jobs
from core.models import Job
from mail.models import Folder, MailAccount
from tags.models import Tag

from . import editing, service, spec, tasks, templates
from .forms import ALL_OPS, OP_LABELS, RuleEditor, read_editor, value_choices
from .models import Rule, RuleLog


def _rule(request: HttpRequest, rule_id: int) -> Rule:
    return get_object_or_404(Rule.objects.filter(owner=request.user), pk=rule_id)


def _names(owner) -> dict:
    return {
        "tag_names": dict(Tag.objects.filter(owner=owner).values_list("pk", "name")),
        "folder_names": {f.pk: f.display_name for f in Folder.objects.filter(account__owner=owner)},
        "account_names": {str(k): v for k, v in MailAccount.objects.filter(owner=owner).values_list("pk", "name")},
    }


def rule_list(request: HttpRequest) -> HttpResponse:
    rules = list(Rule.objects.filter(owner=request.user))
    names = _names(request.user)
    rows = [(rule, spec.describe_rule(rule.definition, **names)) for rule in rules]
    context = {"rows": rows, "templates": templates.TEMPLATES.values(), "tags": Tag.objects.filter(owner=request.user)}
    return render(request, "rules/rule_list.html", context)


def _editor_context(request: HttpRequest, editor: RuleEditor, rule: Rule | None) -> dict:
    return {
        "editor": editor,
        "rule": rule,
        "fields": spec.FIELD_CHOICES,
        "ops": [(op, OP_LABELS[op]) for op in ALL_OPS],
        "action_types": spec.ACTION_CHOICES,
        "match_choices": spec.MATCH_CHOICES,
        "value_choices": value_choices(request.user),
        "pop3_accounts": list(
            MailAccount.objects.filter(owner=request.user, protocol=MailAccount.Protocol.POP3).values_list(
                "name", flat=True
            )
        ),
        "imap_only_reason": MailAccount(protocol=MailAccount.Protocol.POP3).imap_only_reason,
    }


@require_http_methods(["GET", "POST"])
def rule_edit(request: HttpRequest, rule_id: int | None = None) -> HttpResponse:
    rule = _rule(request, rule_id) if rule_id else None
    editor = RuleEditor.from_rule(rule) if rule else RuleEditor()
    if request.method == "POST":
        editor = read_editor(request.POST)
        if not editor.errors:
            rule = editing.save(
                request.user.pk, rule, name=editor.name, enabled=editor.enabled, document=editor.document()
            )
            messages.success(
                request, _("Rule “%(name)s” saved. Test it on your existing mail below.") % {"name": rule.name}
            )
            return redirect("rules:dry-run", rule_id=rule.pk)
    return render(request, "rules/rule_form.html", _editor_context(request, editor, rule))


@require_POST
def rule_from_template(request: HttpRequest) -> HttpResponse:
    outcome = editing.add_from_template(request.user.pk, request.POST.get("template", ""), request.POST.get("tag"))
    if outcome.rule is None:
        messages.error(request, outcome.problem)
        return redirect("rules:list")
    messages.success(request, _("Template added, switched off: test it, adjust it, then enable it."))
    return redirect("rules:edit", rule_id=outcome.rule.pk)


@require_http_methods(["GET", "POST"])
def rule_delete(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = _rule(request, rule_id)
    if request.method == "POST":
        editing.delete(rule)
        messages.success(request, _("Rule “%(name)s” deleted. Changes it made stay as they are.") % {"name": rule.name})
        return redirect("rules:list")
    return render(request, "rules/rule_confirm_delete.html", {"rule": rule})


@require_POST
def rule_move(request: HttpRequest, rule_id: int) -> HttpResponse:
    """Move a rule one place up or down (rules/editing.py renumbers all of the user's rules)."""
    rule = _rule(request, rule_id)
    editing.move(rule, "up" if request.POST.get("direction") == "up" else "down")
    return redirect("rules:list")


@require_POST
def rule_toggle(request: HttpRequest, rule_id: int) -> HttpResponse:
    editing.toggle(_rule(request, rule_id))
    return redirect("rules:list")


def rule_dry_run(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = _rule(request, rule_id)
    names = _names(request.user)
    try:
        result, matched = service.dry_run(rule)
        error = ""
    except ValueError as exc:
        result, matched, error = None, [], str(exc)
    context = {
        "rule": rule,
        "result": result,
        "matched": matched,
        "error": error,
        "description": spec.describe_rule(rule.definition, **names),
        "actions": [
            spec.describe_action(a, names["tag_names"], names["folder_names"]) for a in rule.definition["actions"]
        ],
    }
    return render(request, "rules/dry_run.html", context)


@require_POST
def rule_run(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = _rule(request, rule_id)
    try:
        job = jobs.start(request.user, Job.Kind.RULES, {"rule_ids": [rule.pk]}, tasks.run_rules_job)
    except jobs.JobAlreadyActive as exc:  # one run at a time: two would act on the same messages at once
        messages.info(request, _("Rules are already running on your mail: showing that run."))
        job = exc.job
    return redirect("jobs:detail", job_id=job.pk)


def rule_log(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = _rule(request, rule_id)
    logs = RuleLog.objects.filter(rule=rule).select_related("message")
    page = Paginator(logs, 50).get_page(request.GET.get("page"))
    return render(request, "rules/rule_log.html", {"rule": rule, "page": page})
