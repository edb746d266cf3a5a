from django.urls import path

from . import views

app_name = "tags"

urlpatterns = [
    path("", views.tag_list, name="list"),
    path("settings/", views.tag_settings, name="settings"),
    path("<int:tag_id>/", views.tag_edit, name="edit"),
    path("<int:tag_id>/delete/", views.tag_delete, name="delete"),
    path("apply/", views.tag_messages, name="apply"),
    path("suggestions/", views.suggestion_queue, name="suggestions"),
    path("suggestions/decide/", views.decide, name="decide"),
]
