from django.urls import path

from . import views

app_name = "rules"

urlpatterns = [
    path("", views.rule_list, name="list"),
    path("new/", views.rule_edit, name="new"),
    path("from-template/", views.rule_from_template, name="from-template"),
    path("<int:rule_id>/", views.rule_edit, name="edit"),
    path("<int:rule_id>/delete/", views.rule_delete, name="delete"),
    path("<int:rule_id>/move/", views.rule_move, name="move"),
    path("<int:rule_id>/toggle/", views.rule_toggle, name="toggle"),
    path("<int:rule_id>/test/", views.rule_dry_run, name="dry-run"),
    path("<int:rule_id>/run/", views.rule_run, name="run"),
    path("<int:rule_id>/log/", views.rule_log, name="log"),
]
