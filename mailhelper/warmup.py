"""Work a web process does once at start instead of inside its first requests.

Django imports the URLconf, and with it every view module and what they import (the learned
classifier pulls in scikit-learn and SciPy: ~2.5 s), on the first request, and compiles each
template on its first use. In a threaded gunicorn worker that import holds the GIL, so every request
the new worker has accepted waits with it: after each start and each max_requests recycle, people
saw pages take seconds (bench/load.py showed list pages of 5-14 s in such clusters).
"""

from __future__ import annotations

import gc
import logging
import time

from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.urls import get_resolver

log = logging.getLogger(__name__)

# The pages people open most; each is compiled once per process by the cached template loader.
BUSY_TEMPLATES = (
    "base.html",
    "mail/message_list.html",
    "mail/message_detail.html",
    "mail/dashboard.html",
    "mail/search.html",
)


def warm_up() -> float:
    """Import every view, compile the busiest templates and freeze what is loaded; returns the seconds."""
    started = time.perf_counter()
    get_resolver().reverse_dict  # noqa: B018 - imports the URLconf and every view, builds the reverse map
    for name in BUSY_TEMPLATES:
        try:
            get_template(name)
        except TemplateDoesNotExist:  # a renamed template must not stop the web from starting
            log.warning("warm-up: template %s not found", name)
    # Everything loaded so far lives as long as the process: moved out of the collector's view,
    # full collections no longer walk it (they paused requests ~40 ms, bench/search_latency saw).
    gc.freeze()
    elapsed = time.perf_counter() - started
    log.info("web process warmed up in %.2f s", elapsed)
    return elapsed
