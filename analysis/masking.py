"""Mask personal data before message text leaves the server for an LLM provider, and restore it after.

Why: a provider (even a self-hosted one on another machine) must not learn who wrote to whom, their
addresses, phone numbers, bank accounts or the links they sent. The model does not need them to judge
urgency or to summarise, so every such value is replaced by a stable placeholder (``<EMAIL_1>``,
``<PHONE_2>``, ``<NAME_1>``...) and the placeholders in the model's answer are mapped back.

Order matters, because the patterns overlap: URLs first (they may contain addresses, digits and
names), then e-mail addresses (their local parts often contain names), IBANs (long digit runs that
look like phone numbers), phone numbers, and finally names. Every later pass skips placeholders that
an earlier pass produced. All patterns are anchored with look-behinds so they only start at the
beginning of a run, which keeps the work linear in the text length (a 20 KB body takes milliseconds).

Pure Python, no Django: the providers and the tests use it directly.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping

__all__ = ["KINDS", "Masking", "is_valid_iban", "mask", "names_from_address", "names_from_text"]

KINDS = ("URL", "EMAIL", "IBAN", "PHONE", "NAME")
_KIND_ALT = "|".join(KINDS)

# Placeholders this module produces; also any such token already present in the input, which the
# passes leave alone (and whose numbers are never reused, so unmasking cannot touch them).
_PLACEHOLDER_SPLIT_RE = re.compile(rf"(<(?:{_KIND_ALT})_\d+>)")

# What a model may turn a placeholder into: other case, spaces inside the brackets, square brackets,
# HTML-escaped brackets, or (upper-case only, to avoid ordinary words) no brackets at all.
_UNMASK_RE = re.compile(
    rf"(?i:(?:<|&lt;|\[)\s*({_KIND_ALT})\s*[_\- ]?\s*(\d+)\s*(?:>|&gt;|\]))|(?<![\w<])({_KIND_ALT})_(\d+)(?![\w>])"
)

# --------------------------------------------------------------------------------------------------
# Patterns
# --------------------------------------------------------------------------------------------------

_URL_RE = re.compile(r"(?<![\w@.\-/])(?:(?:https?|ftp)://|www\.)[^\s<>\"'`]+", re.IGNORECASE)
_URL_TRAILING = ".,;:!?'\""
_URL_CLOSERS = {")": "(", "]": "[", "}": "{"}

_EMAIL_RE = re.compile(r"(?<![\w.%+\-])[\w.%+\-]+@[\w\-]+(?:\.[\w\-]+)*\.[A-Za-z]{2,}(?![\w\-])")

# A liberal candidate (country code, two check digits, 11-30 alphanumerics with optional single
# separators); the callback then looks for the longest sub-span whose checksum is right.
_IBAN_RE = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?:[ \-]?[A-Za-z0-9]){11,30}", re.IGNORECASE)
_IBAN_START_RE = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}")
# Official lengths; a country not listed only needs 15-34 characters and the checksum.
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29,
    "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip

# A run of at least 7 digits with short separator runs between them, optionally led by "+" or "(".
# Whether it is a phone number is decided by _is_phone (prefix, digit count, not a date).
_PHONE_RE = re.compile(r"(?<![\w+])(?:\+|\()?\d(?:[ \t().\-/]{0,3}\d){6,}")
_PHONE_GROUP_RE = re.compile(r"\+?\(?\d+\)?")
_DATE_RES = (
    re.compile(r"(?<!\d)\d{1,2}([./\-])\d{1,2}\1\d{4}(?!\d)"),
    re.compile(r"(?<!\d)\d{4}([./\-])\d{1,2}\1\d{1,2}(?!\d)"),
)
_US_PHONE_RE = re.compile(r"\(?[2-9]\d{2}\)?[ .\-]?\d{3}[ .\-]\d{4}")
_IT_MOBILE_RE = re.compile(r"3\d{2}[ .\-/]\d{6,7}")

# Words that appear in display names and greetings but are not names; masking them would only
# damage the text the model reads.
_NOT_NAMES = frozenset(
    """
    the and und et ed or oder of for from via your our you my mein meine
    team all everyone everybody there zusammen tous toutes tutti tutte friends folks guys leute
    colleagues kollegen kolleginnen collègues colleghi customer customers kunde kundin kunden client
    clients cliente clienti damen herren sir madam madame monsieur mesdames messieurs signore signori
    mr mrs ms miss dr prof herr frau sig dott ing mme mlle avv
    von van der den del della di da de du le la les
    info support service services admin administrator noreply no-reply donotreply newsletter news
    mail email sales billing invoice invoices contact hello office notifications notification alerts
    alert account accounts security system daemon mailer mailer-daemon postmaster reply bot automated
    bank shop store online gmbh inc ltd llc sarl srl spa company group
    thanks thank regards best cheers sincerely greetings grüße gruss gruß
    marketing jobs careers press orders order booking bookings reservations feedback webmaster abuse help
    helpdesk notify updates digest community members membership receipts payments payment hostmaster
    contact kontakt contatto contattaci write schreiben e-mail address adresse indirizzo
    """.split()  # noqa: SIM905 (a word list reads better as text)
)

_GREETING_RE = re.compile(
    r"^[ \t]*(?:dear|hi|hello|hey|good\s+(?:morning|afternoon|evening)|hallo|liebe[rs]?|"
    r"sehr\s+geehrte[rs]?|guten\s+(?:tag|morgen|abend)|moin|servus|grüezi|bonjour|bonsoir|salut|"
    r"cher|chère|chers|ciao|salve|gentile|gentilissim[oa]|caro|cara|buongiorno|buonasera|egregio)"
    r"[ \t]+(?:(?:mr|mrs|ms|miss|dr|prof|herr|frau|monsieur|madame|mme|mlle|m|sig|sig\.ra|signor|signora|"
    r"dott|dott\.ssa|ing|avv)\.?[ \t]+)*"
    r"([^\W\d_][\w'\-]*(?:[ \t]+[^\W\d_][\w'\-]*){0,2})[ \t]*(?:[,!:]|$)",
    re.IGNORECASE | re.MULTILINE,
)
# "Maria Rossi <maria@example.net>" or "Maria Rossi (maria@...)" inside the text: the words right
# before an address in brackets are its owner's name.
_NAME_BEFORE_ADDRESS_RE = re.compile(
    r"(?<![\w'\-])([^\W\d_][\w'\-]*(?:[ \t]+[^\W\d_][\w'\-]*){0,2})[ \t]*[<(\[][ \t]*(?:mailto:)?[\w.%+\-]+@"
)
_CLOSING_RE = re.compile(
    r"^[ \t]*(?:(?:best|kind|warm|many)\s+(?:regards|wishes|thanks)|regards|best|cheers|thanks|thank\s+you|"
    r"sincerely|yours(?:\s+sincerely|\s+truly)?|(?:viele|beste|liebe|freundliche|herzliche)\s+grüße|"
    r"mit\s+freundlichen\s+grüßen|gruß|grüße|mfg|lg|vg|cordialement|bien\s+cordialement|bien\s+à\s+vous|"
    r"amicalement|cordiali\s+saluti|distinti\s+saluti|saluti|un\s+saluto|a\s+presto)"
    r"[ \t]*[,!.]?(?:[ \t]*\n(?:[ \t]*\n)?|[ \t]+)[ \t]*"
    r"([^\W\d_][\w'\-.]*(?:[ \t]+[^\W\d_][\w'\-.]*){0,2})[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)


# --------------------------------------------------------------------------------------------------
# The mapping
# --------------------------------------------------------------------------------------------------


class Masking:
    """The placeholder <-> value mapping of one masking run.

    It holds personal data in clear, so its repr shows only a count: a Masking that ends up in a
    log line or a traceback's locals must not leak what it hides.
    """

    def __init__(self, reserved: Iterable[str] = ()) -> None:
        self._values: dict[str, str] = {}  # "<EMAIL_1>" -> original text
        self._by_key: dict[tuple[str, str], str] = {}  # (kind, normalised value) -> placeholder
        self._counters: dict[str, int] = dict.fromkeys(KINDS, 0)
        self._reserved = set(reserved)

    def __repr__(self) -> str:
        return f"<Masking: {len(self._values)} placeholders>"

    def __len__(self) -> int:
        return len(self._values)

    @property
    def placeholders(self) -> dict[str, str]:
        """A copy of the mapping (placeholder -> original). Contains personal data: never log it."""
        return dict(self._values)

    def placeholder_for(self, kind: str, value: str, key: str | None = None) -> str:
        """Return the placeholder for ``value``, creating it on first sight.

        ``key`` is the normalised form used to recognise the same value again (lower-case address,
        compact IBAN...); the first spelling seen is the one restored.
        """
        lookup = (kind, key if key is not None else value)
        existing = self._by_key.get(lookup)
        if existing is not None:
            return existing
        while True:
            self._counters[kind] += 1
            placeholder = f"<{kind}_{self._counters[kind]}>"
            if placeholder not in self._reserved:
                break
        self._by_key[lookup] = placeholder
        self._values[placeholder] = value
        return placeholder

    def unmask(self, text: str) -> str:
        """Put the original values back into a model's answer.

        Tolerant of what models do to placeholders ("<name_1>", "< NAME_1 >", "[NAME_1]", "NAME_1");
        unknown placeholders (invented by the model, or present in the original text) stay as they are.
        """
        if not self._values or not text:
            return text

        def restore(match: re.Match[str]) -> str:
            kind = (match.group(1) or match.group(3)).upper()
            number = match.group(2) or match.group(4)
            return self._values.get(f"<{kind}_{int(number)}>", match.group(0))

        return _UNMASK_RE.sub(restore, text)


# --------------------------------------------------------------------------------------------------
# Public helpers
# --------------------------------------------------------------------------------------------------


def is_valid_iban(value: str) -> bool:
    """ISO 13616 check: known length for the country and mod-97 of the rearranged number == 1.

    The checksum is what keeps order numbers and tracking codes from being taken for IBANs.
    """
    compact = re.sub(r"[\s\-]", "", value).upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", compact):
        return False
    expected = _IBAN_LENGTHS.get(compact[:2])
    if expected is not None and len(compact) != expected:
        return False
    rearranged = compact[4:] + compact[:4]
    digits = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(digits) % 97 == 1


def names_from_text(text: str) -> list[str]:
    """Names the message itself reveals: the addressee of a greeting and the signer of a sign-off.

    Headers give the sender's display name, but "Hi Peter," or "Best regards,\\nMaria Rossi" name people
    the headers may not; masking them too keeps them from leaving the server.
    """
    found: list[str] = []
    for regex, from_the_right in ((_GREETING_RE, False), (_CLOSING_RE, False), (_NAME_BEFORE_ADDRESS_RE, True)):
        for match in regex.finditer(text):
            candidates = match.group(1).split()
            # Before an address the name is the capitalised words next to it ("write to Maria Rossi (").
            words = _leading_name_words(reversed(candidates) if from_the_right else candidates)
            name = " ".join(reversed(words) if from_the_right else words)
            if name and name not in found:
                found.append(name)
    return found


def _leading_name_words(words: Iterable[str]) -> list[str]:
    """The words up to the first one that cannot be part of a name (lower-case, or a known non-name)."""
    taken: list[str] = []
    for word in words:
        word = word.strip(".'-")
        if not word or not word[0].isupper() or word.casefold() in _NOT_NAMES:
            break
        taken.append(word)
    return taken


def names_from_address(address: str) -> list[str]:
    """Name parts hidden in an address's local part: "anna.schmidt@..." -> ["anna", "schmidt"].

    The address itself is masked anyway, but the same first or last name in the text ("Anna wrote")
    would otherwise reveal whose address it was. Role addresses (info@, noreply@) give nothing.
    """
    local = address.strip().rpartition("@")[0].lower()
    if not local or any(ch.isdigit() for ch in local):
        return []
    parts = [part for part in re.split(r"[._\-+]", local) if part]
    if len(parts) > 3:
        return []
    return [part for part in parts if len(part) >= 3 and part.isalpha() and part not in _NOT_NAMES]


def mask(
    fields: Mapping[str, str], names: Iterable[str] = (), *, addresses: Iterable[str] = ()
) -> tuple[dict[str, str], Masking]:
    """Replace personal data in every field by placeholders shared across all fields.

    ``names`` are people's names (display names from From/To/Cc, names from greetings): the full
    name and each part of at least three letters are masked, case-insensitively, on word boundaries.
    ``addresses`` are e-mail addresses known from the headers; they are masked even when they do
    not look like an address to the pattern (``user@localhost``).

    Returns the masked fields (same keys) and the Masking that restores them.
    """
    reserved = {token for text in fields.values() for token in _PLACEHOLDER_SPLIT_RE.findall(text or "")}
    masking = Masking(reserved)
    name_re = _names_regex(names)
    address_re = _addresses_regex(addresses)

    def replacer(kind: str, key: Callable[[str], str]) -> Callable[[re.Match[str]], str]:
        return lambda match: masking.placeholder_for(kind, match.group(0), key(match.group(0)))

    email = replacer("EMAIL", str.lower)
    passes: list[Callable[[str], str]] = [lambda text: _URL_RE.sub(lambda m: _mask_url(m, masking), text)]
    if address_re is not None:
        passes.append(lambda text: address_re.sub(email, text))
    passes += [
        lambda text: _EMAIL_RE.sub(email, text),
        lambda text: _IBAN_RE.sub(lambda m: _mask_iban(m.group(0), masking), text),
        lambda text: _PHONE_RE.sub(lambda m: _mask_phone(m.group(0), masking), text),
    ]
    if name_re is not None:
        name = replacer("NAME", lambda value: " ".join(value.split()).casefold())
        passes.append(lambda text: name_re.sub(name, text))

    masked: dict[str, str] = {}
    for key, text in fields.items():
        text = text or ""
        for apply in passes:
            text = _outside_placeholders(text, apply)
        masked[key] = text
    return masked, masking


# --------------------------------------------------------------------------------------------------
# Internals
# --------------------------------------------------------------------------------------------------


def _outside_placeholders(text: str, apply: Callable[[str], str]) -> str:
    """Run ``apply`` on the parts of ``text`` between placeholders, so no pass rewrites a placeholder."""
    if "<" not in text:
        return apply(text)
    parts = _PLACEHOLDER_SPLIT_RE.split(text)
    return "".join(part if index % 2 else apply(part) for index, part in enumerate(parts))


def _mask_url(match: re.Match[str], masking: Masking) -> str:
    """Mask a URL without the sentence punctuation or closing bracket that follows it."""
    url = match.group(0)
    end = len(url)
    while end:
        last = url[end - 1]
        unbalanced = last in _URL_CLOSERS and url[:end].count(_URL_CLOSERS[last]) < url[:end].count(last)
        if last not in _URL_TRAILING and not unbalanced:
            break
        end -= 1
    core, trail = url[:end], url[end:]
    if len(core) <= len("www.") or core.lower().endswith("://"):
        return url
    return masking.placeholder_for("URL", core) + trail


def _mask_iban(candidate: str, masking: Masking) -> str:
    """Mask the IBAN inside a candidate run, trying each start and the longest valid end first.

    The candidate pattern is greedy (it may swallow a following "BIC" or a word); only a span that
    passes the checksum is masked, and the rest of the candidate is kept as it was.
    """
    for start_match in _IBAN_START_RE.finditer(candidate):
        start = start_match.start()
        ends = [index for index, ch in enumerate(candidate) if index > start and ch in " -"] + [len(candidate)]
        for end in reversed(ends):
            span = candidate[start:end]
            if is_valid_iban(span):
                key = re.sub(r"[\s\-]", "", span).upper()
                placeholder = masking.placeholder_for("IBAN", span, key)
                return candidate[:start] + placeholder + candidate[end:]
    return candidate


def _is_phone(text: str) -> bool:
    """Decide whether a digit run is a phone number: international prefix, trunk 0, or US/IT layout.

    Requiring one of these (and rejecting dates) keeps amounts, order numbers and postcodes readable.
    """
    if any(regex.search(text) for regex in _DATE_RES):
        return False
    digits = re.sub(r"\D", "", text)
    if text.startswith("+"):
        return digits[0] != "0" and 8 <= len(digits) <= 15
    if text.startswith("00"):
        return digits[2:3] not in ("", "0") and 8 <= len(digits) - 2 <= 15
    if digits.startswith("0"):
        return 8 <= len(digits) <= 12
    return bool(_US_PHONE_RE.fullmatch(text) or _IT_MOBILE_RE.fullmatch(text))


def _mask_phone(candidate: str, masking: Masking) -> str:
    """Mask a phone candidate, or the phone numbers inside it when the run holds several.

    "030 1234567 / 0171 1234567" is one digit run to the pattern; if the whole run is not a phone,
    the longest valid spans of consecutive digit groups are masked, left to right.
    """
    if _is_phone(candidate):
        return masking.placeholder_for("PHONE", candidate, re.sub(r"[^\d+]", "", candidate))
    dates = [m.span() for regex in _DATE_RES for m in regex.finditer(candidate)]
    groups = [(m.start(), m.end()) for m in _PHONE_GROUP_RE.finditer(candidate)]
    digit_counts = [sum(ch.isdigit() for ch in candidate[start:end]) for start, end in groups]
    out: list[str] = []
    position = 0
    index = 0
    while index < len(groups):
        span = _phone_span_at(candidate, groups, digit_counts, dates, index)
        if span is None:
            index += 1
            continue
        start, end, last = span
        out.append(candidate[position:start])
        phone = candidate[start:end]
        out.append(masking.placeholder_for("PHONE", phone, re.sub(r"[^\d+]", "", phone)))
        position = end
        index = last + 1
    out.append(candidate[position:])
    return "".join(out)


def _phone_span_at(
    candidate: str,
    groups: list[tuple[int, int]],
    digit_counts: list[int],
    dates: list[tuple[int, int]],
    index: int,
) -> tuple[int, int, int] | None:
    """The longest phone number starting at digit group ``index``: (start, end, last group), or None.

    A number starts at the beginning of the run or after a space or slash, never mid-group ("01.02..."),
    with a digit a phone number can start with; spans with an impossible digit count are skipped unchecked.
    """
    start = groups[index][0]
    if (start and candidate[start - 1] not in " \t/") or candidate[start] not in "+(023456789":
        return None
    for last in range(min(len(groups), index + 8) - 1, index - 1, -1):
        digits = sum(digit_counts[index : last + 1])
        if digits > 17:  # "00" + 15 digits at most
            continue
        if digits < 7:
            return None
        span = candidate[start : groups[last][1]].rstrip(")")
        end = start + len(span)
        if not any(start < date_end and date_start < end for date_start, date_end in dates) and _is_phone(span):
            return start, end, last
    return None


def _name_variants(names: Iterable[str]) -> list[str]:
    """Full names and their parts of at least three letters, longest first (so full names win)."""
    variants: dict[str, str] = {}
    for raw in names:
        name = " ".join((raw or "").replace('"', " ").split()).strip(" '")
        if not name or "@" in name:
            continue
        candidates = [name]
        for part in re.split(r"[\s,;/()\[\].]+", name):
            part = part.strip("'-")
            candidates.append(part)
            if "-" in part:
                candidates.extend(part.split("-"))
        for candidate in candidates:
            letters = sum(ch.isalpha() for ch in candidate)
            if letters < 3 or any(ch.isdigit() for ch in candidate) or candidate.casefold() in _NOT_NAMES:
                continue
            variants.setdefault(candidate.casefold(), candidate)
    return sorted(variants.values(), key=len, reverse=True)


def _names_regex(names: Iterable[str]) -> re.Pattern[str] | None:
    variants = _name_variants(names)
    if not variants:
        return None
    alternatives = [r"\s+".join(re.escape(word) for word in variant.split()) for variant in variants]
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)", re.IGNORECASE)


def _addresses_regex(addresses: Iterable[str]) -> re.Pattern[str] | None:
    """Known addresses the generic pattern would miss (no dot in the domain, odd characters)."""
    extra = sorted(
        {a.strip() for a in addresses if a and "@" in a and not _EMAIL_RE.fullmatch(a.strip())}, key=len, reverse=True
    )
    if not extra:
        return None
    return re.compile(r"(?<![\w.%+\-])(?:" + "|".join(map(re.escape, extra)) + r")(?![\w\-])", re.IGNORECASE)
