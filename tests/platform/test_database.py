"""The database backend: server-side binding, with batches under PostgreSQL's parameter limit."""

from django.db import connection


def test_bulk_operations_are_batched_under_the_parameter_limit():
    assert connection.settings_dict["OPTIONS"]["server_side_binding"] is True
    assert connection.ops.bulk_batch_size(["id"], list(range(100_000))) < 65_535
    assert connection.ops.bulk_batch_size(["a", "b", "c"], list(range(100_000))) * 3 < 65_535
