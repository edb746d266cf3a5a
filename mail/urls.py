from django.urls import path

from .views import accounts, analysis, drafts, messages, search, similar, threads

app_name = "mail"

urlpatterns = [
    path("", messages.message_list, name="list"),
    path("accounts/", accounts.account_list, name="accounts"),
    path("accounts/add/", accounts.account_add, name="account-add"),
    path("accounts/<uuid:account_id>/edit/", accounts.account_edit, name="account-edit"),
    path("accounts/<uuid:account_id>/delete/", accounts.account_delete, name="account-delete"),
    path("accounts/<uuid:account_id>/test/", accounts.account_test, name="account-test"),
    path("accounts/<uuid:account_id>/folders/", accounts.account_folders, name="account-folders"),
    path("accounts/<uuid:account_id>/sync/", accounts.sync_now, name="sync-now"),
    path("sync-runs/<int:run_id>/", accounts.sync_run, name="sync-run"),
    path("a/<uuid:account_id>/", messages.message_list, name="account-messages"),
    path("a/<uuid:account_id>/f/<int:folder_id>/", messages.message_list, name="folder-messages"),
    path("messages/bulk/", messages.bulk_action, name="bulk-action"),
    path("messages/<uuid:message_id>/", messages.message_detail, name="message"),
    path("messages/<uuid:message_id>/action/", messages.message_action, name="message-action"),
    path("messages/<uuid:message_id>/conversation/", threads.conversation, name="conversation"),
    path("messages/<uuid:message_id>/similar/", similar.similar_messages, name="similar"),
    path("messages/<uuid:message_id>/cid/<path:cid>", messages.message_cid, name="message-cid"),
    path("messages/<uuid:message_id>/reply/", drafts.start, name="reply"),
    path("drafts/", drafts.draft_list, name="drafts"),
    path("drafts/<uuid:draft_id>/", drafts.compose, name="draft"),
    path("drafts/<uuid:draft_id>/status/", drafts.draft_status, name="draft-status"),
    path("drafts/<uuid:draft_id>/delete/", drafts.draft_delete, name="draft-delete"),
    path("settings/replies/", drafts.reply_settings, name="reply-settings"),
    path("attachments/<uuid:attachment_id>/", messages.attachment_download, name="attachment"),
    path("dashboard/", analysis.dashboard, name="dashboard"),
    path("search/", search.search_page, name="search"),
    path("messages/<uuid:message_id>/correct/", analysis.correct, name="correct"),
    path("messages/<uuid:message_id>/done/", analysis.mark_done, name="done"),
    path("settings/analysis/", analysis.analysis_settings, name="analysis-settings"),
    path("settings/analysis/test/", analysis.provider_test, name="provider-test"),
    path("settings/analysis/reset/", analysis.reset_learning, name="reset-learning"),
    path("settings/analysis/reanalyse/", analysis.start_reanalyse, name="reanalyse"),
    path("jobs/<int:job_id>/", analysis.job_progress, name="job"),
    path("trusted-senders/", analysis.trusted_senders, name="trusted-senders"),
    path("trusted-senders/<int:pk>/delete/", analysis.trusted_sender_delete, name="trusted-sender-delete"),
]
