"""Every URL pattern, attacked: a walk of the resolver that keeps up with the code.

The walk (``routes()``) lists every ``path()`` the project serves, namespaced includes too, except
the static files and Django's admin (the admin gets one check of its own: a user who is not staff
does not get in). For each pattern:

* as a fully logged-in intruder, GET and POST (with a valid CSRF token) with the ids of another
  user's objects in every converter: the answer is 404, 403 or 405, no page shows any of the other
  user's content, and none of the other user's rows changes. Patterns without object ids are
  fetched too (their POSTs carry the other user's ids in the form fields the views read).
* the same ids as the owner answer (200, or 405 for a POST-only view), and together the owner's
  pages show every secret marker: so the intruder's 404s are refusals, not wrong ids.
* as an anonymous and as a half-logged-in user (password given, no second factor yet), only the
  login, registration, recovery, health and metrics pages (and after the password the second-factor
  pages) answer; every other URL redirects to the step that is missing.

Which object goes into which converter is chosen by the kwarg's name (``KIND_BY_KWARG``), or by
the URL name and kwarg where a name says nothing (``KIND_BY_URL_AND_KWARG``, for ``pk``). A new
pattern with a kwarg in neither makes ``test_every_url_kwarg_has_an_object_kind`` fail: nobody can
add a URL without it being attacked.

Also here: the login rate limit and the lockout are keyed on the peer address (REMOTE_ADDR), so a
client cannot escape them by sending a different ``X-Forwarded-For`` or ``X-Real-IP`` each time;
only an operator who configures a trusted proxy (``RATELIMIT_IP_META_KEY``) makes a header count.
"""

from __future__ import annotations

import io
import re
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.urls.converters import IntConverter, PathConverter, StringConverter, UUIDConverter
from django.urls.resolvers import RoutePattern

from analysis.models import MessageAnalysis, TrustedSender
from core.models import Job
from events.models import Event
from mail.models import Attachment, Draft, DraftAttachment, Folder, MailAccount, Message, PendingAction, SyncRun
from rules.models import Rule, RuleLog
from tags.models import Tag, TagAssignment, TagSuggestion
from tests.plugins.accounts import create_test_user, verified_client
from tests.plugins.mail import create_account, run_sync

if TYPE_CHECKING:
    from tests.plugins.accounts import TestUser

pytestmark = pytest.mark.django_db

# --------------------------------------------------------------------------------------------------
# The walk
# --------------------------------------------------------------------------------------------------

# kwarg name -> the kind of object whose id fills it.
KIND_BY_KWARG = {
    "account_id": "account",
    "folder_id": "folder",
    "message_id": "message",
    "cid": "cid",  # the Content-ID of an inline image of the message in the same URL
    "draft_id": "draft",
    "attachment_id": "attachment",
    "upload_id": "upload",  # a file attached to the draft in the same URL
    "run_id": "sync_run",
    "job_id": "job",
    "tag_id": "tag",
    "rule_id": "rule",
    "event_id": "event",
}
# (URL name, kwarg) -> kind, for kwarg names that do not say what they hold.
KIND_BY_URL_AND_KWARG = {
    ("mail:trusted-sender-delete", "pk"): "trusted_sender",
}

# Answered without any login, and in addition after the password step (the second factor still to
# come). Written out here rather than imported from accounts/middleware.py: this list is the
# specification the middleware is held to.
PUBLIC = {"accounts:login", "accounts:register", "accounts:recover", "healthz", "metrics"}
HALF_LOGGED_IN = PUBLIC | {"accounts:2fa-setup", "accounts:2fa-verify", "accounts:2fa-recovery", "accounts:logout"}

# Ends the intruder's session, so it is attacked last.
LOGS_OUT = "accounts:logout"
ADMIN_PREFIX = "admin/"


@dataclass(frozen=True)
class Route:
    name: str  # namespaced URL name, or the route text for an unnamed pattern
    route: str  # the full route text, e.g. "mail/accounts/<uuid:account_id>/edit/"
    converters: dict

    def kinds(self) -> dict[str, str | None]:
        """kwarg -> object kind (None where nothing is mapped)."""
        return {
            kwarg: KIND_BY_URL_AND_KWARG.get((self.name, kwarg), KIND_BY_KWARG.get(kwarg)) for kwarg in self.converters
        }

    def url(self, value_for: Callable[[str, object], object]) -> str:
        """The route with every converter filled by ``value_for(kwarg, converter)``."""

        def fill(match: re.Match) -> str:
            converter = self.converters[match["kwarg"]]
            return converter.to_url(value_for(match["kwarg"], converter))

        return "/" + re.sub(r"<(?:\w+:)?(?P<kwarg>\w+)>", fill, self.route)


def _walk(patterns, prefix: str, namespace: str | None, converters: dict):
    for entry in patterns:
        pattern = entry.pattern
        route = prefix + str(pattern)
        if route.startswith(ADMIN_PREFIX) or route.startswith(settings.STATIC_URL.lstrip("/")):
            continue
        if not isinstance(pattern, RoutePattern):
            raise AssertionError(f"{route!r} is not a path(): the URL walk cannot fill its arguments")
        inner_converters = {**converters, **pattern.converters}
        if isinstance(entry, URLResolver):
            inner = namespace
            if entry.namespace:
                inner = f"{namespace}:{entry.namespace}" if namespace else entry.namespace
            yield from _walk(entry.url_patterns, route, inner, inner_converters)
        else:
            assert isinstance(entry, URLPattern)
            name = f"{namespace}:{entry.name}" if namespace and entry.name else entry.name or route
            yield Route(name, route, inner_converters)


def routes() -> list[Route]:
    """Every pattern of the project except static files and the admin, in resolver order."""
    return list(_walk(get_resolver().url_patterns, "", None, {}))


def test_the_walk_sees_every_app_and_the_patterns_resolve_to_themselves():
    found = routes()
    names = {r.name for r in found}
    assert len(found) == len(names), "two patterns share a name: the walk could not tell them apart"
    assert {
        "home",
        "healthz",
        "accounts:login",
        "mail:message",
        "mail:list",
        "jobs:detail",
        "tags:edit",
        "rules:log",
    } <= names
    assert not any(r.route.startswith(ADMIN_PREFIX) for r in found)
    fake = _fake_values()
    for r in found:
        url = r.url(fake)
        match = resolve(url)
        assert (match.view_name if match.url_name else r.name) == r.name, url
        assert set(match.kwargs) == set(r.converters), url


def test_every_url_kwarg_has_an_object_kind():
    """A new URL with an id nobody mapped to an object kind fails here: map it, and the walk attacks it."""
    unmapped = [f"{r.name} <{kwarg}>" for r in routes() for kwarg, kind in r.kinds().items() if kind is None]
    assert not unmapped, f"map these to an object kind in KIND_BY_KWARG or KIND_BY_URL_AND_KWARG: {unmapped}"


# --------------------------------------------------------------------------------------------------
# The victim's data
# --------------------------------------------------------------------------------------------------

SECRET = "victim-secret"  # every victim string holds it; pages are searched for it case-insensitively
SUBJECT = "VICTIM-SECRET-42 quarterly figures"
PIXEL = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05VICTIM-SECRET\x00\x00\x00\x00IEND\xaeB`\x82"
)
# What the owner's pages show of the objects above (lower case); the intruder must see none of it.
SHOWN_TO_THE_OWNER = [
    SUBJECT.lower(),
    "the victim-secret body text",
    "victim-secret attachment bytes",
    "victim-secret-sender@example.test",
    "victim-secret account",
    "re: victim-secret-42 draft",
    "the victim-secret draft body",
    "victim-secret-tag",
    "victim-secret-suggested",
    "victim-secret rule",
    "victim-secret-vip@example.test",
    "victim-secret job result",
    "victim-secret sync note",
]
RULE_DOC = {
    "match": "all",
    "conditions": [{"field": "from", "op": "domain", "value": "victim-secret.example"}],
    "actions": [{"type": "flag"}],
}


def victim_raw() -> bytes:
    """A message with a distinctive subject, an inline image (cid:) and an attachment."""
    msg = EmailMessage()
    msg["From"] = "Victim-Secret Sender <victim-secret-sender@example.test>"
    msg["To"] = "victim-secret@example.test"
    msg["Subject"] = SUBJECT
    msg["Message-ID"] = "<victim-secret-1@example.test>"
    msg["Date"] = "Thu, 05 Mar 2026 09:30:00 +0000"
    msg.set_content("The VICTIM-SECRET body text.\n")
    msg.add_alternative('<p>The VICTIM-SECRET body text.</p><img src="cid:victim-pixel@example.test">', subtype="html")
    msg.get_payload()[1].add_related(PIXEL, "image", "png", cid="<victim-pixel@example.test>")
    msg.add_attachment(
        b"VICTIM-SECRET attachment bytes\n", maintype="application", subtype="pdf", filename="victim-secret.pdf"
    )
    return bytes(msg)


@dataclass
class Victim:
    person: TestUser
    ids: dict[str, object]  # object kind -> the victim's object's id


@pytest.fixture
def victim(db, dovecot, imap_user) -> Victim:
    """One of everything a URL can point at, owned by the victim, made the way the product makes it."""
    person = create_test_user("victim-secret")
    owner = person.user
    dovecot.deliver(imap_user, victim_raw(), flags="S")
    account = create_account(
        owner, imap_user, dovecot, name="Victim-Secret account", email_address="victim-secret@example.test"
    )
    run = run_sync(account)
    assert run.status == "success"
    SyncRun.objects.filter(pk=run.pk).update(error="victim-secret sync note")
    message = Message.objects.get(account=account)
    assert message.subject == SUBJECT
    inline = message.attachments.get(content_type="image/png")
    attachment = message.attachments.get(content_type="application/pdf")
    draft = Draft.objects.create(
        owner=owner,
        account=account,
        original=message,
        to="victim-secret-friend@example.test",
        subject="Re: VICTIM-SECRET-42 draft",
        body="The VICTIM-SECRET draft body.",
    )
    upload = DraftAttachment(
        owner=owner, draft=draft, content_type="application/pdf", filename="victim-secret.pdf", data=b"VICTIM-SECRET"
    )
    upload.save()
    tag = Tag.objects.create(owner=owner, name="victim-secret-tag")
    TagAssignment.objects.create(owner=owner, tag=tag, message=message)
    suggested = Tag.objects.create(owner=owner, name="victim-secret-suggested")
    suggestion = TagSuggestion.objects.create(owner=owner, tag=suggested, message=message, score=0.9)
    rule = Rule.objects.create(owner=owner, name="Victim-Secret rule", order=1, definition=RULE_DOC)
    RuleLog.objects.create(owner=owner, rule=rule, message=message, actions=["flagged victim-secret"])
    trusted = TrustedSender.objects.create(owner=owner, pattern="victim-secret-vip@example.test", note="victim-secret")
    job = Job.objects.create(owner=owner, kind=Job.Kind.RULES, result="victim-secret job result")
    event = Event.objects.create(
        owner=owner, message=message, method="REQUEST", uid="victim-secret-uid", uid_hash="0" * 64,
        summary="Victim-Secret event", organizer_email="victim-secret-organiser@example.test",
    )  # fmt: skip
    ids = {
        "account": account.pk,
        "folder": message.folder_id,
        "message": message.pk,
        "cid": inline.content_id,
        "draft": draft.pk,
        "attachment": attachment.pk,
        "upload": upload.pk,
        "sync_run": run.pk,
        "job": job.pk,
        "tag": tag.pk,
        "rule": rule.pk,
        "trusted_sender": trusted.pk,
        "suggestion": suggestion.pk,
        "event": event.pk,
    }
    return Victim(person, ids)


def rows_of(owner) -> dict[str, list]:
    """Everything of the owner's a request could change, as stored (encrypted columns as ciphertext)."""
    by_owner = [
        MailAccount,
        Message,
        Attachment,
        Draft,
        DraftAttachment,
        PendingAction,
        Job,
        Tag,
        TagAssignment,
        TagSuggestion,
    ]
    by_owner += [Rule, RuleLog, TrustedSender, MessageAnalysis, Event]
    rows = {m.__name__: list(m.objects.filter(owner=owner).order_by("pk").values()) for m in by_owner}
    rows["Folder"] = list(Folder.objects.filter(account__owner=owner).order_by("pk").values())
    rows["SyncRun"] = list(SyncRun.objects.filter(account__owner=owner).order_by("pk").values())
    rows["User"] = list(get_user_model().objects.filter(pk=owner.pk).values())
    for row in rows["User"]:
        row.pop("last_login")
    return rows


# --------------------------------------------------------------------------------------------------
# Requests
# --------------------------------------------------------------------------------------------------


def body_text(response) -> str:
    """What the response shows, lower-cased: streamed files read, zip members (the export) opened."""
    data = b"".join(response.streaming_content) if response.streaming else response.content
    if data[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            data = b"\n".join(archive.read(name) for name in archive.namelist())
    return data.decode("utf-8", "replace").lower()


def csrf_client(person: TestUser) -> Client:
    """A verified client that must send a CSRF token, with one from a page it fetched."""
    client = verified_client(person, enforce_csrf_checks=True, raise_request_exception=False)
    assert client.get(reverse("accounts:settings")).status_code == 200
    client.defaults["HTTP_X_CSRFTOKEN"] = client.cookies[settings.CSRF_COOKIE_NAME].value
    return client


def attack_form(ids: dict) -> dict:
    """Form fields the views read ids from, all pointing at the victim's objects."""
    return {
        "ids": [str(ids["message"]), str(ids["suggestion"])],
        "tag": ids["tag"],
        "account": str(ids["account"]),
        "target_folder": ids["folder"],
        "action": "delete",
        "decision": "accept",
        "kind": "forward",
    }


# The same fields with values no form would send: a tampered form is refused, not a server error.
MALFORMED_FORM = dict.fromkeys(["ids", "tag", "account", "target_folder", "action", "decision", "kind"], "1' OR 1=1")
MALFORMED_FORM["ids"] = ["not-an-id", "1"]


def _fake_values():
    def value(kwarg, converter):
        if isinstance(converter, UUIDConverter):
            return uuid.uuid4()
        if isinstance(converter, IntConverter):
            return 2_000_000_000
        assert isinstance(converter, PathConverter | StringConverter), converter
        return "nothing-here"

    return value


def _victim_values(route: Route, ids: dict):
    kinds = route.kinds()
    return lambda kwarg, converter: ids[kinds[kwarg]]


def test_another_users_objects_are_out_of_reach_on_every_url(victim):
    intruder = create_test_user("intruder")
    all_routes = routes()
    with_ids = [r for r in all_routes if r.converters]
    assert len(with_ids) >= 30

    # The owner's own requests: every id is one the page accepts, every marker is shown somewhere.
    owner = verified_client(victim.person)
    shown = []
    for r in all_routes:
        url = r.url(_victim_values(r, victim.ids))
        response = owner.get(url)
        if r.converters:
            assert response.status_code in (200, 405), f"the owner's GET {r.name} {url}: {response.status_code}"
        shown.append(body_text(response))
    shown = "\n".join(shown)
    unseen = [marker for marker in SHOWN_TO_THE_OWNER if marker not in shown]
    assert not unseen, f"the owner's pages do not show {unseen}: the walk would not notice them leak"

    before = rows_of(victim.person.user)
    client = csrf_client(intruder)
    crashed, refused, leaks = [], [], []
    for r in sorted(all_routes, key=lambda r: r.name == LOGS_OUT):
        url = r.url(_victim_values(r, victim.ids))
        for method, data in [("get", None), ("post", attack_form(victim.ids)), ("post", MALFORMED_FORM)]:
            response = getattr(client, method)(url, data)
            if response.status_code >= 500 and r.name != "healthz":  # healthz: 503 without workers
                crashed.append(f"{method.upper()} {r.name} {url} {data}: {response.status_code}")
            if r.converters and response.status_code not in (403, 404, 405):
                refused.append(f"{method.upper()} {r.name} {url}: {response.status_code}")
            if SECRET in body_text(response) or SECRET in response.get("Location", "").lower():
                leaks.append(f"{method.upper()} {r.name} {url}")
    assert not crashed, f"server errors: {crashed}"
    assert not refused, f"answered the intruder instead of 404/403/405: {refused}"
    assert not leaks, f"showed the victim's content to the intruder: {leaks}"
    assert rows_of(victim.person.user) == before


def test_the_admin_refuses_a_verified_user_who_is_not_staff():
    person = create_test_user("intruder")
    response = verified_client(person).get(reverse("admin:index"), follow=True)
    assert response.status_code == 403 and "site administration" not in body_text(response)
    person.user.is_staff = True
    person.user.save(update_fields=["is_staff"])
    assert "site administration" in body_text(verified_client(person).get(reverse("admin:index")))


# --------------------------------------------------------------------------------------------------
# Not (fully) logged in
# --------------------------------------------------------------------------------------------------


def half_logged_in(person: TestUser) -> Client:
    """A client that gave the right password and nothing more."""
    client = Client()
    response = client.post(reverse("accounts:login"), {"username": person.user.username, "password": person.password})
    assert response.status_code == 302
    assert not client.get(reverse("home")).url.startswith(reverse("accounts:login"))
    return client


def expect_steps(client: Client, answering: set[str], step: str) -> None:
    """Every route in `answering` answers; every other one redirects to `step`, remembering the URL."""
    fake = _fake_values()
    wrong = []
    urls = [(r.name, r.url(fake)) for r in sorted(routes(), key=lambda r: r.name == LOGS_OUT)]
    for name, url in [("admin:index", reverse("admin:index")), *urls]:
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            redirected = response.status_code == 302 and response.url == f"{reverse(step)}?{urlencode({'next': url})}"
            if redirected == (name in answering):
                wrong.append(f"{method.upper()} {name}: {response.status_code} {response.get('Location', '')}")
    assert not wrong, wrong
    static = client.get(settings.STATIC_URL + "css/app.css")
    assert static.status_code == 200, "static files are served to everybody"


@pytest.fixture
def static_served(settings):
    """Static files served from the source tree, as after collectstatic in the image."""
    settings.WHITENOISE_USE_FINDERS = True


def test_anonymous_users_get_only_the_public_pages(static_served):
    expect_steps(Client(), PUBLIC, "accounts:login")


def test_after_the_password_only_the_second_factor_pages_answer(static_served):
    expect_steps(half_logged_in(create_test_user("halfway")), HALF_LOGGED_IN, "accounts:2fa-verify")


def test_after_the_password_a_user_without_a_device_is_sent_to_set_one_up(static_served):
    person = create_test_user("no-device", with_2fa=False)
    expect_steps(half_logged_in(person), HALF_LOGGED_IN, "accounts:2fa-setup")


# --------------------------------------------------------------------------------------------------
# X-Forwarded-For
# --------------------------------------------------------------------------------------------------


def spoofed(i: int) -> dict:
    """Headers a client sends to look like a new address on every request."""
    return {"HTTP_X_FORWARDED_FOR": f"203.0.113.{i}", "HTTP_X_REAL_IP": f"198.51.100.{i}"}


@pytest.fixture
def no_trusted_proxy(settings):
    if hasattr(settings, "RATELIMIT_IP_META_KEY"):
        del settings.RATELIMIT_IP_META_KEY
    settings.MAILHELPER_RATE_LOGIN = "3/m"
    return settings


@pytest.mark.parametrize("url_name", ["accounts:login", "accounts:recover"])
def test_a_new_forwarded_address_per_request_does_not_escape_the_per_ip_limit(no_trusted_proxy, url_name):
    url = reverse(url_name)
    statuses = [
        Client().post(url, {"username": f"user{i}", "password": "x"}, **spoofed(i)).status_code for i in range(4)
    ]
    assert 429 not in statuses[:3] and statuses[3] == 429


def test_with_a_trusted_proxy_configured_its_header_is_the_address(no_trusted_proxy):
    no_trusted_proxy.RATELIMIT_IP_META_KEY = "HTTP_X_REAL_IP"
    url = reverse("accounts:login")
    statuses = [
        Client().post(url, {"username": f"user{i}", "password": "x"}, **spoofed(i)).status_code for i in range(4)
    ]
    assert statuses == [200, 200, 200, 200]
    same = [Client().post(url, {"username": f"u{i}", "password": "x"}, **spoofed(7)).status_code for i in range(4)]
    assert same == [200, 200, 200, 429]


def test_a_new_forwarded_address_per_attempt_does_not_escape_the_lockout(db):
    person = create_test_user("target")
    url = reverse("accounts:login")
    for i in range(5):
        Client().post(url, {"username": "target", "password": "wrong"}, **spoofed(i))
    locked = Client().post(url, {"username": "target", "password": person.password}, **spoofed(99))
    assert locked.status_code == 403 and "locked" in locked.content.decode()
