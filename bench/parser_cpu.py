"""CPU per message of one sync parser (mail/sync_pool.py's ``parse_and_seal``), by stage, in one process.

    .venv/bin/python bench/parser_cpu.py [--messages 2000] [--rounds 5]

Why: the initial sync of bench/sync_throughput.py is bound by the machine's total CPU (#15), and a
parser process is the largest share of it. This measures that share without Dovecot, PostgreSQL or
a second process: the same messages as sync_throughput.py (same sizes, HTML and attachment mix),
parsed, turned into stored values and sealed as a parser does, each stage timed on its own with
``time.process_time`` (best of the rounds). No database is touched. For a profile, run it under
``py-spy record -r 500 -f raw -- python bench/parser_cpu.py``.
"""

from __future__ import annotations

import argparse
import os
import random
import time
import uuid

from common import ROOT  # noqa: F401  (puts the project first on sys.path)


def bench_messages(count: int) -> list[bytes]:
    """The first `count` messages bench/sync_throughput.py delivers (same seed, same mix), with CRLF
    line ends as Dovecot serves them over IMAP (make_raw writes LF, as stored in the Maildir)."""
    from tests.plugins.mail import make_raw

    rnd = random.Random(7)
    raws = []
    for i in range(count):
        size_kb = rnd.randint(5, 50)
        raw = make_raw(i, body_kb=size_kb, html=i % 4 == 0, attachment=b"\x01" * 4096 if i % 10 == 0 else None)
        raws.append(raw.replace(b"\n", b"\r\n"))
    return raws


def best(rounds: int, work) -> float:
    """Smallest process CPU time of `rounds` runs of work()."""
    times = []
    for _ in range(rounds):
        started = time.process_time()
        work()
        times.append(time.process_time() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--levels", default="", help="also time zstd at these levels, e.g. 1,-1,-3,-5")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()

    from accounts import crypto
    from accounts.fields import encrypted_fields, sealed_label_of
    from mail.models import Attachment, Message
    from mail.parsing import parse_message
    from mail.sync_pool import CHUNK, Job, Sealing, attachment_values, message_values, parse_and_seal

    raws = bench_messages(args.messages)
    mb = sum(map(len, raws)) / 1e6
    dek = crypto.new_key()
    message, attachment = (Sealing(sealed_label_of(m), encrypted_fields(m)) for m in (Message, Attachment))
    parsed = [parse_message(raw) for raw in raws]

    def values() -> list[tuple[dict, list[dict]]]:
        return [(message_values(p, raw), attachment_values(p)) for p, raw in zip(parsed, raws, strict=True)]

    derived = values()

    def seal() -> None:
        for values_, parts in derived:
            message.seal(dek, 1, uuid.uuid4(), dict(values_))
            for part in parts:
                attachment.seal(dek, 1, uuid.uuid4(), dict(part))

    def whole() -> None:
        for i in range(0, len(raws), CHUNK):
            parse_and_seal(Job(dek, 1, message, attachment, tuple(raws[i : i + CHUNK])))

    per = 1e6 / len(raws)
    print(f"messages: {len(raws)} ({mb:.0f} MB); CPU per message, best of {args.rounds}:")
    print(f"  parse_message:        {best(args.rounds, lambda: [parse_message(r) for r in raws]) * per:6.0f} µs")
    print(f"  stored values:        {best(args.rounds, values) * per:6.0f} µs")
    print(f"  sealing:              {best(args.rounds, seal) * per:6.0f} µs")
    print(f"  parse_and_seal, all:  {best(args.rounds, whole) * per:6.0f} µs")
    if args.levels:
        compare_levels(derived, [int(v) for v in args.levels.split(",")], args.rounds, per)


def compare_levels(derived: list[tuple[dict, list[dict]]], levels: list[int], rounds: int, per: float) -> None:
    """zstd alone over the values a parser compresses (raw source, text and HTML bodies): time and size."""
    import zstandard

    kinds = {
        "raw": [v["raw"] for v, _ in derived],
        "bodies": [v[n].encode() for v, _ in derived for n in ("text_body", "html_body") if len(v[n]) >= 512],
    }
    for kind, values in kinds.items():
        total = sum(map(len, values))
        for level in levels:
            compressor = zstandard.ZstdCompressor(level=level)
            seconds = best(rounds, lambda: [compressor.compress(v) for v in values])  # noqa: B023
            packed = sum(len(compressor.compress(v)) for v in values)
            print(
                f"  zstd level {level:3} over {kind:6}: {seconds * per:6.0f} µs per message, "
                f"{total / 1e6:.0f} -> {packed / 1e6:.1f} MB ({total / packed:.1f}x), {total / seconds / 1e6:.0f} MB/s"
            )


if __name__ == "__main__":
    main()
