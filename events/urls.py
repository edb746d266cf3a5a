from django.urls import path

from . import views

app_name = "events"

urlpatterns = [
    path("<uuid:event_id>/answer/", views.answer_event, name="answer"),
]
