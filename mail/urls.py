from django.urls import path

from .views import accounts, drafts, messages, oauth

# Served in the "mail" URL namespace together with analysis/urls.py (see mailhelper/urls.py).

urlpatterns = [
    path("accounts/", accounts.account_list, name="accounts"),
    path("accounts/add/", accounts.account_add, name="account-add"),
    path("accounts/sign-in/", oauth.oauth_start, name="oauth-start"),
    path("oauth/callback/", oauth.oauth_callback, name="oauth_callback"),
    path("accounts/<uuid:account_id>/edit/", accounts.account_edit, name="account-edit"),
    path("accounts/<uuid:account_id>/delete/", accounts.account_delete, name="account-delete"),
    path("accounts/<uuid:account_id>/test/", accounts.account_test, name="account-test"),
    path("accounts/<uuid:account_id>/folders/", accounts.account_folders, name="account-folders"),
    path("accounts/<uuid:account_id>/sync/", accounts.sync_now, name="sync-now"),
    path("accounts/<uuid:account_id>/older-mail/", accounts.account_backfill, name="account-backfill"),
    path("sync-runs/<int:run_id>/", accounts.sync_run, name="sync-run"),
    path("messages/bulk/", messages.bulk_action, name="bulk-action"),
    path("messages/<uuid:message_id>/action/", messages.message_action, name="message-action"),
    path("messages/<uuid:message_id>/snooze/", messages.snooze_action, name="snooze"),
    path("messages/<uuid:message_id>/cid/<path:cid>", messages.message_cid, name="message-cid"),
    path("messages/<uuid:message_id>/reply/", drafts.start, name="reply"),
    path("drafts/", drafts.draft_list, name="drafts"),
    path("drafts/new/", drafts.new_message, name="new-message"),
    path("drafts/addresses/", drafts.address_completions, name="address-completions"),
    path("drafts/<uuid:draft_id>/", drafts.compose, name="draft"),
    path("drafts/<uuid:draft_id>/status/", drafts.draft_status, name="draft-status"),
    path("drafts/<uuid:draft_id>/delete/", drafts.draft_delete, name="draft-delete"),
    path(
        "drafts/<uuid:draft_id>/attachments/<uuid:upload_id>/",
        drafts.attachment_download,
        name="draft-attachment",
    ),
    path("settings/replies/", drafts.reply_settings, name="reply-settings"),
    path("attachments/<uuid:attachment_id>/", messages.attachment_download, name="attachment"),
]
