"""A web process is warm before its first request (views imported, busy templates compiled)."""

import json
import subprocess
import sys

from tests.plugins.celery_worker import ROOT, service_env

PROBE = """
import gc, json, sys
import mailhelper.wsgi  # what gunicorn loads in each worker
from django.template import engines
loader = engines["django"].engine.template_loaders[0]
print(json.dumps({
    "views": [m for m in ("mail.views.messages", "analysis.views.triage", "rules.views") if m in sys.modules],
    "frozen": gc.get_freeze_count(),
    "cached_templates": sorted(name for name in ("base.html", "mail/message_list.html")
                               if any(name in str(key) for key in loader.get_template_cache)),
}))
"""


def test_importing_the_wsgi_application_loads_the_views_and_templates():
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=service_env(), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["views"] == ["mail.views.messages", "analysis.views.triage", "rules.views"]
    assert loaded["cached_templates"] == ["base.html", "mail/message_list.html"]
    assert loaded["frozen"] > 100_000  # the loaded app is out of the garbage collector's way
