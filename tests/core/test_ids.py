"""Ids from request data (core/ids.py): a malformed one is dropped, not passed to a query."""

import uuid

from core.ids import clean_id, clean_ids
from core.models import Job
from mail.models import Message


def test_integer_and_uuid_keys_keep_the_valid_values_converted():
    key = uuid.uuid4()
    assert clean_ids(Job, ["7", "1' OR 1=1", "", "x"]) == [7]
    assert clean_ids(Message, [str(key), "1", "not-an-id"]) == [key]


def test_one_id_is_none_when_missing_or_malformed():
    assert clean_id(Job, "12") == 12
    assert clean_id(Job, None) is None and clean_id(Job, "") is None and clean_id(Job, "12abc") is None
