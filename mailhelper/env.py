"""Reading settings from the environment: strict types, and secrets from files.

settings.py reads every variable through these helpers, so a typo stops the process at start
instead of quietly choosing a default: DEBUG=ture used to read as False, and a production server
then ran with whatever "False" meant for that setting. The rules:

- Unset, empty or all-whitespace means "use the default" (env.example leaves optional lines
  commented out, and compose passes `-e X=` to blank a variable).
- Booleans accept 1/0, true/false, yes/no, on/off (any case, surrounding whitespace ignored);
  numbers must parse as numbers; a mode (`env_choice`) must be one of its words (any case).
  Anything else raises ImproperlyConfigured.
- A secret X can instead be read from the file named by X_FILE (Docker/compose secrets, systemd
  LoadCredential): its content minus one trailing newline. Setting both X and X_FILE is an error,
  so that no one has to remember which of the two wins.

Error messages name the variable and what it accepts but never echo its value: a value in the
wrong variable may well be a password, and start-up errors end up in logs and journals.

Nothing here imports Django settings; only ImproperlyConfigured, Django's error for a broken
configuration, which manage.py and the WSGI server report as such.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_BOOL_CHOICES = "1/0, true/false, yes/no or on/off"


def _raw(name: str) -> str | None:
    """The variable's value stripped of surrounding whitespace, or None when unset or blank."""
    value = os.environ.get(name, "").strip()
    return value or None


def env(name: str, default: str | None = None) -> str | None:
    """A plain string setting, as given (unlike the typed helpers, an empty value is kept)."""
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    """A yes/no setting; a value that is none of the accepted spellings stops the start."""
    raw = _raw(name)
    if raw is None:
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be one of {_BOOL_CHOICES} (or unset for the default)")


def env_int(name: str, default: int) -> int:
    """A whole-number setting (seconds, counts, sizes)."""
    raw = _raw(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, e.g. 30 (or unset for the default)") from None


def env_float(name: str, default: float) -> float:
    """A number setting that may have decimals (timeouts); inf and nan are refused like any typo."""
    raw = _raw(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ImproperlyConfigured(f"{name} must be a number, e.g. 30 or 2.5 (or unset for the default)")
    return value


def env_choice(name: str, choices: tuple[str, ...], default: str) -> str:
    """One word out of a fixed set (a mode), in any case; any other value stops the start."""
    raw = _raw(name)
    if raw is None:
        return default
    if raw.lower() in choices:
        return raw.lower()
    raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)} (or unset for the default {default})")


def env_list(name: str, default: str) -> list[str]:
    """A comma-separated list; blank items are dropped."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_secret(name: str, default: str | None = None) -> str | None:
    """A secret from `name` or from the file `name_FILE` names, never both.

    The file is read when the settings load, so a missing or unreadable file fails the start
    (naming the variable and the path, which is not secret) rather than the first request.
    One trailing newline is dropped because `echo secret > file` and most editors add it;
    anything else in the file, inner or leading whitespace included, is part of the secret.
    """
    file_variable = f"{name}_FILE"
    inline = os.environ.get(name, "")
    path = os.environ.get(file_variable, "").strip()
    if path and inline.strip():
        raise ImproperlyConfigured(f"set one of {name} or {file_variable}, not both")
    if not path:
        return inline if inline.strip() else default
    try:
        content = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ImproperlyConfigured(
            f"{file_variable} points to {path!r}, which cannot be read ({exc.strerror or type(exc).__name__})"
        ) from None
    except UnicodeDecodeError:
        raise ImproperlyConfigured(f"{file_variable} points to {path!r}, which is not UTF-8 text") from None
    for newline in ("\r\n", "\n"):
        if content.endswith(newline):
            return content[: -len(newline)]
    return content
