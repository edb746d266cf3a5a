"""Environment helpers (mailhelper.env): typos stop the start, secrets come from a value or a file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from mailhelper.env import env_bool, env_choice, env_float, env_int, env_secret

ROOT = Path(__file__).resolve().parents[2]
SECRETISH = "hunter2-Pa55word"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", True), ("true", True), (" YES ", True), ("On", True), ("0", False), ("False", False), ("no", False)],
)
def test_env_bool_accepts_the_usual_spellings(monkeypatch, raw, expected):
    monkeypatch.setenv("MH_TEST_FLAG", raw)
    assert env_bool("MH_TEST_FLAG", not expected) is expected


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_env_bool_unset_or_blank_is_the_default(monkeypatch, raw):
    if raw is None:
        monkeypatch.delenv("MH_TEST_FLAG", raising=False)
    else:
        monkeypatch.setenv("MH_TEST_FLAG", raw)
    assert env_bool("MH_TEST_FLAG", True) is True
    assert env_bool("MH_TEST_FLAG", False) is False


@pytest.mark.parametrize("raw", ["ture", "enabled", "2", SECRETISH])
def test_env_bool_malformed_raises_naming_the_variable_not_the_value(monkeypatch, raw):
    monkeypatch.setenv("MH_TEST_FLAG", raw)
    with pytest.raises(ImproperlyConfigured) as info:
        env_bool("MH_TEST_FLAG", False)
    message = str(info.value)
    assert "MH_TEST_FLAG" in message
    assert "true/false" in message
    assert raw not in message


def test_env_int_and_float_parse_or_raise_without_echoing(monkeypatch):
    monkeypatch.setenv("MH_TEST_NUMBER", " 42 ")
    assert env_int("MH_TEST_NUMBER", 1) == 42
    monkeypatch.setenv("MH_TEST_NUMBER", "2.5")
    assert env_float("MH_TEST_NUMBER", 1.0) == 2.5
    monkeypatch.setenv("MH_TEST_NUMBER", "")
    assert env_int("MH_TEST_NUMBER", 7) == 7
    assert env_float("MH_TEST_NUMBER", 7.5) == 7.5
    for raw, helper in [(SECRETISH, env_int), ("2.5", env_int), (SECRETISH, env_float), ("inf", env_float)]:
        monkeypatch.setenv("MH_TEST_NUMBER", raw)
        with pytest.raises(ImproperlyConfigured, match="MH_TEST_NUMBER must be") as info:
            helper("MH_TEST_NUMBER", 1)
        assert raw not in str(info.value)


def test_env_choice_takes_one_of_its_words_or_raises_without_echoing(monkeypatch):
    modes = ("open", "invite", "closed")
    monkeypatch.setenv("MH_TEST_MODE", "")
    assert env_choice("MH_TEST_MODE", modes, "invite") == "invite"
    monkeypatch.setenv("MH_TEST_MODE", " Closed ")
    assert env_choice("MH_TEST_MODE", modes, "invite") == "closed"
    for raw in (SECRETISH, "invited", "open,closed"):
        monkeypatch.setenv("MH_TEST_MODE", raw)
        with pytest.raises(ImproperlyConfigured, match="MH_TEST_MODE must be one of open, invite, closed") as info:
            env_choice("MH_TEST_MODE", modes, "invite")
        assert raw not in str(info.value)


def test_env_secret_reads_the_value_or_the_default(monkeypatch):
    monkeypatch.delenv("MH_TEST_SECRET_FILE", raising=False)
    monkeypatch.setenv("MH_TEST_SECRET", SECRETISH)
    assert env_secret("MH_TEST_SECRET") == SECRETISH
    monkeypatch.delenv("MH_TEST_SECRET")
    assert env_secret("MH_TEST_SECRET", "fallback") == "fallback"


def test_env_secret_reads_the_file_minus_one_trailing_newline(monkeypatch, tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text(f" {SECRETISH}\n\n")
    monkeypatch.delenv("MH_TEST_SECRET", raising=False)
    monkeypatch.setenv("MH_TEST_SECRET_FILE", str(secret_file))
    assert env_secret("MH_TEST_SECRET", "fallback") == f" {SECRETISH}\n"
    # An empty inline value next to the file counts as unset (env.example's "SECRET_KEY=" line).
    monkeypatch.setenv("MH_TEST_SECRET", "")
    secret_file.write_text(SECRETISH)
    assert env_secret("MH_TEST_SECRET") == SECRETISH


def test_env_secret_with_both_forms_set_raises(monkeypatch, tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-the-file\n")
    monkeypatch.setenv("MH_TEST_SECRET", SECRETISH)
    monkeypatch.setenv("MH_TEST_SECRET_FILE", str(secret_file))
    with pytest.raises(ImproperlyConfigured, match="set one of MH_TEST_SECRET or MH_TEST_SECRET_FILE") as info:
        env_secret("MH_TEST_SECRET")
    assert SECRETISH not in str(info.value)


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_env_secret_with_an_unreadable_file_raises_naming_variable_and_path(monkeypatch, tmp_path, kind):
    path = tmp_path / "absent.secret" if kind == "missing" else tmp_path
    monkeypatch.delenv("MH_TEST_SECRET", raising=False)
    monkeypatch.setenv("MH_TEST_SECRET_FILE", str(path))
    with pytest.raises(ImproperlyConfigured) as info:
        env_secret("MH_TEST_SECRET", "fallback")
    message = str(info.value)
    assert "MH_TEST_SECRET_FILE" in message
    assert str(path) in message


def _import_settings(tmp_path, **overrides: str):
    """Import the real settings module in a fresh interpreter with the given variables."""
    env = {key: value for key, value in os.environ.items() if key not in {"SECRET_KEY", "DEBUG"}}
    env.update(MAILHELPER_ENV_FILE=str(tmp_path / "absent.env"), **overrides)
    probe = "import mailhelper.settings as s; print(s.SECRET_KEY, s.DEBUG)"
    return subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_settings_read_the_secret_key_file_and_refuse_a_misspelt_debug(tmp_path):
    key_file = tmp_path / "secret-key"
    key_file.write_text(f"{SECRETISH}\n")
    loaded = _import_settings(tmp_path, SECRET_KEY_FILE=str(key_file), DEBUG="off")
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert loaded.stdout.split() == [SECRETISH, "False"]

    refused = _import_settings(tmp_path, SECRET_KEY_FILE=str(key_file), DEBUG="ture")
    assert refused.returncode != 0
    assert "ImproperlyConfigured: DEBUG must be one of" in refused.stderr
    assert "ture" not in refused.stderr.splitlines()[-1]
