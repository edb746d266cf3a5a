"""What mail tells the floors above it (analysis) and its own task module, neither of which its services import.

- `messages_stored`: sent inside the transaction that stores a batch of new messages, with those
  (saved) messages. A receiver writes in that transaction, so its rows exist exactly when the
  messages do: analysis queues each message here, and a lost task can delay it but never skip it.
- `keywords_changed`: sent by the sync inside the transaction that stores flags it found changed
  on the server, with owner_id and changes: [(message, old keywords, new keywords)] for the
  messages whose keywords (flags without a backslash) differ from what was held. Messages with a
  change of ours still pending are never in it (sync leaves them alone), nor keywords we set
  ourselves (Message.keywords holds them before the server does). tags reads them back as tags.
- `new_mail_synced`: sent by the sync task after a successful sync that stored new messages, with
  the account id; during a long sync also after its first committed batch and then every thousand
  messages (sync.announce_new_mail), and by the background fetch of older mail after its batches.
  Receivers queue follow-up work (analysis); they must only queue, never work, and expect it often.
- `server_mail_changed`: sent by the IDLE watcher (mail/idle.py) when the server announces new,
  expunged or changed mail in a watched folder, with the account id. mail.tasks queues a sync,
  debounced: receivers must only queue, and expect a burst of these for one delivery.
- `outbox_changed`: sent by mail.actions after the commit of a transaction in which it queued
  PendingActions, with the account id (possibly several times for one commit: receivers coalesce).
  mail.tasks queues the write-back here, so services never import tasks and no caller has to
  remember to queue it.
"""

from django.dispatch import Signal

messages_stored = Signal()  # kwargs: messages: list[Message]
new_mail_synced = Signal()  # kwargs: account_id: str
keywords_changed = Signal()  # kwargs: owner_id: int, changes: list[tuple[Message, list[str], list[str]]]
outbox_changed = Signal()  # kwargs: account_id: str
server_mail_changed = Signal()  # kwargs: account_id: str
