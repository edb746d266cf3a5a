"""Which language a message is written in, from its own words: no model, no network, no content kept.

The legacy application stored a `detected_language` per message and the interface shows it; the
analysers use it too (the built-in analyser attributes words that several languages share, a language
model is asked to summarise in the message's language). Function words (articles, pronouns,
prepositions, auxiliaries) are the most frequent words of every text and differ between languages, so
counting them is enough for mail-length text, and fast (a set lookup per word) on a backfill of a
mailbox of 100,000 messages. A word shared by several languages ("de", "in", "a") counts for each of
them in equal parts. Quoted lines (">") are the other writer's text and are left out. When no language
clearly leads, the answer is "" (unknown): a wrong label is worse than none.
"""

from __future__ import annotations

import re
from collections import Counter

from django.utils.translation import gettext_lazy as _

LANGUAGE_NAMES = {
    "de": _("German"),
    "en": _("English"),
    "es": _("Spanish"),
    "fr": _("French"),
    "it": _("Italian"),
    "nl": _("Dutch"),
    "pt": _("Portuguese"),
}

_FUNCTION_WORDS = {
    "de": """
        der die das den dem des ein eine einen einem einer eines und oder aber doch sondern denn weil dass
        ob wenn als wie wo was wer wir ihr sie er es ich du mich dich mir dir uns euch ihnen ihm ihn sich
        mein meine dein deine sein seine ihre unser unsere euer nicht kein keine keinen nichts auch noch
        schon nur sehr mit von zu zum zur bei nach aus für über unter vor hinter zwischen durch gegen ohne
        um auf im am ins vom beim ist sind war waren bin bist seid habe hast hat haben hatte hatten wird
        werden wurde würde wurden kann können könnte muss müssen soll sollen sollte will wollen möchte
        möchten darf dürfen bitte danke diese dieser dieses diesen jetzt heute morgen hier dort dann also
        mehr viel viele alle alles gibt gerne ihnen sehr geehrte geehrter liebe lieber grüße grüßen
        freundlichen herzliche anbei leider noch einmal wieder
    """,
    "en": """
        the a an and or but because that this these those which who whom whose what when where why how
        if than then there here is are was were be been being am have has had having do does did done
        will would shall should can could may might must not no nor it its it's i me my mine you your
        yours he him his she her hers we us our ours they them their theirs of to in on at by for with
        from about into over after before between through during without under again also just only very
        too so all any some each every more most other such own same please thanks thank regards dear
        kind best let know get got send sent attached find below above up out don't i'm i've we're
        you're can't won't isn't doesn't
    """,
    "es": """
        el la los las un una unos unas y o pero porque que qué quien cual cuando donde como cómo si no ni
        es son era eran fue fueron ser estar está están estoy estamos he ha han hemos había habían sido
        tengo tiene tienen tenemos hay puede pueden puedo podemos debe deben del al de en con por para
        sin sobre entre hasta desde hacia yo tú usted ustedes él ella nosotros vosotros ellos ellas me te
        se nos le les lo mi mis tu tus su sus nuestro nuestra este esta estos estas ese esa eso muy más
        menos también ya todavía aún todo todos toda todas otro otra gracias saludos estimado estimada
        hola favor próximo próximos próxima días llegará mañana hoy aquí allí antes después semana mes
        nuevo nueva cuenta pedido enviamos enviarme
    """,
    "fr": """
        le la les un une des du de et ou mais car donc que qui quoi quand où comment si ne pas plus
        jamais rien est sont était étaient été être suis es sommes êtes ai as avons avez ont avait
        avaient sera seront serait peut peux pouvez pouvons doit dois devez faut je tu il elle nous vous
        ils elles me te se moi toi lui leur leurs mon ma mes ton ta tes son sa ses notre nos votre vos ce
        cet cette ces cela ça dans sur sous avec pour par sans chez entre vers avant après pendant depuis
        aussi très bien tout tous toute toutes autre merci bonjour cordialement madame monsieur
        beaucoup envoyer demain aujourd'hui voici ci joint mois semaine prochaine l' d' qu' j' n' c' s' m'
    """,
    "it": """
        il lo la i gli le un uno una e o ma perché che chi cosa quando dove come se non né è sono era
        erano stato stata stati essere ho hai ha abbiamo avete hanno aveva avere sarà sarebbe può puoi
        possono posso possiamo deve devono io tu lui lei noi voi loro mi ti si ci vi gli mio mia miei mie
        tuo tua suo sua suoi nostro nostra vostro questo questa questi queste quello quella di del della
        dei delle degli da dal dalla in nel nella nei nelle su sul sulla con per tra fra senza dopo prima
        entro anche molto più meno già ancora tutto tutti tutta tutte altro altra grazie saluti
        cordiali gentile buongiorno ciao mille prossimi prossima domani oggi qui l' dell' all' nell' un'
    """,
    "nl": """
        de het een en of maar want omdat dat die dit deze wie wat wanneer waar hoe als dan niet geen
        niets is zijn was waren ben bent heb hebt heeft hebben had hadden wordt worden werd zal zullen
        zou zouden kan kunnen kon moet moeten mag mogen wil willen ik jij je u hij zij ze wij we jullie
        mij me jou hem haar ons hun mijn jouw uw zijn onze van in op aan bij met voor naar uit over onder
        door tegen zonder tussen na om tot ook nog al alleen heel erg veel meer alle alles er hier daar
        nu graag bedankt dank groeten groet beste hartelijk vriendelijke morgen vandaag volgende
    """,
    "pt": """
        o a os as um uma uns umas e ou mas porque que quem qual quando onde como se não nem é são era
        eram foi foram ser estar está estão estou estamos tenho tem têm temos havia pode podem posso
        podemos deve devem do da dos das de em no na nos nas num numa com por para pelo pela sem sobre
        entre até desde eu tu você vocês ele ela nós eles elas me te lhe lhes meu minha meus minhas seu
        sua seus suas nosso nossa este esta isto esse essa isso muito mais menos também já ainda todo
        todos toda todas outro outra obrigado obrigada cumprimentos prezado prezada olá favor próximos
        amanhã hoje aqui então vamos segue anexo mês semana você rápido possível obrigado
    """,
}

# Letters that only some of these languages use: a weak hint (short texts, names and loanwords aside).
_LETTER_HINTS = {
    "de": "äöüß",
    "es": "ñ¿¡",
    "fr": "çœèêëîïûù",
    "it": "ìò",
    "pt": "ãõçê",
}
_LETTER_WEIGHT = 0.3
_LETTER_CAP = 3.0

_MIN_SCORE = 2.5  # below this the text is too short, or in a language not listed, to tell
_MIN_RATIO = 1.6  # the best language must lead the second by this factor
_MAX_CHARS = 20_000  # the opening of a long mail says as much as all of it

_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


def _weights() -> dict[str, dict[str, float]]:
    """word -> {language: share}: a word in k of the lists gives each of them 1/k."""
    owners: dict[str, list[str]] = {}
    for lang, words in _FUNCTION_WORDS.items():
        for word in set(words.split()):
            owners.setdefault(word, []).append(lang)
    return {word: {lang: 1 / len(langs) for lang in langs} for word, langs in owners.items()}


_WEIGHTS = _weights()


def _unquoted(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith(">"))


def scores(text: str, subject: str = "") -> dict[str, float]:
    """Each language's evidence in the text (exposed for tests and tuning)."""
    sample = f"{subject}\n{_unquoted(text[:_MAX_CHARS])}".lower().replace("\u2019", "'")
    result: Counter[str] = Counter()
    for match in _WORD.finditer(sample):
        word = match.group()
        shares = _WEIGHTS.get(word)
        if shares is None and "'" in word:  # "l'adresse", "c'est": the elided article decides
            shares = _WEIGHTS.get(word.split("'", 1)[0] + "'")
        for lang, share in (shares or {}).items():
            result[lang] += share
    letters = Counter(ch for ch in sample if not ch.isascii())
    for lang, hints in _LETTER_HINTS.items():
        hint = sum(letters[ch] for ch in hints) * _LETTER_WEIGHT
        if hint:
            result[lang] += min(hint, _LETTER_CAP)
    return dict(result)


def detect(text: str, subject: str = "") -> str:
    """The ISO 639-1 code of the message's language, or "" when it cannot be told with confidence."""
    ranked = sorted(scores(text, subject).items(), key=lambda item: item[1], reverse=True)
    if not ranked or ranked[0][1] < _MIN_SCORE:
        return ""
    if len(ranked) > 1 and ranked[0][1] < _MIN_RATIO * ranked[1][1]:
        return ""
    return ranked[0][0]


def language_name(code: str) -> str:
    """The language's name in the interface's language ("" for unknown)."""
    return str(LANGUAGE_NAMES.get(code, code))
