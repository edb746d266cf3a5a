"""PostgreSQL backend with server-side parameter binding made safe for large mailboxes.

Server-side binding sends parameters apart from the SQL (binary bytea instead of hex-escaped
literals), which makes storing encrypted mail ~20% faster. But PostgreSQL accepts at most 65,535
parameters per statement, and Django's PostgreSQL backend does not batch for that (with the default
client-side binding it never had to): deleting an account with 100,000 messages would fail in the
cascade's related-object lookups. This backend batches like the databases that have such a limit.
"""

from django.db.backends.postgresql import base, operations

MAX_PARAMETERS = 65_535


class DatabaseOperations(operations.DatabaseOperations):
    def bulk_batch_size(self, fields, objs):
        return max(1, MAX_PARAMETERS // max(len(fields), 1) - 1)


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations
