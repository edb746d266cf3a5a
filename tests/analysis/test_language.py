"""Language detection on mail-like text: each language, short mail, quotes, mixtures and the unknown."""

import pytest

from analysis import language

SAMPLES = {
    "de": [
        "Hallo Anna, kannst du mir bitte die Unterlagen bis Freitag schicken? Danke und viele Grüße, Jan",
        "Sehr geehrte Damen und Herren, anbei erhalten Sie die Rechnung für den Monat November. "
        "Mit freundlichen Grüßen",
        "Die Besprechung ist auf nächste Woche verschoben, weil der Raum nicht frei ist.",
        "Wir haben Ihre Bestellung erhalten und werden sie so schnell wie möglich versenden.",
        "Ich bin morgen nicht im Büro, aber du kannst mich auf dem Handy erreichen.",
    ],
    "en": [
        "Hi Anna, could you please send me the documents by Friday? Thanks, Jan",
        "Dear customer, your invoice for November is attached. Kind regards, the billing team",
        "The meeting has been moved to next week because the room is not available.",
        "We have received your order and will ship it as soon as possible.",
        "I'm out of the office tomorrow, but you can reach me on my phone.",
    ],
    "es": [
        "Hola Ana, ¿puedes enviarme los documentos antes del viernes? Gracias, Juan",
        "Estimado cliente, le enviamos la factura del mes de noviembre. Saludos cordiales",
        "La reunión se ha movido a la próxima semana porque la sala no está libre.",
        "Hemos recibido su pedido y lo enviaremos lo antes posible.",
        "Su paquete ha sido enviado y llegará en los próximos días.",
    ],
    "fr": [
        "Bonjour Anne, peux-tu m'envoyer les documents avant vendredi ? Merci, Jean",
        "Cher client, vous trouverez ci-joint la facture du mois de novembre. Cordialement",
        "La réunion est déplacée à la semaine prochaine car la salle n'est pas libre.",
        "Nous avons bien reçu votre commande et nous l'expédierons dès que possible.",
        "Je ne suis pas au bureau demain, mais vous pouvez me joindre sur mon portable.",
    ],
    "it": [
        "Ciao Anna, puoi mandarmi i documenti entro venerdì? Grazie mille, Gianni",
        "Gentile cliente, in allegato trova la fattura del mese di novembre. Cordiali saluti",
        "La riunione è stata spostata alla prossima settimana perché la sala non è libera.",
        "Abbiamo ricevuto il suo ordine e lo spediremo il prima possibile.",
        "Il suo pacco è stato spedito e arriverà nei prossimi giorni.",
    ],
    "nl": [
        "Hoi Anna, kun je mij de documenten voor vrijdag sturen? Bedankt, Jan",
        "Beste klant, in de bijlage vindt u de factuur van november. Met vriendelijke groeten",
        "De vergadering is naar volgende week verplaatst omdat de zaal niet vrij is.",
        "Wij hebben uw bestelling ontvangen en zullen deze zo snel mogelijk verzenden.",
    ],
    "pt": [
        "Olá Ana, você pode me enviar os documentos até sexta-feira? Obrigado, João",
        "Prezado cliente, segue em anexo a fatura do mês de novembro. Cumprimentos",
        "A reunião foi adiada para a próxima semana porque a sala não está livre.",
        "Recebemos o seu pedido e vamos enviá-lo o mais rápido possível.",
    ],
}


@pytest.mark.parametrize(("expected", "text"), [(lang, text) for lang, texts in SAMPLES.items() for text in texts])
def test_mail_sized_text_in_each_language(expected, text):
    assert language.detect(text) == expected, language.scores(text)


def test_too_little_text_is_unknown():
    assert language.detect("OK") == ""
    assert language.detect("") == ""
    assert language.detect("Invoice 2026-11 #4711") == ""


def test_a_language_without_a_list_is_unknown_not_guessed():
    finnish = "Hei Anna, voisitko lähettää minulle asiakirjat perjantaihin mennessä? Kiitos, Jukka"
    polish = "Cześć Anno, czy możesz przesłać mi dokumenty do piątku? Dzięki, Janek"
    assert language.detect(finnish) == ""
    assert language.detect(polish) == ""


def test_quoted_lines_are_the_other_writers_and_do_not_count():
    reply = (
        "Danke, das passt mir gut. Ich komme um zehn Uhr.\n\n"
        "> On Monday, Jan wrote:\n"
        "> Could you please come to the office on Tuesday? We would like to talk about the\n"
        "> plans for next year and the budget that we have for the new team. Let me know if\n"
        "> this time works for you, and if not, when you would be available this week.\n"
    )
    assert language.detect(reply) == "de"


def test_the_subject_counts_with_the_body():
    assert language.detect("Anbei.", subject="Die Rechnung für den Monat November") == "de"


def test_an_even_mixture_is_unknown_rather_than_a_coin_toss():
    mixed = (
        "Thank you for the offer, we are happy. Vielen Dank für das Angebot, wir sind froh. "
        "It is very good. Das ist sehr gut."
    )
    assert language.detect(mixed) == ""


def test_a_long_message_is_judged_by_its_opening():
    text = "Wir haben die Unterlagen erhalten und melden uns bald. " * 400 + "the and of to in " * 5_000
    assert len(text) > 20_000
    assert language.detect(text) == "de"


def test_typographic_apostrophes_count_like_ascii_ones():
    assert language.detect("J’ai reçu la lettre et c’est très bien, merci pour tout.") == "fr"


def test_language_names():
    assert language.language_name("de") == "German"
    assert language.language_name("") == ""
    assert language.language_name("xx") == "xx"
