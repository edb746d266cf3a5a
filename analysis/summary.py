"""Extractive summaries: the few sentences of a message that carry its point, in their original order.

Why extractive: it works offline, costs microseconds, never invents anything, and quotes the sender's
own words. An LLM provider may replace it when one is configured. The text is first reduced to what
the sender actually wrote this time (quoted replies, forwarded headers, signatures, mobile footers and
legal disclaimers removed, in English, German, French and Italian); ``clean_body`` is public because the
built-in analyser and the learner read the same cleaned text, so quoted history never counts as new
signals.
"""

from __future__ import annotations

import re

#: Longest input examined; the point of an e-mail is nearly always at its start.
MAX_SCAN_CHARS = 20_000
#: Text and sentences considered for a summary (beyond these the position score is negligible anyway).
SUMMARY_SCAN_CHARS = 6_000
MAX_SENTENCES_SCORED = 30

_FLAGS = re.IGNORECASE | re.UNICODE


def _wordset(words: str) -> frozenset[str]:
    return frozenset(words.split())


# "On Mon, 3 Jun 2024 at 10:00, Ann <ann@x.org> wrote:" and its German, French and Italian siblings.
_ATTRIBUTION = re.compile(
    r"^\s*(?:"
    r"on\b.{0,250}\bwrote\s*:"
    r"|am\b.{0,250}\bschrieb\b.{0,120}:"
    r"|le\b.{0,250}\ba\s+écrit\s*:"
    r"|il\b.{0,250}\bha\s+scritto\s*:"
    r"|.{0,250}(?:<[^>\s]+@[^>\s]+>|\S+@\S+)\s*(?:wrote|schrieb|a\s+écrit|ha\s+scritto)\s*:"
    r")\s*$",
    _FLAGS,
)
_ATTRIBUTION_START = re.compile(r"^\s*(?:on|am|le|il)\s", _FLAGS)
_ORIGINAL_MESSAGE = re.compile(
    r"^\s*-{2,}\s*(?:original message|ursprüngliche nachricht|originalnachricht|message d'origine"
    r"|messaggio originale)\s*-{2,}\s*$",
    _FLAGS,
)
_FORWARD_MARKER = re.compile(
    r"^\s*(?:-{2,}\s*(?:forwarded message|weitergeleitete nachricht|message transféré|messaggio inoltrato)\s*-{2,}"
    r"|begin forwarded message\s*:|anfang der weitergeleiteten nachricht\s*:"
    r"|début du message (?:réexpédié|transféré)\s*:|inizio messaggio inoltrato\s*:)\s*$",
    _FLAGS,
)
_HEADER_LINE = re.compile(
    r"^\s*\*?(?:from|von|de|da|sent|gesendet|envoyé|inviato|date|datum|data|subject|betreff|objet|oggetto"
    r"|to|an|à|a|cc|reply-to)\s*:\*?\s",
    _FLAGS,
)
_HEADER_FROM = re.compile(r"^\s*\*?(?:from|von|de|da)\s*:\*?\s", _FLAGS)
_HEADER_SENT = re.compile(r"^\s*\*?(?:sent|gesendet|envoyé|inviato|date|datum|data)\s*:\*?\s", _FLAGS)
_OUTLOOK_RULE = re.compile(r"^\s*_{10,}\s*$")
_SIGNATURE_DASHES = re.compile(r"^--\s*$")
# Closings that end the new text: "regards"-like ones may carry a name on the same line, "thanks"-like
# ones only count as a line of their own ("Thanks, that works" is content).
_NAME_AFTER = r"(?:,?\s+(?-i:[A-ZÄÖÜÉÈ][\w.'-]*)(?:\s+(?-i:[A-ZÄÖÜÉÈ][\w.'-]*)){0,2})?"
_CLOSING = re.compile(
    r"^\s*(?:(?:"
    r"(?:best|kind|warm|warmest|many|with best|with kind)\s+(?:regards|wishes)|regards|best|cheers|sincerely"
    r"|yours(?:\s+(?:sincerely|truly|faithfully))?|all the best"
    r"|mit (?:freundlichen|besten|herzlichen|lieben) grü(?:ß|ss)en|freundliche grü(?:ß|ss)e|mfg|lg|vg"
    r"|(?:viele|beste|liebe|herzliche|schöne|sonnige) grü(?:ß|ss)e(?: aus \w+)?|gru(?:ß|ss)|grü(?:ß|ss)e"
    r"|(?:bien )?cordialement|bien à (?:vous|toi)|(?:meilleures |sincères |bien sincères )?salutations"
    r"|amicalement|bises|à bientôt"
    r"|cordiali saluti|distinti saluti|saluti(?: cordiali)?|un (?:caro |cordiale )?saluto|a presto"
    r")\s*[,.!]*" + _NAME_AFTER + r"|(?:"
    r"thanks(?: and regards| again| in advance)?|thank you(?: in advance)?|many thanks|thx"
    r"|danke(?: im voraus| schön| sehr)?|vielen dank(?: im voraus)?|besten dank"
    r"|bonne (?:journée|soirée)|merci(?: d'avance| beaucoup| par avance)?"
    r"|grazie(?: mille| in anticipo)?|buona (?:giornata|serata)"
    r"))\s*[,.!]*\s*$",
    _FLAGS,
)
_LONG_CLOSING = re.compile(
    r"^\s*(?:je vous prie d'agréer|veuillez agréer|in attesa di (?:un )?(?:vostro |suo )?riscontro)", _FLAGS
)
_MOBILE_FOOTER = re.compile(
    r"^\s*(?:sent from my \w+|sent from (?:outlook|mail) for \w+|get outlook for \w+|von meinem \w+ gesendet"
    r"|gesendet von meinem \w+|envoyé de mon \w+|envoyé depuis mon \w+|inviato da(?:l mio)? \w+)\b.*$",
    _FLAGS,
)
_DISCLAIMER = re.compile(
    r"^\s*(?:confidentiality notice|disclaimer\s*:|this (?:e-?mail|message|communication)\b.{0,80}\bconfidential"
    r"|the information (?:contained )?in this (?:e-?mail|message)|please consider the environment"
    r"|diese (?:e-?mail|nachricht)\b.{0,80}\bvertraulich|bitte denken sie an die umwelt"
    r"|ce (?:message|courriel|mail)\b.{0,80}\bconfidenti|avis de confidentialit"
    r"|questo messaggio\b.{0,80}\briservat|le informazioni contenute in questo messaggio"
    r"|ai sensi del (?:d\.?\s?lgs|regolamento)|pensa all'ambiente)",
    _FLAGS,
)

_GREETING = re.compile(
    r"^\s*(?:hi|hello|hey|dear|good (?:morning|afternoon|evening)|hallo|hi zusammen|liebe[rs]?|sehr geehrte[rs]?"
    r"|guten (?:morgen|tag|abend)|moin|servus|grüß (?:gott|dich)|bonjour|bonsoir|salut|coucou|cher|chère|chers"
    r"|madame|monsieur|ciao|buongiorno|buonasera|salve|gentile|gentili|egregio|egregia|caro|cara|cari)\b",
    _FLAGS,
)
_BULLET = re.compile(r"^\s*(?:[-*•·]|\d{1,2}[.)])\s+")
_URL_ONLY = re.compile(r"^\s*(?:<?https?://\S+>?\s*)+$", _FLAGS)
_BOUNDARY = re.compile(r"[.!?…]+[\"'»”)\]]*\s+")
_ORDINAL_OR_DATE = re.compile(r"^\(?\d{1,4}(?:\.\d{1,2})*\.$")
# Words that mark what the reader must act on: requests, deadlines, meetings, money.
_CUE_WORDS = _wordset(
    """please need urgent asap deadline tomorrow today bitte könnten können kannst brauche benötige frist
    dringend spätestens morgen heute pourriez pouvez-vous veuillez urgent délai besoin demain aujourd'hui
    potresti può puoi entro scadenza urgente bisogno serve domani oggi meeting termin réunion riunione
    invoice rechnung facture fattura"""
)
_CUE_PHRASES = ("could you", "can you", "would you", "let me know", "by friday", "by monday", "end of",
                "bis zum", "merci de", "avant le", "d'ici", "per favore", "ho bisogno")  # fmt: skip
_BOILERPLATE = ("unsubscribe", "abbestellen", "abmelden", "désinscri", "désabonn", "disiscriv", "cancellarti",
                "do not reply", "don't reply", "nicht antworten", "antworten sie nicht", "ne pas répondre",
                "non rispondere", "you are receiving", "you receive this", "vous recevez cette", "ricevi questa",
                "sie erhalten diese", "update preferences", "view in browser", "im browser ansehen")  # fmt: skip
_PUNCTUATION = str.maketrans({ch: " " for ch in '!"#$%&()*+,./:;<=>?@[\\]^_`{|}~«»“”„…–—•·¡¿\t\r\n'} | {"’": "'"})
STOPWORDS = _wordset(
    """re aw wg fw fwd tr rif r i you the and for with your our this that are was from have has will not but all
    can about der die das und ist mit für von den dem des ein eine auf sie ich wir ihr nicht auch bei zum zur
    le la les des une pour avec est sur pas vous nous que qui dans par il lo gli una per con che non sono del
    della alla dei"""
)
_ABBREVIATIONS = _wordset(
    """z.b. e.g. i.e. dr. mr. mrs. ms. prof. etc. u.a. bzw. ca. nr. no. vs. d.h. usw. str. mme. mlle. m. sig.
    sig.ra dott. dott.ssa ing. avv. ecc. p.es. es. s. vgl. ggf. evtl. inkl. bzgl. zzgl. jan. feb. mar. apr. jun.
    jul. aug. sep. sept. oct. okt. nov. dec. dez. mo. di. mi. do. fr. sa. so. tel. approx. incl. resp. cf. p.
    pp. abs. art. fig. st. av. bd. env. cie. co. corp. inc. ltd. gmbh. jr. sr. sen. gen. min. max. std. z.hd.
    u.s. u.k. a.m. p.m. u.u. o.ä. s.o. s.u. z.t."""
)


def clean_body(text: str) -> str:
    """What the sender wrote this time: quoted replies, signatures, footers and disclaimers removed.

    Replies quoted with ``>`` are dropped line by line (so inline answers survive); an attribution line
    followed by unquoted text, an "Original Message" separator or an Outlook header block ends the new
    part. Forwarded messages keep their body but lose the header block, since the forwarded text is often
    the only content. Each regex runs only on lines a cheap test lets through (this runs for every message).
    """
    if not text:
        return ""
    lines = text[:MAX_SCAN_CHARS].replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[str] = []
    in_forward_headers = False
    content_seen = False
    index = 0
    while index < len(lines):
        line = lines[index]
        stripped = line.strip()
        if in_forward_headers:
            if not stripped or (":" in stripped[:14] and _HEADER_LINE.match(line)):
                index += 1
                continue
            in_forward_headers = False
        if stripped.startswith(">") or (len(stripped) < 80 and _MOBILE_FOOTER.match(line)):
            index += 1
            continue
        action = _structural_line(lines, index, stripped)
        if action == "stop":
            break
        if action == "skip":
            index += 1
            continue
        if action == "forward":
            in_forward_headers = True
            index += 1
            continue
        if isinstance(action, int):  # an attribution whose quote follows: drop it, keep reading
            index = action + 1
            continue
        if content_seen and len(stripped) < 60 and _CLOSING.match(line):
            break
        if stripped and not _GREETING.match(line):
            content_seen = True
        kept.append(line.rstrip())
        index += 1
    return "\n".join(kept).strip()


def _structural_line(lines: list[str], index: int, stripped: str) -> str | int | None:
    """What a line means for the cleaning: "stop" (the rest is quoted or a signature), "skip", "forward"
    (a forward marker), an index (an attribution ending there, followed by ``>`` quotes) or None (text)."""
    ends_with_colon = stripped.endswith(":")
    if "--" in stripped or ends_with_colon:
        if _FORWARD_MARKER.match(stripped):
            return "forward"
        if _ORIGINAL_MESSAGE.match(stripped) or _SIGNATURE_DASHES.match(lines[index]):
            return "stop"
    if ends_with_colon or (index + 1 < len(lines) and lines[index + 1].rstrip().endswith(":")):
        attribution_end = _attribution_end(lines, index)
        if attribution_end is not None:
            return attribution_end if _next_content_is_quoted(lines, attribution_end + 1) else "stop"
    if ":" in stripped[:14] and _is_reply_header_block(lines, index):
        return "stop"
    if stripped.startswith("__") and _OUTLOOK_RULE.match(stripped):
        return "stop" if _is_reply_header_block(lines, index + 1) else "skip"
    if _DISCLAIMER.match(stripped) or _LONG_CLOSING.match(stripped):
        return "stop"
    return None


def _attribution_end(lines: list[str], index: int) -> int | None:
    """Index of the last line of a reply attribution starting at ``index`` (mail clients wrap it)."""
    line = lines[index]
    if _ATTRIBUTION.match(line):
        return index
    wrapped = index + 1 < len(lines) and _ATTRIBUTION_START.match(line) and len(line) < 250
    if wrapped and _ATTRIBUTION.match(line + " " + lines[index + 1].strip()):
        return index + 1
    return None


def _next_content_is_quoted(lines: list[str], start: int) -> bool:
    for line in lines[start : start + 5]:
        if line.strip():
            return line.lstrip().startswith(">")
    return False


def _is_reply_header_block(lines: list[str], index: int) -> bool:
    """An Outlook-style "From: ... Sent: ..." block: the start of a quoted reply without ``>``."""
    if index >= len(lines) or not _HEADER_FROM.match(lines[index]):
        return False
    return any(_HEADER_SENT.match(line) for line in lines[index + 1 : index + 5])


def split_sentences(text: str) -> list[str]:
    """Sentences of cleaned text: paragraphs and list items are units, hard-wrapped lines are joined.

    Splits after ``.``/``!``/``?`` followed by space, except after known abbreviations ("z.B.", "e.g.",
    "Dr."), ordinals and dates ("3. Mai", "12.03."), initials, or when the next word is lower-case.
    """
    sentences: list[str] = []
    for unit in _units(text):
        sentences.extend(_split_unit(unit))
    return sentences


def _units(text: str) -> list[str]:
    units: list[str] = []
    current: list[str] = []
    in_list = False
    for line in text.split("\n"):
        stripped = line.strip()
        if not stripped or (_BULLET.match(line) and (in_list or not _continues(current, stripped))):
            if current:
                units.append(" ".join(current))
            in_list = bool(stripped)
            current = [_BULLET.sub("", stripped, count=1)] if stripped else []
            continue
        current.append(stripped)
    if current:
        units.append(" ".join(current))
    return [unit for unit in units if unit]


def _continues(current: list[str], line: str) -> bool:
    """A hard-wrapped line that starts with a number ("am\\n29. März") continues the sentence before it;
    a numbered item follows a blank line, another item or a finished sentence."""
    return bool(current) and line[0].isdigit() and not current[-1].endswith((".", ":", "!", "?", ";"))


def _split_unit(unit: str) -> list[str]:
    pieces: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(unit):
        end = match.end()
        if end >= len(unit):
            break
        if not _is_boundary(unit, match.start(), end):
            continue
        piece = unit[start:end].strip()
        if piece:
            pieces.append(piece)
        start = end
    tail = unit[start:].strip()
    if tail:
        pieces.append(tail)
    return pieces


def _is_boundary(unit: str, punct_start: int, next_start: int) -> bool:
    following = unit[next_start]
    if following.islower():
        return False
    if unit[punct_start] != ".":
        return True
    word_start = unit.rfind(" ", 0, punct_start) + 1
    token = unit[word_start : punct_start + 1].lower()
    if token in _ABBREVIATIONS or _ORDINAL_OR_DATE.match(token):
        return False
    # Initials ("J. Smith") and single letters.
    return not (len(token) == 2 and token[0].isalpha())


def tokens(text: str) -> list[str]:
    """Lower-case word tokens; apostrophes and hyphens stay inside words ("d'ici", "pourriez-vous").

    ``str.translate`` + ``split`` is several times faster than a ``\\w+`` regex, which matters because
    every analysed message is tokenised a few times.
    """
    return text.lower().translate(_PUNCTUATION).replace("'s ", " ").split()


def _words(text: str) -> set[str]:
    return {w for w in tokens(text) if len(w) > 2 and w not in STOPWORDS}


def _unusable(sentence: str, words: list[str], from_end: int) -> bool:
    """Greetings ("Hi Anna,"), sign-offs ("Grazie! Marco", "Ihre Verwaltung"), bare links, and mailing
    boilerplate ("unsubscribe", "do not reply") are never a summary."""
    ending = sentence.rstrip()[-1:]
    if (_GREETING.match(sentence) or ending == ",") and (len(words) <= 4 or ending in ",:!"):
        return True
    if from_end < 2 and (len(words) <= 2 or (len(words) <= 4 and ending not in ".?!:")):
        return True
    if sum(len(w) for w in words if w[0].isalpha()) < 0.5 * len(sentence) or _URL_ONLY.match(sentence):
        return True
    lowered = sentence.lower()
    return any(phrase in lowered for phrase in _BOILERPLATE)


def _score(sentence: str, position: int, subject_words: set[str], from_end: int = 99) -> float:
    """Why these terms: early sentences state the point, subject words mark the topic, requests and
    deadlines are what the reader must not miss, and fragments or walls of text make poor summaries."""
    words = tokens(sentence)
    if not words or _unusable(sentence, words, from_end):
        return -10.0
    unique = set(words)
    score = 1.0 / (1.0 + 0.35 * position)
    if subject_words:
        score += 1.2 * len(unique & subject_words) / len(subject_words)
    lowered = sentence.lower()
    if unique & _CUE_WORDS or any(phrase in lowered for phrase in _CUE_PHRASES):
        score += 0.6
    if sentence.rstrip().endswith("?"):
        score += 0.3
    if len(words) < 4:
        score -= 0.8
    elif len(words) > 40:
        score -= min(1.5, 0.02 * (len(words) - 40))
    return score


def summarise(text: str, subject: str = "", max_sentences: int = 3, max_chars: int = 400) -> str:
    """The most informative sentences of ``text`` in their original order, at most ``max_chars`` long.

    Empty text, or text that is only quotes and signatures, gives "".
    """
    return summarise_clean(clean_body(text), subject, max_sentences=max_sentences, max_chars=max_chars)


def summarise_clean(cleaned: str, subject: str = "", max_sentences: int = 3, max_chars: int = 400) -> str:
    """``summarise`` for text already passed through ``clean_body`` (the analyser cleans once)."""
    if not cleaned or max_sentences < 1 or max_chars < 1:
        return ""
    sentences = split_sentences(cleaned[:SUMMARY_SCAN_CHARS])[:MAX_SENTENCES_SCORED]
    subject_words = _words(subject)
    last = len(sentences) - 1
    scored = [(_score(s, i, subject_words, last - i), i, s) for i, s in enumerate(sentences)]
    candidates = [item for item in scored if item[0] > -5]
    if not candidates:
        return ""
    best = sorted(candidates, key=lambda item: (-item[0], item[1]))[:max_sentences]
    while len(best) > 1 and _joined_length(best) > max_chars:
        best = sorted(best, key=lambda item: (-item[0], item[1]))[:-1]
    chosen = sorted(best, key=lambda item: item[1])
    return _trim(" ".join(item[2] for item in chosen), max_chars)


def _joined_length(items: list[tuple[float, int, str]]) -> int:
    return sum(len(item[2]) for item in items) + len(items) - 1


def _trim(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    cut = text[: max_chars - 1]
    space = cut.rfind(" ")
    if space > max_chars // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:-") + "…"
