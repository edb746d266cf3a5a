"""The analysis app's pages; they share the "mail" URL namespace with mail/urls.py (mailhelper/urls.py)."""

from django.urls import path

from .views import inbox, search, similar, threads, translation, triage

urlpatterns = [
    path("", inbox.message_list, name="list"),
    path("a/<uuid:account_id>/", inbox.message_list, name="account-messages"),
    path("a/<uuid:account_id>/f/<int:folder_id>/", inbox.message_list, name="folder-messages"),
    path("messages/<uuid:message_id>/", inbox.message_detail, name="message"),
    path("messages/<uuid:message_id>/conversation/", threads.conversation, name="conversation"),
    path("messages/<uuid:message_id>/similar/", similar.similar_messages, name="similar"),
    path("dashboard/", triage.dashboard, name="dashboard"),
    path("search/", search.search_page, name="search"),
    path("messages/<uuid:message_id>/correct/", triage.correct, name="correct"),
    path("messages/<uuid:message_id>/done/", triage.mark_done, name="done"),
    path("messages/<uuid:message_id>/translate/", translation.translate_message, name="translate"),
    path("settings/analysis/translation/", translation.translation_settings, name="translation-settings"),
    path("settings/analysis/", triage.analysis_settings, name="analysis-settings"),
    path("settings/analysis/test/", triage.provider_test, name="provider-test"),
    path("settings/analysis/reset/", triage.reset_learning, name="reset-learning"),
    path("settings/analysis/reanalyse/", triage.start_reanalyse, name="reanalyse"),
    path("trusted-senders/", triage.trusted_senders, name="trusted-senders"),
    path("trusted-senders/<int:pk>/delete/", triage.trusted_sender_delete, name="trusted-sender-delete"),
]
