from django.urls import path

from . import views

app_name = "newsletters"

urlpatterns = [
    path("", views.newsletter_list, name="list"),
    path("unsubscribe/", views.newsletter_unsubscribe, name="unsubscribe"),
]
