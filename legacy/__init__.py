"""Import of the legacy application's data (`manage.py import_legacy`), and its first-login conversion.

Modules: schema (the legacy tables, from SCHEMA.md), source (SQLite / PostgreSQL readers), normalize
(legacy values -> Python values, shared by the import and the checksums), mappers (one per legacy
table), rules (legacy rule JSON -> rules.spec documents), importer (orchestration, idempotency,
checksums), checksums, report (what the command prints), conversion (first login), ui (pages).

Decisions, in short (details in the modules):
- Legacy ciphertext cannot be read without the user's password, so it is imported opaque
  (LegacySealedValue) and converted at the user's first login; until then pages say "waiting for first
  login". The user gets a Mailhelper data key at import, wrapped by the sync key only; the first login
  adds the password wrap (accounts.keyring.on_password_verified). A converted value's ciphertext is
  cleared; its row stays with the ciphertext's SHA-256, so the checksums still match afterwards.
- Passwords: werkzeug hashes are accepted by accounts.hashers.WerkzeugPasswordHasher and re-hashed by
  Django on the first successful login.
- TOTP: an enabled legacy secret (base32) becomes a confirmed TOTPDevice with the same key, so the
  user's authenticator keeps working; a disabled one is not imported (the user enrols as usual).
- Recovery codes are not imported: a legacy code is a hash and cannot wrap the data key, and a code
  that passes the second factor but cannot recover the data would be a false promise. Imported users
  are told at login to make new codes (Settings), which then wrap the data key like everyone's.
- Data without a Mailhelper home (reply styles beyond the first, sender statistics, the tag-name
  suggestion queue, per-message extras such as Bcc or translations) is kept per legacy row in
  LegacyRecord, encrypted with the owner's key: reported, never silently dropped. Only derived data
  the legacy made for its own AI (embeddings, pseudonymised copies) is not carried over; the report
  counts it.
"""
