"""Extractive summaries: what the sender wrote this time, its key sentences, in four languages."""

from __future__ import annotations

import pytest

from analysis.summary import clean_body, split_sentences, summarise

# --- quoted replies -----------------------------------------------------------------------------------------

REPLIES = {
    "en": (
        "Yes, Thursday works for me. I will bring the contract.\n\n"
        "On Mon, 3 Mar 2025 at 10:00, Anna Weber <anna@example.org> wrote:\n"
        "> Could we meet on Thursday?\n> QUOTED-SECRET\n"
    ),
    "en-wrapped": (
        "Yes, Thursday works for me. I will bring the contract.\n\n"
        "On Mon, 3 Mar 2025 at 10:00, Anna Weber <\nanna@example.org> wrote:\n"
        "> QUOTED-SECRET\n"
    ),
    "de": (
        "Ja, Donnerstag passt mir gut. Ich bringe den Vertrag mit.\n\n"
        "Am 03.03.2025 um 10:00 schrieb Anna Weber <anna@example.org>:\n"
        "> Können wir uns am Donnerstag treffen?\n> QUOTED-SECRET\n"
    ),
    "fr": (
        "Oui, jeudi me convient. J'apporterai le contrat.\n\n"
        "Le lun. 3 mars 2025 à 10:00, Anna Weber <anna@example.org> a écrit :\n"
        "> Pouvons-nous nous voir jeudi ?\n> QUOTED-SECRET\n"
    ),
    "it": (
        "Sì, giovedì va bene. Porterò il contratto.\n\n"
        "Il giorno lun 3 mar 2025 alle ore 10:00 Anna Weber <anna@example.org> ha scritto:\n"
        "> Possiamo vederci giovedì?\n> QUOTED-SECRET\n"
    ),
}


@pytest.mark.parametrize("lang", REPLIES)
def test_quoted_replies_are_removed_in_four_languages(lang):
    text = REPLIES[lang]
    cleaned = clean_body(text)
    assert "QUOTED-SECRET" not in cleaned and "@example.org" not in cleaned
    summary = summarise(text)
    assert summary and "QUOTED-SECRET" not in summary
    assert summary.split()[0] in {"Yes,", "Ja,", "Oui,", "Sì,"}


@pytest.mark.parametrize(
    "separator",
    [
        "-----Original Message-----",
        "-----Ursprüngliche Nachricht-----",
        "-----Message d'origine-----",
        "-----Messaggio originale-----",
    ],
)
def test_outlook_original_message_ends_the_new_text(separator):
    text = f"Approved, go ahead with the order.\n\n{separator}\nFrom: Anna\nSent: Monday\n\nQUOTED-SECRET\n"
    assert clean_body(text) == "Approved, go ahead with the order."


@pytest.mark.parametrize(
    "block",
    [
        "From: Anna Weber\nSent: Monday, March 3, 2025 10:00\nTo: Alex\nSubject: Order",
        "Von: Anna Weber\nGesendet: Montag, 3. März 2025 10:00\nAn: Alex\nBetreff: Bestellung",
        "De : Anna Weber\nEnvoyé : lundi 3 mars 2025 10:00\nÀ : Alex\nObjet : Commande",
        "Da: Anna Weber\nInviato: lunedì 3 marzo 2025 10:00\nA: Alex\nOggetto: Ordine",
    ],
)
def test_outlook_header_blocks_end_the_new_text(block):
    text = f"Approved, go ahead with the order.\n\n________________________________\n{block}\n\nQUOTED-SECRET"
    assert clean_body(text) == "Approved, go ahead with the order."
    assert clean_body(f"Approved, go ahead with the order.\n\n{block}\n\nQUOTED-SECRET") == (
        "Approved, go ahead with the order."
    )


def test_inline_answers_between_quotes_are_kept():
    text = (
        "On Mon, 3 Mar 2025, Anna <anna@example.org> wrote:\n"
        "> Can you come on Thursday?\n"
        "Yes, I can come on Thursday.\n"
        "> And bring the contract?\n"
        "Sure, I will bring it.\n"
    )
    assert clean_body(text) == "Yes, I can come on Thursday.\nSure, I will bring it."


@pytest.mark.parametrize(
    "marker",
    [
        "---------- Forwarded message ---------",
        "Begin forwarded message:",
        "-------- Weitergeleitete Nachricht --------",
        "-------- Message transféré --------",
        "---------- Messaggio inoltrato ----------",
    ],
)
def test_forwarded_headers_are_removed_but_the_forwarded_text_kept(marker):
    text = (
        f"FYI, see below.\n\n{marker}\nFrom: Shop <shop@example.com>\nDate: Mon, 3 Mar 2025\n"
        "Subject: Your invoice\nTo: Alex <alex@example.org>\n\nYour invoice of 40 EUR is due on 15 March.\n"
    )
    cleaned = clean_body(text)
    assert "shop@example.com" not in cleaned and "Subject:" not in cleaned
    assert "FYI, see below." in cleaned and "Your invoice of 40 EUR is due on 15 March." in cleaned


# --- signatures, footers, disclaimers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "closing",
    [
        "-- \nAnna Weber\nSIGNATURE-SECRET",
        "--\nAnna Weber\nSIGNATURE-SECRET",
        "Best regards\nAnna Weber\nSIGNATURE-SECRET",
        "Kind regards,\nAnna\nSIGNATURE-SECRET",
        "Best regards, Anna Weber\nSIGNATURE-SECRET",
        "Mit freundlichen Grüßen\nAnna Weber\nSIGNATURE-SECRET",
        "Viele Grüße\nAnna\nSIGNATURE-SECRET",
        "Cordialement,\nAnna Weber\nSIGNATURE-SECRET",
        "Bien à vous,\nAnna\nSIGNATURE-SECRET",
        "Cordiali saluti\nAnna Weber\nSIGNATURE-SECRET",
        "Un saluto,\nAnna\nSIGNATURE-SECRET",
        "Thanks,\nAnna\nSIGNATURE-SECRET",
    ],
)
def test_signatures_and_closings_are_removed(closing):
    text = f"Hello Alex,\n\nthe delivery arrives on Friday.\n\n{closing}\n+49 30 1234567"
    cleaned = clean_body(text)
    assert "SIGNATURE-SECRET" not in cleaned and "+49" not in cleaned
    assert "the delivery arrives on Friday." in cleaned


@pytest.mark.parametrize(
    "footer",
    ["Sent from my iPhone", "Von meinem iPhone gesendet", "Envoyé de mon iPhone", "Inviato da iPhone"],
)
def test_mobile_footers_are_removed(footer):
    assert clean_body(f"On my way, ten minutes late.\n\n{footer}") == "On my way, ten minutes late."


@pytest.mark.parametrize(
    "disclaimer",
    [
        "This e-mail and any attachments are confidential and intended solely for the addressee.",
        "CONFIDENTIALITY NOTICE: The information in this message is private.",
        "Diese E-Mail enthält vertrauliche und/oder rechtlich geschützte Informationen.",
        "Ce message et ses pièces jointes sont confidentiels.",
        "Questo messaggio e i suoi allegati sono riservati.",
    ],
)
def test_disclaimers_are_removed(disclaimer):
    text = f"The meeting moves to room 4.\n\n{disclaimer}\nDISCLAIMER-SECRET"
    assert clean_body(text) == "The meeting moves to room 4."


def test_a_thanks_sentence_is_content_not_a_closing():
    text = "Hi,\n\nThanks, that works for me.\nSee you on Friday."
    assert "See you on Friday." in clean_body(text)


def test_a_closing_word_as_first_line_is_kept():
    assert clean_body("Thanks!\nThe files arrived.") == "Thanks!\nThe files arrived."


# --- sentences ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("Wir brauchen z.B. neue Stühle. Der Rest passt.", 2),
        ("We need e.g. new chairs. The rest is fine.", 2),
        ("Please ask Dr. Miller about it. He knows.", 2),
        ("Das Treffen ist am 3. Mai in Berlin. Bitte sei pünktlich.", 2),
        ("Bis zum 12.03. brauchen wir das. Danke.", 2),
        ("Mme. Dupont viendra demain. Elle apporte le dossier.", 2),
        ("Il dott. Rossi arriva domani. Porta i documenti.", 2),
        ("Is it ready? Yes! Great.", 3),
        ("Version 2.1 is out. Please update.", 2),
    ],
)
def test_sentence_splitting_handles_abbreviations_dates_and_ordinals(text, count):
    assert len(split_sentences(text)) == count


def test_hard_wrapped_lines_are_joined_and_bullets_are_separate():
    text = "The vendor shortlist is down to\ntwo companies.\n\n- Legal review is ongoing\n- Next meeting: 21 March"
    assert split_sentences(text) == [
        "The vendor shortlist is down to two companies.",
        "Legal review is ongoing",
        "Next meeting: 21 March",
    ]


# --- choosing sentences -------------------------------------------------------------------------------------

LONG = (
    "Hi Alex,\n\n"
    "I hope you had a good weekend. The weather was lovely here and we went hiking twice. "
    "Our team finished the migration of the old reports last week. "
    "Could you please send me the signed contract by Friday? "
    "The office will get new coffee machines next month. "
    "Several colleagues asked about the parking rules again. "
    "The contract also needs the appendix with the price list.\n\n"
    "Best regards\nKim"
)


def test_the_summary_picks_requests_and_subject_words_in_original_order():
    summary = summarise(LONG, subject="Signed contract", max_sentences=2)
    assert summary == (
        "Could you please send me the signed contract by Friday? "
        "The contract also needs the appendix with the price list."
    )


def test_summaries_respect_max_sentences_and_max_chars():
    assert len(split_sentences(summarise(LONG, max_sentences=3))) <= 3
    short = summarise(LONG, subject="contract", max_chars=60)
    assert len(short) <= 60 and short
    assert summarise("word " * 500, max_chars=50).endswith("…")


def test_greetings_and_urls_are_not_summaries():
    text = "Hallo Frau Müller,\n\nhttps://example.org/a/very/long/link?x=1\n\nDie Lieferung kommt am Freitag."
    assert summarise(text) == "Die Lieferung kommt am Freitag."


@pytest.mark.parametrize(
    "text",
    ["", "   \n\n", "> only quoted\n> text", "-- \nSignature only"],
)
def test_nothing_to_summarise_gives_an_empty_string(text):
    assert summarise(text) == ""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Sehr geehrter Herr Moser,\n\nanbei das Angebot für die Webseite.\n\nMit freundlichen Grüßen\nKevin",
         "anbei das Angebot für die Webseite."),
        ("Bonjour,\n\nvoici le devis révisé pour la cuisine.\n\nCordialement,\nPierre",
         "voici le devis révisé pour la cuisine."),
        ("Buongiorno,\n\nin allegato il preventivo aggiornato.\n\nCordiali saluti,\nElena",
         "in allegato il preventivo aggiornato."),
        ("Hi Alex,\n\nthe venue is available on your dates.\n\nBest regards,\nSam",
         "the venue is available on your dates."),
    ],
)  # fmt: skip
def test_summaries_in_four_languages(text, expected):
    assert summarise(text) == expected


def test_a_wrapped_line_starting_with_a_date_is_not_a_numbered_item():
    text = "Wir laden herzlich zum Frühlingsfest am\n29. März auf dem Marktplatz ein.\n\n1. Punkt eins\n2. Punkt zwei"
    assert split_sentences(text) == [
        "Wir laden herzlich zum Frühlingsfest am 29. März auf dem Marktplatz ein.",
        "Punkt eins",
        "Punkt zwei",
    ]


@pytest.mark.parametrize(
    ("text", "unwanted"),
    [
        ("Ciao Alex,\n\nmi mandi le slide per domani?\n\nGrazie! Marco", "Marco"),
        ("Liebe Kolleginnen und Kollegen,\n\nab April gilt eine neue Regelung.\n\nIhre Verwaltung", "Verwaltung"),
        ("Alex,\n\nCould you review the slides before Thursday?\n\nHelen", "Alex,"),
        ("Your order has shipped.\n\nPlease do not reply to this email.", "reply"),
        ("Les nouveautés du mois sont en ligne.\n\nVous recevez cette lettre car vous êtes abonné.", "abonné"),
    ],
)
def test_greetings_sign_offs_and_boilerplate_stay_out_of_summaries(text, unwanted):
    summary = summarise(text)
    assert summary and unwanted not in summary
