"""Extension point: what happens to mail after it is analysed (tag suggestions, rules).

Sent once per owner and batch, after the analyses are committed, with the analysed messages.
Receivers must be idempotent: a redelivered task may send the same messages again.
"""

from django.dispatch import Signal

messages_analysed = Signal()  # kwargs: owner_id: int, messages: list[Message]
