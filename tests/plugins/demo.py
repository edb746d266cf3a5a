"""The demo's own Dovecot (mailhelper/demo/setup.py), one per test: the demo seeds a user named "demo"."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mailhelper.demo import setup
from mailhelper.local_dovecot import DovecotServer, free_port


@dataclass
class DemoServer:
    directory: Path
    server: DovecotServer


@pytest.fixture
def demo_server() -> Iterator[DemoServer]:
    """A started demo Dovecot in a fresh directory (not pytest's: its 0700 parents shut Dovecot out)."""
    directory = Path(tempfile.mkdtemp(prefix="mailhelper-demo-"))
    directory.chmod(0o755)
    server = setup.start_dovecot(directory, free_port())
    try:
        yield DemoServer(directory, server)
    finally:
        server.cleanup()
        shutil.rmtree(directory, ignore_errors=True)
