"""One mapper per legacy table: which Mailhelper rows a legacy row becomes, and back for the checksums.

The contract is in base.Mapper; the mappers are grouped by domain (users, mail, analysis, tags, rules).
MAPPERS is the import order: every table after the tables its foreign keys point to.
"""

from .analysis import ProcessedEmails
from .base import IMPORTED_TOTP_NAME, WAITING_MESSAGE, Mapper
from .mail import Attachments, EmailFolders, MailAccounts, RawEmails, ReplyStyles, ServerState, TrustedSenders
from .rules import AutoRules, RuleLogs
from .tags import EmailTags, SenderPatterns, TagAssignments, TagNegativeExamples, TagSuggestionQueue
from .users import RecoveryCodes, Users

MAPPERS: list[Mapper] = [
    Users(),
    MailAccounts(),
    EmailFolders(),
    RawEmails(),
    ServerState(),
    Attachments(),
    ProcessedEmails(),
    EmailTags(),
    TagAssignments(),
    TagSuggestionQueue(),
    TagNegativeExamples(),
    SenderPatterns(),
    TrustedSenders(),
    AutoRules(),
    RuleLogs(),
    ReplyStyles(),
    RecoveryCodes(),
]

__all__ = ["IMPORTED_TOTP_NAME", "MAPPERS", "WAITING_MESSAGE", "Mapper"]
