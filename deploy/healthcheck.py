#!/usr/bin/env python3
"""Probe Mailhelper's /healthz on the local gunicorn: exit 0 on HTTP 200, 1 otherwise.

Used by the compose healthcheck of the web service; also handy from cron or a monitoring agent:

    python3 deploy/healthcheck.py [URL]      # default http://127.0.0.1:8000/healthz

The request looks like one forwarded by nginx, so that production settings accept it:
- Host is the first usable ALLOWED_HOSTS entry (Django answers 400 to an unknown Host);
- X-Forwarded-Proto: https, so SECURE_SSL_REDIRECT does not answer with a redirect
  (gunicorn trusts it from 127.0.0.1, which is in FORWARDED_ALLOW_IPS);
- X-Real-IP, in case RATELIMIT_IP_META_KEY=HTTP_X_REAL_IP is consulted.
Standard library only; redirects are not followed (a 3xx is a failure).
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def _host() -> str:
    for entry in os.environ.get("ALLOWED_HOSTS", "localhost").split(","):
        entry = entry.strip().lstrip(".")  # ".example.com" also matches "example.com"
        if entry and "*" not in entry:
            return entry
    return "localhost"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def main() -> int:
    url = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("HEALTHCHECK_URL", "http://127.0.0.1:8000/healthz")
    if not url.startswith(("http://", "https://")):
        print(f"healthcheck: refusing non-http URL {url!r}", file=sys.stderr)
        return 1
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        url, headers={"Host": _host(), "X-Forwarded-Proto": "https", "X-Real-IP": "127.0.0.1"}
    )
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=5) as response:
            status, body = response.status, response.read(2048)
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read(2048)
    except OSError as exc:
        print(f"healthcheck: {url}: {exc}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"healthcheck: {url}: HTTP {status} {body[:500].decode(errors='replace')}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
