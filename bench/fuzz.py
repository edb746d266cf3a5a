"""Fuzz the parser for longer than the test suite does: messages per second, the slowest, every failure.

    .venv/bin/python bench/fuzz.py [--seed N] [--messages 20000] [--slow-seconds 2]

A failure is an exception out of parse_message (it must never raise), a parse that could not be stored
(NUL, lone surrogate, naive date, a warning quoting the message) or one slower than --slow-seconds.
Each is printed with its seed and index: `mutations(seed, index + 1)` replays it. Exit status 1 on any.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import traceback

from common import setup_django


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--slow-seconds", type=float, default=2.0)
    args = parser.parse_args()
    setup_django("mailhelper_bench_fuzz")

    from mail.parsing import parse_message
    from tests.plugins.hostile_mail import extremes, mutations, storable_problems

    failures: list[str] = []
    timings: list[float] = []
    total_bytes = 0

    def check(label: str, raw: bytes) -> None:
        nonlocal total_bytes
        total_bytes += len(raw)
        started = time.perf_counter()
        try:
            parsed = parse_message(raw)
        except Exception:
            failures.append(f"{label}: raised\n{traceback.format_exc(limit=3)}")
            return
        elapsed = time.perf_counter() - started
        timings.append(elapsed)
        problems = storable_problems(parsed)
        if problems:
            failures.append(f"{label}: {problems[:3]}")
        if elapsed > args.slow_seconds:
            failures.append(f"{label}: {elapsed:.2f} s for {len(raw)} bytes")

    for extreme in extremes():
        check(f"extreme {extreme.name!r}", extreme.raw)
    started = time.perf_counter()
    for index, raw in enumerate(mutations(args.seed, args.messages)):
        check(f"seed {args.seed} index {index}", raw)
    elapsed = time.perf_counter() - started

    timings.sort()
    print(f"seed {args.seed}: {args.messages} mutated messages in {elapsed:.1f} s")
    print(f"  {args.messages / elapsed:.0f} messages/s, {total_bytes / elapsed / 2**20:.1f} MiB/s")
    print(
        f"  per message: median {statistics.median(timings) * 1000:.1f} ms, "
        f"p99 {timings[int(len(timings) * 0.99)] * 1000:.1f} ms, max {timings[-1] * 1000:.0f} ms"
    )
    print(f"  failures: {len(failures)}")
    for failure in failures[:20]:
        print("   ", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
