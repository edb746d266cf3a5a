from django.urls import path

from . import views

app_name = "digest"

urlpatterns = [
    path("", views.digest_settings, name="settings"),
    path("test/", views.send_test, name="test"),
]
