"""`manage.py import_legacy` speed: a legacy SQLite file with N messages, imported, re-run, converted.

Each message has an analysis and every third an attachment, all encrypted the legacy way. Prints the
import time (checksums included), the re-run (nothing new, checksums only) and the first-login
conversion. Uses a database of its own (mailhelper_bench_legacy), emptied of imported data first.

    python bench/legacy_import.py --messages 5000
"""

from __future__ import annotations

import argparse
import io
import tempfile
from pathlib import Path

from common import setup_django, timed


def build(path: Path, n: int):
    from tests.legacy.legacy_db import LegacyDB

    db = LegacyDB(path)
    user = db.add_user("bench_legacy", "bench legacy password 1")
    account = db.insert("mail_accounts", user_id=user.id, name="Work", imap_port=993, enabled=1,
                        encrypted_imap_server=db.enc(user, "imap.example.test"))  # fmt: skip
    body = "Hello,\n" + "the numbers for this quarter are attached. " * 80
    db.conn.execute("begin")
    for i in range(n):
        raw = db.conn.execute(
            "insert into raw_emails (user_id, mail_account_id, encrypted_sender, encrypted_subject, encrypted_body,"
            " received_at, imap_uid, imap_folder, imap_uidvalidity, imap_is_seen, message_size, message_id)"
            " values (?, ?, ?, ?, ?, '2024-01-01 00:00:00', ?, 'INBOX', 1, ?, ?, ?)",
            (user.id, account, db.enc(user, f"Sender {i} <s{i}@example.test>"), db.enc(user, f"Subject {i}"),
             db.enc(user, body), i + 1, i % 2, len(body), f"<m{i}@example.test>"),
        ).lastrowid  # fmt: skip
        db.conn.execute(
            "insert into processed_emails (raw_email_id, dringlichkeit, wichtigkeit, kategorie_aktion, spam_flag,"
            " encrypted_summary_de, done, processed_at) values (?, 2, 2, 'nur_information', 0, ?, 0, '2024-01-01')",
            (raw, db.enc(user, f"Summary {i}")),
        )
        if i % 3 == 0:
            db.conn.execute(
                "insert into email_attachments (raw_email_id, filename, mime_type, size, encrypted_data)"
                " values (?, 'numbers.csv', 'text/csv', 8, ?)",
                (raw, db.enc(user, "YSxiCjEsMgo=")),
            )
    db.conn.commit()
    db.close()
    return user


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--no-conversion", action="store_true", help="import and re-run only")
    args = parser.parse_args()
    setup_django("mailhelper_bench_legacy")
    from django.core.management import call_command

    from accounts.models import User
    from legacy import conversion
    from legacy.models import LegacyImportMap, LegacyRecord

    User.objects.filter(username="bench_legacy").delete()
    LegacyImportMap.objects.all().delete()
    LegacyRecord.objects.all().delete()
    path = Path(tempfile.mkdtemp()) / "legacy.sqlite"
    legacy = build(path, args.messages)
    results: dict[str, float] = {}
    quiet = {"stdout": io.StringIO(), "stderr": io.StringIO()}
    with timed("import", results):
        call_command("import_legacy", "--sqlite", str(path), **quiet)
    with timed("re-run", results):
        call_command("import_legacy", "--sqlite", str(path), **quiet)
    n = args.messages
    print(f"import of {n} messages (+{n} analyses, {(n + 2) // 3} attachments): {results['import']:.1f} s "
          f"({n / results['import']:.0f} msg/s)")  # fmt: skip
    print(f"re-run, nothing new (checksums only): {results['re-run']:.1f} s")
    if args.no_conversion:
        return
    user = User.objects.get(username="bench_legacy")
    assert conversion.on_password_verified(user, legacy.password)
    with timed("conversion", results):
        outcome = conversion.convert_user(user.pk)
    print(f"first-login conversion: {outcome.converted} values in {results['conversion']:.1f} s "
          f"({n / results['conversion']:.0f} msg/s)")  # fmt: skip


if __name__ == "__main__":
    main()
