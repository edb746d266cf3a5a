"""Subjects that say nothing about the conversation, so they must never link two messages.

Threading falls back to the subject when headers are missing (mail/threading_keys.py): mail
without any Message-ID is keyed by its normalised subject, and a header-less reply ("Re: Budget",
no In-Reply-To, no References) joins the conversation of its subject. For an empty or placeholder
subject that fallback groups strangers: a real MIME corpus showed 13 unrelated id-less messages
(empty subject, "(no subject)") as one conversation. Such messages are conversations of their own.

This module imports nothing from the parser, so that the parser (which owns `normalize_subject`)
and threading_keys (which imports the parser) can both use it without an import circle.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[^\W_]+")
#: What mail clients and gateways put in place of a missing subject, as words joined by one space
#: (brackets and punctuation are dropped before comparing: "(no subject)", "[No Subject]", "<no-subject>").
PLACEHOLDERS = frozenset(
    {
        # a reply or forward prefix without the colon normalize_subject needs: "Re", "FWD"
        "re", "fw", "fwd", "aw", "wg", "sv", "tr", "antw", "odp",
        "no subject", "nosubject", "without subject", "untitled", "no title", "none", "null",
        "kein betreff", "ohne betreff", "kein titel",  # de
        "sans objet", "pas d objet", "aucun objet",  # fr
        "sin asunto", "senza oggetto", "sem assunto",  # es, it, pt
        "geen onderwerp", "zonder onderwerp",  # nl
        "inget ämne", "ingen emne", "intet emne", "ei aihetta",  # sv, no/da, fi
        "brak tematu", "bez tematu", "bez předmětu", "без темы",  # pl, cs, ru
    }
)  # fmt: skip


def is_generic_subject(normalised: str) -> bool:
    """True for a subject that must not join messages: empty, punctuation only, or a placeholder.

    Takes the subject as `normalize_subject` returns it (reply prefixes removed), so "Re:" and
    "Fwd: (no subject)" arrive here as "" and "(no subject)".
    """
    words = " ".join(_WORD.findall(normalised.casefold()))
    return not words or words in PLACEHOLDERS
