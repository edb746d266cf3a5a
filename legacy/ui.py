"""What pages show for imported data that waits for its owner's first login.

Until the conversion task has run, an imported message has no subject or body in Mailhelper (they
are still legacy ciphertext). Pages mark such rows "waiting for first login" instead of showing
them empty. The login (legacy/receivers.py) sets a session flag for imported users; only then do pages ask which
rows are waiting (one query per page), so the pages of everyone else run exactly the queries they
ran before. The flag is dropped once nothing of the user waits any more.
"""

from __future__ import annotations

from django.http import HttpRequest

from legacy.models import LegacySealedValue

SESSION_FLAG = "legacy_waiting"


def waiting(request: HttpRequest, label: str, pks: list[str]) -> set[str]:
    """The pks among `pks` of rows of the request's user whose legacy values are not converted yet
    (a core.placeholders provider)."""
    if not request.session.get(SESSION_FLAG):
        return set()
    pending = LegacySealedValue.objects.filter(owner=request.user, converted_at__isnull=True, error="")
    found = set(pending.filter(target=label, target_pk__in=pks).values_list("target_pk", flat=True))
    if not found and not pending.exists():
        request.session.pop(SESSION_FLAG, None)
    return found


_SECRET_COLUMNS = ("password", "token")  # secrets of other services: left out of exports like Mailhelper's own


def export_records(user) -> list[dict]:
    """The user's legacy records for "download my data" (values the legacy had and Mailhelper keeps aside).

    Decrypted columns are included once converted; passwords and tokens of other services are not.
    """
    import json

    from legacy.models import LegacyRecord

    out = []
    for record in LegacyRecord.objects.filter(owner=user).order_by("table", "legacy_id"):
        secrets = json.loads(record.secrets or "{}")
        values = {**record.data, **secrets}
        values = {k: v for k, v in values.items() if not any(word in k for word in _SECRET_COLUMNS)}
        out.append({"table": record.table, "legacy_id": record.legacy_id, "values": values})
    return out
