from django.contrib import admin
from django.urls import include, path

import analysis.urls
import mail.urls

from . import views

# One URL namespace for the mail pages, whichever app serves them: a page that moves between apps
# (to the lowest app that holds what it shows) keeps its URL and its name.
mail_pages = (mail.urls.urlpatterns + analysis.urls.urlpatterns, "mail")

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics, name="metrics"),
    path("ops/", views.operations_page, name="operations"),
    path("accounts/settings/export/", views.export_data, name="export-data"),
    path("accounts/", include("accounts.urls")),
    path("mail/", include(mail_pages)),
    path("jobs/", include("core.urls")),
    path("tags/", include("tags.urls")),
    path("events/", include("events.urls")),
    path("rules/", include("rules.urls")),
    path("newsletters/", include("newsletters.urls")),
    path("digest/", include("digest.urls")),
    # The admin has no login of its own: it would skip the second factor.
    path("admin/login/", views.admin_login),
    path("admin/", admin.site.urls),
]
