"""The legacy application's tables, as ../shared/legacy/SCHEMA.md declares them.

Kept here as data (the spec's own lines) so that one table drives everything that needs the schema:
the dry-run's "schema present" check, the type of each column when it is normalised (SQLite stores
booleans as 0/1 and timestamps as text; PostgreSQL as bool and timestamp), and the tests, which
build a legacy SQLite file from the same declaration.

Columns the spec leaves untyped ("salt;", "updated_at") get a type from their name; see _infer().
"""

from __future__ import annotations

import re
from dataclasses import dataclass

INTEGER, TEXT, DATETIME, DATE, BOOLEAN, FLOAT, BINARY, ENCRYPTED = (
    "integer",
    "text",
    "datetime",
    "date",
    "boolean",
    "float",
    "binary",
    "encrypted",
)

_SPEC: dict[str, str] = {
    "users": (
        "id Integer [pk]; username String(80) [unique]; email String(255) [unique]; "
        "password_hash String(255); failed_login_attempts Integer; locked_until DateTime; "
        "last_failed_login DateTime; salt; encrypted_dek Text; encrypted_master_key; totp_secret String(32); "
        "totp_enabled Boolean; preferred_embedding_provider String(20); preferred_embedding_model; "
        "preferred_ai_provider String(20); preferred_ai_model; preferred_ai_provider_optimize String(20); "
        "preferred_ai_model_optimize; fetch_mails_per_folder Integer; fetch_max_total Integer; "
        "fetch_use_delta_sync Boolean; imap_diagnostics_enabled Boolean; "
        "enable_tag_suggestion_queue Boolean; enable_auto_assignment Boolean; enable_auto_fetch Boolean; "
        "urgency_booster_enabled Boolean; prefer_personal_classifier Boolean; created_at DateTime; "
        "updated_at"
    ),
    "mail_accounts": (
        "id Integer [pk]; user_id Integer [-> users.id]; name String(100); auth_type String(20); "
        "encrypted_imap_server Text; imap_server_hash String(64); imap_port Integer; "
        "encrypted_imap_username Text; imap_username_hash String(64); encrypted_imap_password Text; "
        "imap_encryption String(50); encrypted_smtp_server Text; smtp_port Integer; "
        "encrypted_smtp_username Text; encrypted_smtp_password Text; smtp_encryption String(50); "
        "oauth_provider String(20); encrypted_oauth_token Text; encrypted_oauth_refresh_token Text; "
        "oauth_expires_at DateTime; encrypted_pop3_server Text; pop3_port Integer; "
        "encrypted_pop3_username Text; encrypted_pop3_password Text; enabled Boolean; "
        "last_fetch_at DateTime; initial_sync_done Boolean; created_at DateTime; fetch_since_date Date; "
        "fetch_unseen_only Boolean; fetch_include_folders Text; fetch_exclude_folders Text; "
        "folder_uidvalidity Text; detected_provider String(50); server_name String(255); "
        "server_version String(100); signature_enabled Boolean; encrypted_signature_text Text; "
        "urgency_booster_enabled Boolean; enable_ai_analysis_on_fetch Boolean; last_server_sync_at DateTime; "
        "anonymize_with_spacy Boolean; ai_analysis_anon_enabled Boolean; "
        "ai_analysis_original_enabled Boolean"
    ),
    "mail_server_state": (
        "id Integer [pk]; user_id Integer [-> users.id]; mail_account_id Integer [-> mail_accounts.id]; "
        "folder Text; uid Integer; uidvalidity Integer; message_id Text; content_hash Text; "
        "envelope_from Text; envelope_subject Text; envelope_date DateTime; flags Text; "
        "raw_email_id Integer [-> raw_emails.id]; is_deleted Boolean; first_seen_at DateTime; "
        "last_seen_at DateTime"
    ),
    "raw_emails": (
        "id Integer [pk]; user_id Integer [-> users.id]; mail_account_id; encrypted_sender Text; "
        "encrypted_subject Text; encrypted_body Text; received_at DateTime; created_at DateTime; "
        "deleted_at DateTime; imap_uid Integer; imap_folder String(200); imap_uidvalidity Integer; "
        "imap_flags String(500); imap_last_seen_at DateTime; message_id String(512); "
        "encrypted_in_reply_to Text; parent_uid String(255); thread_id String(36); imap_is_seen Boolean; "
        "imap_is_answered Boolean; imap_is_flagged Boolean; imap_is_deleted Boolean; imap_is_draft Boolean; "
        "encrypted_to Text; encrypted_cc Text; encrypted_bcc Text; encrypted_reply_to Text; "
        "message_size Integer; encrypted_references Text; content_type String(100); charset String(50); "
        "has_attachments Boolean; last_flag_sync_at DateTime; email_embedding LargeBinary; "
        "embedding_model String(50); embedding_generated_at DateTime; auto_rules_processed Boolean; "
        "encrypted_subject_sanitized Text; encrypted_body_sanitized Text; sanitization_level Integer; "
        "sanitization_time_ms Float; sanitization_entities_count Integer; encrypted_entity_map Text; "
        "encrypted_inline_attachments Text; stable_identifier String(512); content_hash String(64); "
        "is_calendar_invite Boolean; calendar_method String(20); encrypted_calendar_data Text; "
        "detected_language String(5); encrypted_translation_de Text; translation_engine String(30); "
        "translation_completed_at DateTime; ai_classification_completed_at DateTime; "
        "auto_rules_completed_at DateTime; processing_status Integer; processing_retry_count Integer; "
        "processing_error Text; processing_warnings postgresql; processing_last_attempt_at DateTime"
    ),
    "email_attachments": (
        "id Integer [pk]; raw_email_id Integer [-> raw_emails.id]; filename String(255); "
        "mime_type String(100); size Integer; content_id String(255); encrypted_data Text; "
        "s3_bucket String(100); s3_key String(512); created_at DateTime"
    ),
    "processed_emails": (
        "id Integer [pk]; raw_email_id; dringlichkeit Integer; wichtigkeit Integer; kategorie_aktion; "
        "spam_flag Boolean; encrypted_summary_de Text; encrypted_text_de Text; encrypted_tags Text; "
        "encrypted_correction_note Text; score Integer; matrix_x Integer; matrix_y Integer; "
        "farbe String(10); done Boolean; done_at DateTime; processed_at DateTime; rebase_at DateTime; "
        "updated_at; deleted_at DateTime; optimization_status String(20); optimization_tried_at DateTime; "
        "optimization_completed_at DateTime; base_provider String(50); base_model String(100); "
        "optimize_provider String(50); optimize_model String(100); analysis_method String(50); "
        "ai_confidence Float; optimize_dringlichkeit Integer; optimize_wichtigkeit Integer; "
        "optimize_kategorie_aktion String(50); optimize_spam_flag Boolean; "
        "optimize_encrypted_summary_de Text; optimize_encrypted_text_de Text; optimize_encrypted_tags Text; "
        "optimize_score Integer; optimize_matrix_x Integer; optimize_matrix_y Integer; "
        "optimize_farbe String(10); optimize_confidence Float; user_override_dringlichkeit; "
        "user_override_wichtigkeit; user_override_kategorie String(50); user_override_spam_flag Boolean; "
        "user_override_tags; correction_timestamp DateTime; imap_flags_at_processing String(500); "
        "was_seen_at_processing Boolean; was_answered_at_processing Boolean; used_model_source String(20)"
    ),
    "email_folders": (
        "id Integer [pk]; user_id; mail_account_id; name String(255); imap_path String(500); "
        "unread_count Integer; total_count Integer; created_at DateTime; updated_at; "
        "is_special_folder Boolean; special_folder_type String(50); display_name_localized String(255)"
    ),
    "email_tags": (
        "id Integer [pk]; name String(50); color String(20); user_id Integer [-> users.id]; "
        "created_at DateTime; description Text; learned_embedding LargeBinary; "
        "learned_embedding_model String(50); embedding_updated_at DateTime; negative_embedding LargeBinary; "
        "negative_embedding_model String(50); negative_updated_at DateTime; negative_count Integer"
    ),
    "email_tag_assignments": (
        "id Integer [pk]; email_id Integer [-> processed_emails.id]; tag_id Integer [-> email_tags.id]; "
        "assigned_at DateTime; auto_assigned Boolean"
    ),
    "tag_suggestion_queue": (
        "id Integer [pk]; user_id Integer [-> users.id]; suggested_name String(50); "
        "source_email_id Integer [-> processed_emails.id]; created_at DateTime; status String(20); "
        "merged_into_tag_id Integer [-> email_tags.id]; suggestion_count Integer"
    ),
    "tag_negative_examples": (
        "id Integer [pk]; tag_id Integer [-> email_tags.id]; email_id Integer [-> processed_emails.id]; "
        "negative_embedding LargeBinary; created_at DateTime; rejection_source String(20)"
    ),
    "sender_patterns": (
        "id Integer [pk]; user_id Integer [-> users.id]; sender_hash String(64); category String(50); "
        "priority Integer; is_newsletter Boolean; email_count Integer; correction_count Integer; "
        "confidence Integer; created_at DateTime; updated_at DateTime"
    ),
    "trusted_senders": (
        "id Integer [pk]; user_id Integer [-> users.id]; account_id Integer [-> mail_accounts.id]; "
        "sender_pattern String(255); pattern_type String(20); label String(100); "
        "use_urgency_booster Boolean; added_at DateTime; last_seen_at DateTime; email_count Integer"
    ),
    "auto_rules": (
        "id Integer [pk]; user_id Integer [-> users.id]; name String(100); description Text; "
        "is_active Boolean; priority Integer; conditions_json Text; actions_json Text; "
        "enable_learning Boolean; times_triggered Integer; last_triggered_at DateTime; created_at DateTime; "
        "updated_at DateTime"
    ),
    "rule_execution_logs": (
        "id Integer [pk]; user_id Integer [-> users.id]; mail_account_id Integer [-> mail_accounts.id]; "
        "rule_id Integer [-> auto_rules.id]; processed_email_id Integer [-> processed_emails.id]; "
        "executed_at DateTime; success Boolean; error_message Text; action_type String(50)"
    ),
    "reply_style_settings": (
        "id Integer [pk]; user_id Integer [-> users.id]; style_key String(20); address_form String(10); "
        "salutation String(100); closing String(100); signature_enabled Boolean; "
        "encrypted_signature_text Text; encrypted_custom_instructions Text; created_at DateTime; "
        "updated_at DateTime"
    ),
    "recovery_codes": (
        "id Integer [pk]; user_id Integer [-> users.id]; code_hash String(255) [unique]; used_at DateTime; "
        "created_at DateTime"
    ),
}

# Untyped or oddly typed columns of the spec, typed by what they hold.
_OVERRIDES: dict[tuple[str, str], str] = {
    ("users", "salt"): TEXT,
    ("users", "encrypted_master_key"): ENCRYPTED,
    ("raw_emails", "processing_warnings"): TEXT,  # declared "postgresql" (a JSON column there)
    ("raw_emails", "mail_account_id"): INTEGER,
    ("processed_emails", "raw_email_id"): INTEGER,
    ("processed_emails", "kategorie_aktion"): TEXT,
    ("processed_emails", "user_override_dringlichkeit"): INTEGER,
    ("processed_emails", "user_override_wichtigkeit"): INTEGER,
    ("processed_emails", "user_override_tags"): TEXT,
    ("email_folders", "user_id"): INTEGER,
    ("email_folders", "mail_account_id"): INTEGER,
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    declared: str  # the spec's type text, for DDL in tests ("String(80)", "" when untyped)
    references: str | None = None  # "users" for "[-> users.id]"


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]

    def column(self, name: str) -> Column:
        return _BY_NAME[(self.name, name)]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


_COLUMN = re.compile(r"^(?P<name>\w+)(?:\s+(?P<type>[A-Za-z]+(?:\(\d+\))?))?(?P<rest>.*)$")
_REF = re.compile(r"\[->\s*(\w+)\.id\]")


def _infer(table: str, name: str, declared: str) -> str:
    if (table, name) in _OVERRIDES:
        return _OVERRIDES[(table, name)]
    if name.startswith("encrypted_") or "_encrypted_" in name:
        return ENCRYPTED
    base = declared.split("(")[0]
    if base in ("Integer",):
        return INTEGER
    if base in ("String", "Text"):
        return TEXT
    if base == "DateTime":
        return DATETIME
    if base == "Date":
        return DATE
    if base == "Boolean":
        return BOOLEAN
    if base == "Float":
        return FLOAT
    if base == "LargeBinary":
        return BINARY
    if name.endswith("_at"):
        return DATETIME
    if name.endswith("_id") or name == "id":
        return INTEGER
    return TEXT


def _parse() -> dict[str, Table]:
    tables = {}
    for table, spec in _SPEC.items():
        columns = []
        for part in spec.split(";"):
            match = _COLUMN.match(part.strip())
            if match is None or not match.group("name"):
                continue
            name, declared = match.group("name"), match.group("type") or ""
            if declared == "postgresql":
                declared = ""
            ref = _REF.search(match.group("rest") or "")
            columns.append(Column(name, _infer(table, name, declared), declared, ref.group(1) if ref else None))
        tables[table] = Table(table, tuple(columns))
    return tables


TABLES: dict[str, Table] = _parse()
_BY_NAME: dict[tuple[str, str], Column] = {(t.name, c.name): c for t in TABLES.values() for c in t.columns}
