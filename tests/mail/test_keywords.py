"""IMAP keywords through the outbox (#18): PERMANENTFLAGS per folder, set_keywords, the write-back.

The tests taking `mail_server` run on Dovecot and Cyrus (tests/plugins/imap_servers.py), the rest on Dovecot.
"""

import pytest

from mail import actions, imap
from mail.models import Message, PendingAction
from mail.sync import server_config
from tests.plugins import imap_helpers as srv
from tests.plugins.mail import make_raw, run_sync

pytestmark = pytest.mark.django_db


def test_permanentflags_of_a_real_select_and_examine(mail_server, mail_user, server_account):
    """Dovecot and Cyrus both answer SELECT with PERMANENTFLAGS (... \\*) and EXAMINE with PERMANENTFLAGS ()."""
    mail_server.deliver(mail_user, make_raw(1))
    with imap.ImapSession(server_config(server_account)) as session:
        assert session.select("INBOX", readonly=False).keywords_allowed is True
        assert session.select("INBOX", readonly=True).keywords_allowed is None  # read-only says nothing


def test_keywords_allowed_parsing():
    assert imap.keywords_allowed((b"\\Answered", b"\\Seen", b"\\*")) is True
    assert imap.keywords_allowed((b"\\Answered", b"\\Seen")) is False
    assert imap.keywords_allowed(()) is False
    assert imap.keywords_allowed(None) is True  # RFC 3501: no PERMANENTFLAGS code, every flag is kept


@pytest.mark.parametrize("value", ["Work", "mh_reply_expected", "a.b-c_d", "x[1"])
def test_valid_keywords(value):
    assert imap.is_keyword(value)


@pytest.mark.parametrize("value", ["", "two words", "a(b", "a)b", "a{b", "a%b", "a*b", 'a"b', "a\\b", "a]b", "Büro",
                                   "\\Seen", "tab\tx", "x" * 101])  # fmt: skip
def test_invalid_keywords(value):
    assert not imap.is_keyword(value)


def test_keyword_added_and_removed_on_the_server_and_recorded_per_folder(mail_server, mail_user, server_account):
    mail_server.deliver(mail_user, make_raw(1))
    run_sync(server_account)
    message = Message.objects.get()
    assert message.folder.keywords_allowed is None  # sync only EXAMINEs

    assert actions.set_keywords(message, add=["Work"]) == 1
    assert actions.set_keywords(message, add=["work"]) == 0  # case-insensitive, already there
    message.refresh_from_db()
    assert message.keywords == ["Work"]
    action = PendingAction.objects.get()
    assert (action.kind, action.keyword) == ("add_keyword", "Work")
    assert actions.write_back(server_account.pk) == (1, 0)
    assert "Work" in srv.server_flags(mail_server, mail_user)[message.uid]
    message.folder.refresh_from_db()
    assert message.folder.keywords_allowed is True

    run = run_sync(server_account)  # the keyword we wrote is no change when sync sees it
    assert run.messages_updated == 0

    assert actions.set_keywords(message, remove=["WORK"]) == 1
    message.refresh_from_db()
    assert message.keywords == []
    assert actions.write_back(server_account.pk) == (1, 0)
    assert "Work" not in srv.server_flags(mail_server, mail_user)[message.uid]


def test_nothing_queued_where_keywords_cannot_be_kept(dovecot, imap_user, mail_account):
    dovecot.deliver(imap_user, make_raw(1))
    run_sync(mail_account)
    message = Message.objects.select_related("folder", "account").get()
    message.folder.keywords_allowed = False
    message.folder.save()
    assert not actions.keywords_possible(message)
    assert actions.set_keywords(message, add=["Work"]) == 0
    assert not PendingAction.objects.exists()
    message.refresh_from_db()
    assert message.keywords == []
    with pytest.raises(ValueError):
        actions.set_keywords(message, add=["two words"])


def test_a_folder_that_refuses_keywords_closes_the_row_at_once(dovecot, imap_user, mail_account, monkeypatch):
    """The write-back's SELECT decides: a folder without \\* ends the action (no retries) and is remembered."""
    dovecot.deliver(imap_user, make_raw(1))
    run_sync(mail_account)
    message = Message.objects.get()
    actions.set_keywords(message, add=["Work"])
    real_select = imap.ImapSession.select

    def select_without_keywords(self, name, readonly=True):
        state = real_select(self, name, readonly=readonly)
        return imap.FolderState(state.uidvalidity, state.uidnext, state.highestmodseq, state.exists, False)

    monkeypatch.setattr(imap.ImapSession, "select", select_without_keywords)
    assert actions.write_back(mail_account.pk) == (0, 1)
    action = PendingAction.objects.get()
    assert action.done_at is not None and "keeps no keywords" in action.error
    message.folder.refresh_from_db()
    assert message.folder.keywords_allowed is False
    assert "Work" not in srv.server_flags(dovecot, imap_user)[message.uid]
    message.refresh_from_db()
    assert message.keywords == []  # as on the server: the next sync sees no keyword removed by another client


def test_a_keyword_given_up_after_five_attempts_is_undone_here(dovecot, imap_user, mail_account):
    dovecot.deliver(imap_user, make_raw(1))
    run_sync(mail_account)
    message = Message.objects.get()
    actions.set_keywords(message, add=["Work"])
    PendingAction.objects.update(source_uidvalidity=1, attempts=4)  # the folder "renumbered": refused each time
    assert actions.write_back(mail_account.pk) == (0, 1)
    assert PendingAction.objects.get().done_at is not None
    message.refresh_from_db()
    assert message.keywords == []
