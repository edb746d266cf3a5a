"""Parse and seal fetched mail in processes of their own during a large sync (#15).

Why: a first sync is bound by one process's CPU (the GIL). Parsing MIME and sealing the content
(zstd + AES-256-GCM) are about two thirds of that CPU and need neither Django nor the database, so
they can run on the machine's other cores while the sync's own threads fetch and write
(docs/notes/sync-speed.md has the profile).

The contract:

- Only what needs no Django runs in the processes: ``parse_message``, the stored values derived
  from it (``message_values`` and ``attachment_values``, which the in-thread path uses too, so both
  paths store the same thing), the thread key under the owner's search key, and sealing each
  encrypted value with the associated data of its row. The row's primary key (a uuid4) is chosen
  in the child, since the associated data names it; how each field is sealed (label, compression,
  text or bytes) is read from the models in the parent (``Sealing.of``) and sent along.
- The data key goes with each job through the pool's pipe, never into a global of a child: a
  child holds a key only while it works on a job. It is never in a Celery message or a log line
  (a ``Job``'s repr leaves out the key and the mail).
- A pool lives for one folder's fetch (``parser_pool``) and is shut down when that fetch ends, has
  failed or was interrupted: no process holds a key longer than the sync. Processes are started
  with the spawn method (fresh interpreters: no fork of a threaded worker with locks held, no copy of
  the parent's memory and the keys in it). A child whose parent died (a worker killed with
  SIGKILL) notices within a second and exits, so a killed worker leaves no parser behind.
- Where no processes can be started the sync parses in its fetch thread, as it did before: in a
  daemonic process (the children of Celery's prefork pool may not have children; the sync queue's
  worker runs ``--pool threads``, see deploy/), when switched off (``MAILHELPER_SYNC_PROCESSES=0``),
  and for fewer than ``MAILHELPER_SYNC_PROCESSES_FROM`` messages (starting processes costs more
  than it saves there; the ordinary sync of a few new messages never starts any).
- A failure in a child fails the sync as it would in the thread: the child's exception crosses the
  pipe and is re-raised in the sync with its own type, so the run records the same
  "Interrupted: <type>"; a child that died (killed, out of memory), whatever it was doing then, is
  ``ParserProcessLost``: each child has pipes of its own whose other ends only it holds, so its
  death reads as end of file, never as a read that waits (ProcessPoolExecutor, used before, hung
  on a child killed halfway through writing its result). That batch is not stored; the batches
  committed before stay, and the next sync fetches the rest (nothing twice, nothing lost).

This module imports nothing of Django, and mail.sync imports it (not the other way round).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait

from accounts import crypto

from .parsing import ParsedMessage, parse_message
from .search_tokens import SearchKey
from .threading_keys import storable_thread_key

log = logging.getLogger(__name__)

#: Messages per job: small enough that every process gets work from one batch of 200, large
#: enough that the pipe carries few, large messages.
CHUNK = 25


class ParserProcessLost(Exception):
    """A parser process died during a sync (killed, out of memory); the batch was not stored."""


class ParserFailed(Exception):
    """A parser raised an exception that cannot cross the pipe; the message is its type's name."""


def message_values(parsed: ParsedMessage, raw: bytes) -> dict:
    """The Message row's values that come from the message itself (not from the server: UID,
    flags, arrival), cut to the columns' lengths; `raw` is stored as it came."""
    return {
        "message_id": parsed.message_id[:995],
        "in_reply_to": parsed.in_reply_to[:995],
        "references": [r[:995] for r in parsed.references[:100]],
        "thread_key": parsed.thread_key[:995],
        "date": parsed.date,
        "from_address": parsed.from_address[:320],
        "from_name": parsed.from_name[:300],
        "to_addresses": [a[:320] for a in parsed.to_addresses[:500]],
        "cc_addresses": [a[:320] for a in parsed.cc_addresses[:500]],
        "has_attachments": any(not a.is_inline for a in parsed.attachments),
        "list_id": parsed.list_id[:300],
        "has_list_unsubscribe": parsed.has_list_unsubscribe,
        "precedence": parsed.precedence[:20],
        "auto_submitted": parsed.auto_submitted[:40],
        "calendar_method": parsed.calendar_method[:20],
        "has_remote_images": parsed.has_remote_images,
        "parse_warnings": parsed.warnings[:50],
        "subject": parsed.subject,
        "text_body": parsed.text_body,
        "html_body": parsed.html_body,
        "raw": raw,
    }


def attachment_values(parsed: ParsedMessage) -> list[dict]:
    """The Attachment rows' values, in the message's order (their `position`)."""
    return [
        {
            "position": position,
            "content_type": part.content_type[:200],
            "size": part.size,
            "content_id": part.content_id[:300],
            "is_inline": part.is_inline,
            "filename": part.filename,
            "data": part.data,
        }
        for position, part in enumerate(parsed.attachments)
    ]


@dataclass(frozen=True)
class Sealing:
    """How one model's encrypted fields are sealed: the label bound into their associated data and,
    per field, (name, compressed, text). Built from the model in the parent (accounts.fields)."""

    label: str
    fields: tuple[tuple[str, bool, bool], ...]

    def seal(self, dek: bytes, owner_id: int, pk: uuid.UUID, values: dict) -> None:
        """Replace the plaintext of each encrypted field in `values` by its sealed bytes, as
        accounts.fields' seal_with does (same plaintext bytes, same associated data)."""
        for name, compress, text in self.fields:
            value = values.get(name)
            if value is None:
                continue
            plaintext = value.encode("utf-8") if text else bytes(value)
            values[name] = crypto.seal(dek, plaintext, crypto.value_aad(owner_id, self.label, name, pk), compress)


@dataclass(frozen=True)
class Job:
    """One chunk of fetched messages for a child; the key and the mail are left out of its repr."""

    dek: bytes = field(repr=False)
    owner_id: int
    message: Sealing
    attachment: Sealing
    raws: tuple[bytes, ...] = field(repr=False)


@dataclass
class Built:
    """One message parsed and sealed: its primary key, its values (encrypted ones sealed, the thread
    key keyed) and its attachments' (primary key, values)."""

    pk: uuid.UUID
    values: dict
    attachments: list[tuple[uuid.UUID, dict]]


def parse_and_seal(job: Job) -> list[Built]:
    """Runs in a child: every message of the job parsed, its values derived and sealed."""
    search_key = SearchKey.from_data_key(job.dek)
    built = []
    for raw in job.raws:
        parsed = parse_message(raw)
        values = message_values(parsed, raw)
        values["thread_key"] = storable_thread_key(values["thread_key"], search_key)
        pk = uuid.uuid4()
        job.message.seal(job.dek, job.owner_id, pk, values)
        parts = []
        for part in attachment_values(parsed):
            part_pk = uuid.uuid4()
            job.attachment.seal(job.dek, job.owner_id, part_pk, part)
            parts.append((part_pk, part))
        built.append(Built(pk, values, parts))
    return built


def _exit_with_parent(parent_pid: int) -> None:
    """Exit once the parent is gone: a worker killed with SIGKILL closes no pool."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _serve(jobs: Connection, results: Connection, parent_pid: int) -> None:
    """A parser's loop: one job in, its outcome out, until the parent closes the job pipe.

    It takes the next job only after its last outcome is written, so the parent never sends to a
    busy child and a send never waits for a child that is itself waiting to be read."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker's Ctrl-C is the parent's to handle
    _exit_with_parent(parent_pid)
    while True:
        try:
            job = jobs.recv()
        except (EOFError, OSError):
            return
        try:
            outcome: tuple[str, object] = ("ok", parse_and_seal(job))
        except Exception as error:
            outcome = ("error", error)
        del job
        try:
            results.send(outcome)
        except (BrokenPipeError, EOFError, OSError):  # the parent closed the pool
            return
        except Exception:  # an exception that does not pickle: its type is what the run records
            results.send(("error", ParserFailed(type(outcome[1]).__name__)))


def may_start_processes() -> bool:
    """False in a daemonic process: multiprocessing's own, or a child of Celery's prefork pool
    (billiard keeps its own process state, which multiprocessing does not see)."""
    if multiprocessing.current_process().daemon:
        return False
    billiard = sys.modules.get("billiard.process")
    return not (billiard is not None and getattr(billiard.current_process(), "daemon", False))


class _Parser:
    """One child and the parent's ends of its two pipes.

    The parent keeps no write end of the result pipe (ProcessPoolExecutor shares one result queue
    whose write end the parent holds): a child that dies, even halfway through writing a result,
    reads as end of file here instead of a read that waits for ever."""

    def __init__(self, context: multiprocessing.context.SpawnContext, parent_pid: int) -> None:
        jobs_in, self.jobs = context.Pipe(duplex=False)
        self.results, results_out = context.Pipe(duplex=False)
        self.process = context.Process(
            target=_serve, args=(jobs_in, results_out, parent_pid), name="mailhelper-parser", daemon=True
        )
        self.process.start()
        jobs_in.close()
        results_out.close()
        self.current: Future | None = None


class ParserPool:
    """The processes of one folder's fetch (see the module docstring); use ``parser_pool``.

    A manager thread hands queued jobs to idle children and reads their outcomes, waiting on the
    result pipes, the children's sentinels and a wake-up pipe together: a child's death is noticed
    whatever it was doing, and every job not done then fails with ParserProcessLost."""

    def __init__(self, processes: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.processes = processes
        self._lock = threading.Lock()
        self._queued: deque[tuple[Future, Job]] = deque()
        self._broken: BaseException | None = None  # why no job can be done any more
        self._closing = False
        self._wake_in, self._wake_out = context.Pipe(duplex=False)
        self._parsers = [_Parser(context, os.getpid()) for _ in range(processes)]
        self._manager = threading.Thread(target=self._manage, name="parser-pool", daemon=True)
        self._manager.start()

    @property
    def pids(self) -> list[int]:
        return [parser.process.pid for parser in self._parsers]

    def submit(self, job: Job) -> Future:
        future: Future = Future()
        with self._lock:
            if self._broken is not None:  # a lost child, or the manager thread stopped: nobody would do it
                raise self._broken
            if self._closing:
                raise RuntimeError("the parser pool is closed")
            self._queued.append((future, job))
            self._wake_out.send_bytes(b"")
        return future

    @staticmethod
    def result(future: Future) -> list[Built]:
        """A job's messages; the child's own exception if it raised, ParserProcessLost if it died."""
        return future.result()

    def close(self) -> None:
        """Stop every child and wait until they are gone; jobs not started are dropped."""
        with self._lock:
            self._closing = True
            for future, _ in self._queued:
                future.cancel()
            self._queued.clear()
            self._wake_out.send_bytes(b"")
        self._manager.join()
        for parser in self._parsers:
            parser.jobs.close()  # an idle child reads end of file and returns
            parser.results.close()  # a busy one cannot write its outcome and returns
        for parser in self._parsers:
            parser.process.join(5)
            if parser.process.is_alive():
                parser.process.kill()
                parser.process.join()
        self._wake_in.close()
        self._wake_out.close()

    def _manage(self) -> None:
        try:
            while self._hand_out():
                pipes = [parser.results for parser in self._parsers]
                ready = set(wait([self._wake_in, *pipes, *(parser.process.sentinel for parser in self._parsers)]))
                while self._wake_in.poll():
                    self._wake_in.recv_bytes()
                for parser in self._parsers:
                    if parser.results in ready:
                        self._receive(parser)
                if any(parser.process.sentinel in ready for parser in self._parsers):
                    raise ParserProcessLost("a parser process stopped during the sync")
        except (ParserProcessLost, EOFError, OSError):
            self._fail(ParserProcessLost("a parser process stopped during the sync"))
        except BaseException as error:  # a bug here must fail the sync, not leave it waiting
            self._fail(error)

    def _hand_out(self) -> bool:
        """Give each idle child the next queued job; False once the pool is closing."""
        if self._closing:
            self._fail(RuntimeError("the parser pool is closed"))
            return False
        for parser in self._parsers:
            while parser.current is None:
                with self._lock:
                    if not self._queued:
                        break
                    future, job = self._queued.popleft()
                if future.set_running_or_notify_cancel():
                    parser.current = future
                    parser.jobs.send(job)  # the child is waiting for it: this does not block for long
        return True

    def _receive(self, parser: _Parser) -> None:
        status, payload = parser.results.recv()  # EOFError if the child died, even mid-write
        future, parser.current = parser.current, None
        if future is None:
            raise ParserProcessLost("a parser process sent a result nobody asked for")
        if status == "ok":
            future.set_result(payload)
        else:
            future.set_exception(payload)

    def _fail(self, error: BaseException) -> None:
        """Every job not done yet fails with `error`; later submits raise it too."""
        with self._lock:
            self._broken = self._broken or error
            futures = [parser.current for parser in self._parsers if parser.current is not None]
            futures += [future for future, _ in self._queued if future.set_running_or_notify_cancel()]
            self._queued.clear()
            for parser in self._parsers:
                parser.current = None
        for future in futures:
            if not future.done():
                future.set_exception(error)


@contextmanager
def parser_pool(processes: int, messages: int, at_least: int) -> Iterator[ParserPool | None]:
    """A pool for a fetch of `messages`, or None: parse in the thread (off, too few, daemonic)."""
    if processes < 1 or messages < max(at_least, 1) or not may_start_processes():
        yield None
        return
    pool = ParserPool(processes)
    try:
        yield pool
    finally:
        pool.close()
