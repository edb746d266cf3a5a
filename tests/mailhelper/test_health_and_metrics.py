"""/healthz and /metrics against the real services."""

import re

import pytest
from django.test import override_settings
from django.urls import reverse

DEAD_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1


@pytest.mark.django_db(transaction=True)
def test_healthz_is_200_when_database_redis_and_a_worker_answer(client, celery_worker):
    response = client.get(reverse("healthz"))
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert all(body["checks"][name]["ok"] for name in ("database", "redis", "celery"))
    assert body["checks"]["celery"]["workers"] >= 1


@pytest.mark.django_db(transaction=True)
def test_healthz_is_503_when_redis_is_unreachable(client, celery_worker):
    with override_settings(REDIS_URL=DEAD_REDIS, CELERY_BROKER_URL=DEAD_REDIS):
        response = client.get(reverse("healthz"))
    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["redis"] == {"ok": False, "error": "ConnectionError", "ms": body["checks"]["redis"]["ms"]}
    assert body["checks"]["celery"]["ok"] is False
    assert "127.0.0.1:1" not in response.content.decode()  # no connection strings leak


@pytest.mark.django_db
def test_metrics_count_requests_and_tasks_in_prometheus_format(client, alice_client):
    from django_celery_results.models import TaskResult

    TaskResult.objects.create(task_id="t1", status="SUCCESS")
    TaskResult.objects.create(task_id="t2", status="FAILURE")
    alice_client.get(reverse("home"))
    client.get("/no-such-page")
    text = client.get(reverse("metrics")).content.decode()
    assert "# TYPE mailhelper_http_requests_total counter" in text
    assert re.search(r'^mailhelper_http_requests_total\{method="GET",status="200"\} [1-9]', text, re.M)
    assert re.search(r'^mailhelper_http_requests_total\{method="GET",status="302"\} [1-9]', text, re.M)
    assert 'mailhelper_celery_tasks{state="FAILURE"} 1' in text
    assert 'mailhelper_celery_tasks{state="SUCCESS"} 1' in text
    assert "mailhelper_users 1" in text
    for line in text.splitlines():  # every line is a comment or `name{labels} number`
        assert line.startswith("# ") or re.match(r"^[a-z_]+(\{[^}]*\})? [0-9.e+-]+$", line), line


@pytest.mark.django_db
def test_metrics_token_is_enforced_when_set(client, settings):
    settings.MAILHELPER_METRICS_TOKEN = "s3cret-token"
    assert client.get(reverse("metrics")).status_code == 401
    ok = client.get(reverse("metrics"), HTTP_AUTHORIZATION="Bearer s3cret-token")
    assert ok.status_code == 200 and "mailhelper_users" in ok.content.decode()
