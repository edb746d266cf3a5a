"""The built-in analyser: each signal on its own, in German, English, French and Italian.

Pure functions, no database. Most tests compare a message with the same message minus one signal, so
they pin down what that signal does rather than the exact numbers of the scoring.
"""

from __future__ import annotations

import dataclasses
import re
import time
from datetime import datetime

import pytest

from analysis import heuristics
from analysis.heuristics import analyse, extract_signals, vip_match
from analysis.types import AnalysisResult, Category, MessageInput, UserContext

ME = "alex@example.org"
NOW = datetime(2025, 3, 10, 9, 0)  # a Monday


def ctx(**kwargs) -> UserContext:
    return UserContext(addresses={ME}, now=NOW, **kwargs)


def personal(text: str, subject: str = "Project", **kwargs) -> MessageInput:
    fields = {"from_address": "colleague@partner.example", "from_name": "Kim Colleague", "to": [ME]} | kwargs
    return MessageInput(subject=subject, text=text, **fields)


NEUTRAL = "Hi Alex,\n\nthe report is attached. The numbers look fine.\n\nBest regards\nKim"


# --- VIP patterns -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "patterns", "expected"),
    [
        ("boss@example.com", ["boss@example.com"], True),
        ("Boss@Example.COM", ["boss@example.com"], True),
        ("Jane Boss <boss@example.com>", ["BOSS@example.com"], True),
        ("other@example.com", ["boss@example.com"], False),
        ("anyone@example.com", ["@example.com"], True),
        ("anyone@example.com", ["example.com"], True),
        ("anyone@mail.example.com", ["@example.com"], True),  # subdomains count
        ("anyone@mail.example.com", ["example.com"], True),
        ("anyone@evilexample.com", ["example.com"], False),  # a suffix is not a subdomain
        ("anyone@example.com.evil.net", ["@example.com"], False),
        ("anyone@example.com", ["*@example.com"], True),
        ("anyone@sub.example.com", ["*@example.com"], False),  # shell semantics: "*@x" is that domain only
        ("boss.jane@example.com", ["boss*@example.com"], True),
        ("jane.boss@example.com", ["boss*@example.com"], False),
        ("x@eu.example.org", ["@*.example.org"], True),
        ("x@eu.example.org", ["*.example.org"], True),
        ("chiara.bianchi@posta.example", ["chiara.bianchi@*"], True),
        ("x@example.com", [], False),
        ("", ["@example.com"], False),
        ("x@example.com", ["", "  "], False),
    ],
)
def test_vip_patterns(address, patterns, expected):
    assert vip_match(address, patterns) is expected


# --- headers: newsletters, notifications ------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"list_id": "<weekly.shop.example>"},
        {"has_list_unsubscribe": True},
        {"precedence": "bulk"},
        {"precedence": "list"},
    ],
)
def test_list_headers_make_a_low_priority_newsletter(headers):
    msg = MessageInput(
        subject="Our spring collection",
        text="Discover our new spring collection. Free shipping this week.",
        from_address="news@shop.example",
        to=[ME],
        **headers,
    )
    result = analyse(msg, ctx())
    assert result.category == Category.NEWSLETTER and result.is_newsletter and not result.is_spam
    assert (result.urgency, result.importance) == (1, 1)
    assert "mailing list" in result.reasons
    assert result.method == "builtin"


def test_a_vip_newsletter_is_not_low_importance():
    msg = MessageInput(
        subject="Board update", text="Quarterly update for all shareholders.", from_address="ceo@corp.example",
        to=[ME], list_id="<board.corp.example>",
    )  # fmt: skip
    plain = analyse(msg, ctx())
    vip = analyse(msg, ctx(vip_senders=["@corp.example"]))
    assert vip.category == Category.NEWSLETTER
    assert vip.importance > plain.importance and "VIP sender" in vip.reasons


@pytest.mark.parametrize(
    ("sender", "headers"),
    [
        ("no-reply@shop.example", {}),
        ("noreply@bank.example", {}),
        ("do-not-reply@airline.example", {}),
        ("notifications@github.com", {"list_id": "<repo.github.com>", "has_list_unsubscribe": True}),
        ("alerts@monitoring.example", {}),
        ("anna@shop.example", {"auto_submitted": "auto-generated"}),
    ],
)
def test_automated_senders_are_notifications(sender, headers):
    msg = MessageInput(subject="Your order has shipped", text="Your parcel is on its way.", from_address=sender,
                       to=[ME], **headers)  # fmt: skip
    result = analyse(msg, ctx())
    assert result.category == Category.NOTIFICATION and not result.is_newsletter
    assert result.urgency == 1


def test_auto_submitted_no_is_a_person():
    msg = personal(NEUTRAL, auto_submitted="no")
    assert analyse(msg, ctx()).category != Category.NOTIFICATION


def test_an_out_of_office_reply_is_a_quiet_notification():
    msg = personal(
        "I am out of the office until Friday. For urgent matters please contact my colleague immediately.",
        subject="Automatic reply: contract",
        auto_submitted="auto-replied",
    )
    result = analyse(msg, ctx())
    assert (result.category, result.urgency, result.importance) == (Category.NOTIFICATION, 1, 1)
    assert "automatic message" in result.reasons


def test_a_security_alert_is_a_more_urgent_notification():
    shipped = MessageInput(subject="Your order has shipped", text="On its way.", from_address="no-reply@x.example",
                           to=[ME])  # fmt: skip
    alert = dataclasses.replace(shipped, subject="Security alert: new sign-in to your account")
    assert analyse(alert, ctx()).urgency > analyse(shipped, ctx()).urgency
    assert analyse(alert, ctx()).importance > analyse(shipped, ctx()).importance


# --- spam ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "text"),
    [
        ("CONGRATULATIONS!!! You have WON", "Dear friend, you have won a million dollars!!! Click here to claim."),
        ("Sie haben gewonnen!!!", "Herzlichen Glückwunsch, Sie haben gewonnen! Bestätigen Sie Ihre Daten hier!!!"),
        ("Vous avez gagné !!!", "Félicitations, vous avez gagné un iPhone ! Cliquez ici, offre limitée !!!"),
        ("Hai vinto!!!", "Complimenti, hai vinto un premio! Clicca qui e conferma i tuoi dati!!!"),
    ],
)
def test_spam_in_four_languages(subject, text):
    msg = MessageInput(subject=subject, text=text, from_address="promo@prizes.example", to=["list@prizes.example"],
                       reply_to=["claims@elsewhere.example"])  # fmt: skip
    result = analyse(msg, ctx())
    assert result.is_spam and result.category == Category.SPAM
    assert (result.urgency, result.importance) == (1, 1)
    assert "spam indicators" in result.reasons and "reply-to elsewhere" in result.reasons


def test_phishing_from_free_mail_with_a_brand_name():
    msg = MessageInput(
        subject="Your account has been suspended",
        text="Verify your account within 24 hours: http://login.example.ru/verify",
        from_address="secure.service@gmail.com",
        from_name="PayPal Service",
        to=[ME],
    )
    result = analyse(msg, ctx())
    assert result.is_spam and "brand name from free mail" in result.reasons


def test_unsubscribe_without_list_headers_is_a_spam_point():
    msg = personal("Great deals on watches. Unsubscribe here.", subject="Deals")
    assert "unsubscribe without list headers" in extract_signals(msg, ctx()).spam_reasons


def test_trusted_senders_are_never_spam():
    msg = MessageInput(subject="WE WON THE LOTTERY!!!", text="You have won... just kidding!!! Lottery jackpot!!!",
                       from_address="friend@pals.example", to=["someone@else.example"],
                       reply_to=["friend@other.example"])  # fmt: skip
    assert analyse(msg, ctx()).is_spam
    assert not analyse(msg, ctx(sent_to_sender_count=3)).is_spam
    assert not analyse(msg, ctx(vip_senders=["@pals.example"])).is_spam
    assert not analyse(msg, ctx(thread_has_user_message=True)).is_spam


def test_a_shop_newsletter_with_offers_is_not_spam():
    msg = MessageInput(subject="Limited time offer: 20% off", text="Buy now and save. Limited time offer.",
                       from_address="news@shop.example", to=[ME], list_id="<news.shop.example>",
                       has_list_unsubscribe=True)  # fmt: skip
    result = analyse(msg, ctx())
    assert not result.is_spam and result.category == Category.NEWSLETTER


# --- recipients, threads, history, VIP ---------------------------------------------------------------------


def test_being_only_in_cc_lowers_importance():
    request = "Could you please send me the report by Friday?"
    direct = analyse(personal(request), ctx())
    copied = analyse(personal(request, to=["boss@partner.example"], cc=[ME]), ctx())
    assert copied.importance < direct.importance
    assert copied.category == Category.INFORMATION and direct.category == Category.ACTION_REQUIRED
    assert "you are only in Cc" in copied.reasons and "you are only in Cc" not in direct.reasons


def test_unknown_user_addresses_mean_no_recipient_penalty():
    msg = personal("Could you send me the file?", to=["someone@else.example"], cc=["x@y.example"])
    result = analyse(msg, UserContext(now=NOW))
    assert result.category == Category.ACTION_REQUIRED and "you are only in Cc" not in result.reasons


def test_a_reply_in_the_users_thread_raises_importance():
    msg = personal(NEUTRAL, subject="Re: venue options", to=["team@partner.example"], cc=[ME])
    outside = analyse(msg, ctx())
    inside = analyse(msg, ctx(thread_has_user_message=True))
    assert inside.importance > outside.importance
    assert "reply in your thread" in inside.reasons


def test_a_mailing_list_thread_the_user_writes_in_is_personal():
    msg = MessageInput(subject="Re: [dev] drop Python 3.9?", text="Alex, would you be willing to draft the notice?",
                       from_address="martin@lists.example", to=["dev@lists.example"], list_id="<dev.lists.example>",
                       precedence="list")  # fmt: skip
    assert analyse(msg, ctx()).category == Category.NEWSLETTER
    result = analyse(msg, ctx(thread_has_user_message=True))
    assert result.category == Category.REPLY_EXPECTED and result.importance >= 2


def test_history_with_the_sender_raises_importance():
    msg = personal(NEUTRAL, to=["team@partner.example"], cc=[ME])
    stranger = analyse(msg, ctx())
    known = analyse(msg, ctx(sent_to_sender_count=12))
    assert known.importance > stranger.importance
    assert "you write to this sender" in known.reasons


def test_a_vip_sender_boosts_importance_and_urgency():
    msg = personal("Could you have a look at the slides when you have a moment?")
    plain = analyse(msg, ctx())
    vip = analyse(msg, ctx(vip_senders=["colleague@partner.example"]))
    assert vip.importance == 3 and vip.importance > plain.importance
    assert vip.urgency > plain.urgency
    assert "VIP sender" in vip.reasons


def test_role_mailboxes_are_less_important_than_people():
    person = analyse(personal(NEUTRAL), ctx())
    role = analyse(personal(NEUTRAL, from_address="hr@partner.example"), ctx())
    assert role.importance < person.importance


# --- wording: urgency, requests, questions ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lang", "text"),
    [
        ("de", "Hallo Alex, das ist dringend, bitte melde dich sofort."),
        ("de", "Die Frist läuft ab, wir brauchen die Unterlagen umgehend."),
        ("en", "This is urgent, we need the answer asap."),
        ("en", "Please handle this as soon as possible."),
        ("fr", "C'est urgent, merci de répondre immédiatement."),
        ("fr", "Il faut le faire au plus vite, dès que possible."),
        ("it", "È urgente, rispondi subito per favore."),
        ("it", "Serve al più presto, quanto prima."),
    ],
)
def test_urgent_wording_in_four_languages(lang, text):
    urgent = analyse(personal(text), ctx())
    calm = analyse(personal(NEUTRAL), ctx())
    assert f"urgent wording ({lang})" in urgent.reasons
    assert urgent.urgency >= 2 and urgent.urgency > calm.urgency


def test_urgent_wording_in_the_subject_weighs_more():
    body_only = analyse(personal("Please send the file, it is urgent.", subject="File"), ctx())
    in_subject = analyse(personal("Please send the file.", subject="URGENT: file"), ctx())
    assert in_subject.urgency >= body_only.urgency >= 2


@pytest.mark.parametrize(
    ("lang", "text", "category"),
    [
        ("en", "Could you please send me the signed contract?", Category.ACTION_REQUIRED),
        ("en", "Please review the attached draft.", Category.ACTION_REQUIRED),
        ("en", "Please let me know what you think.", Category.REPLY_EXPECTED),
        ("de", "Könnten Sie mir bitte den Vertrag schicken?", Category.ACTION_REQUIRED),
        ("de", "Bitte prüfe den Entwurf.", Category.ACTION_REQUIRED),
        ("de", "Gib mir bitte Bescheid, ob das passt.", Category.REPLY_EXPECTED),
        ("fr", "Pourriez-vous m'envoyer le contrat signé ?", Category.ACTION_REQUIRED),
        ("fr", "Merci de vérifier le document.", Category.ACTION_REQUIRED),
        ("fr", "Tenez-moi au courant, s'il vous plaît.", Category.REPLY_EXPECTED),
        ("it", "Potresti inviarmi il contratto firmato?", Category.ACTION_REQUIRED),
        ("it", "Per favore controlla la bozza.", Category.ACTION_REQUIRED),
        ("it", "Fammi sapere cosa ne pensi, per favore.", Category.REPLY_EXPECTED),
    ],
)
def test_requests_in_four_languages(lang, text, category):
    result = analyse(personal(text), ctx())
    assert result.category == category
    assert f"request ({lang})" in result.reasons


@pytest.mark.parametrize(
    "text",
    [
        "Are you free for dinner next week?",
        "Hast du am Wochenende Zeit?",
        "Êtes-vous disponible jeudi ?",
        "Sei libero sabato sera?",
    ],
)
def test_questions_to_the_reader_expect_a_reply(text):
    result = analyse(personal(text), ctx())
    assert result.category == Category.REPLY_EXPECTED and "question to you" in result.reasons


def test_question_marks_in_urls_are_not_questions():
    msg = personal("The report is here: https://example.org/report?id=7&lang=en\n\nNothing else to add.")
    signals = extract_signals(msg, ctx())
    assert signals.questions == 0 and analyse(msg, ctx()).category == Category.INFORMATION


def test_polite_formulas_are_not_requests():
    msg = personal("Please find attached the minutes of the meeting.", subject="Minutes")
    result = analyse(msg, ctx())
    assert result.category == Category.INFORMATION and not any(r.startswith("request") for r in result.reasons)


def test_an_action_word_in_another_sentence_does_not_make_an_action():
    msg = personal("Would you like to join the call? I can review the slides myself.")
    assert analyse(msg, ctx()).category == Category.REPLY_EXPECTED


def test_quoted_text_is_not_a_signal():
    msg = personal(
        "Thanks, noted.\n\nOn Fri, 7 Mar 2025 at 10:00, Kim <kim@partner.example> wrote:\n"
        "> This is URGENT, please send the contract by tomorrow!\n"
    )
    result = analyse(msg, ctx())
    assert result.urgency == 1 and result.category == Category.INFORMATION
    assert not any(r.startswith("urgent wording") for r in result.reasons)


# --- dates and deadlines ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("Please send it by Friday.", 4),
        ("Bitte bis Freitag schicken.", 4),
        ("Please send it until 12.03.", 2),
        ("Bitte bis zum 12.03.2025 zurückschicken.", 2),
        ("Bitte bis zum 3. Mai erledigen.", 54),
        ("Merci de l'envoyer avant le 15 mars.", 5),
        ("Merci de l'envoyer d'ici vendredi.", 4),
        ("Per favore invialo entro il 14 marzo.", 4),
        ("Per favore invialo entro domani.", 1),
        ("Please send it no later than 2025-03-11.", 1),
        ("Please send it by tomorrow.", 1),
        ("Bitte bis morgen schicken.", 1),
        ("Merci de l'envoyer avant demain.", 1),
        ("Please submit the form by March 14th.", 4),
        ("Bitte bis heute Abend schicken.", 0),
        ("Please send it by 14/03/2025.", 4),
    ],
)
def test_deadlines_in_four_languages(text, days):
    signals = extract_signals(personal(text), ctx())
    assert signals.deadline and signals.deadline_days == days
    assert "deadline in text" in analyse(personal(text), ctx()).reasons


def test_a_close_deadline_is_more_urgent_than_a_far_one():
    close = analyse(personal("Could you send me the figures by tomorrow?"), ctx())
    far = analyse(personal("Could you send me the figures by 30.04.?"), ctx())
    assert close.urgency == 3 and far.urgency < close.urgency


@pytest.mark.parametrize(
    "text",
    [
        "Guten Morgen Alex, anbei die Unterlagen.",  # a greeting, not "tomorrow"
        "We released version 1.2.3 last week.",
        "Our server is 10.0.0.1 and the phone is 12.03.45.67.",
        "Please find attached the report from 12.01.2024.",  # long past
    ],
)
def test_things_that_are_not_deadlines(text):
    signals = extract_signals(personal(text), ctx())
    assert not signals.deadline and signals.near_date_days is None


def test_next_week_weekday_is_not_tomorrow():
    signals = extract_signals(personal("Hätten Sie nächste Woche am Dienstag Zeit?"), ctx())
    assert signals.near_date_days >= 7  # Tuesday is tomorrow, but "next week Tuesday" is not


def test_without_a_reference_date_relative_words_still_count():
    msg = personal("Please send the contract by tomorrow.", date=None)
    result = analyse(msg, UserContext(addresses={ME}))
    assert "deadline in text" in result.reasons and result.urgency == 3


# --- result contract ----------------------------------------------------------------------------------------

SECRET = "Zanzibar"
ALLOWED_REASON = re.compile(
    r"^(VIP sender|automatic message|mailing list|automated sender|reply in your thread|you write to this sender|"
    r"you are only in Cc|you are not a direct recipient|many recipients|deadline in text|date soon|"
    r"question to you|spam indicators|spam phrases|many exclamation marks|shouting subject|money bait|"
    r"reply-to elsewhere|unsubscribe without list headers|brand name from free mail|not addressed to you|"
    r"urgent wording \((de|en|fr|it)\)|request \((de|en|fr|it)\))$"
)


@pytest.mark.parametrize(
    "msg",
    [
        personal(f"URGENT {SECRET}: please send {SECRET} by tomorrow? asap", subject=f"{SECRET} deadline"),
        MessageInput(subject=f"{SECRET} WINNER!!!", text=f"You have won {SECRET}!!! Click here to claim. unsubscribe",
                     from_address=f"{SECRET.lower()}@gmail.com", from_name="PayPal", to=["x@y.example"],
                     reply_to=["a@b.example"]),
        MessageInput(subject=SECRET, text=SECRET, from_address="news@x.example", list_id=f"<{SECRET}>",
                     auto_submitted="auto-generated", to=["a@b.example"] * 12),
    ],
)  # fmt: skip
def test_reasons_are_fixed_labels_that_never_quote_the_message(msg):
    result = analyse(msg, ctx(vip_senders=["@x.example"], thread_has_user_message=True, sent_to_sender_count=2))
    assert result.reasons
    for reason in result.reasons:
        assert SECRET.lower() not in reason.lower()
        assert ALLOWED_REASON.match(reason), reason


def test_result_is_a_valid_analysis_result_with_a_summary():
    msg = personal(
        "Hi Alex,\n\nthe client wants the signed contract back. Could you please send it by Friday?\n\n"
        "Best regards\nKim\n\nOn Fri, 7 Mar 2025, Alex <alex@example.org> wrote:\n> old stuff\n",
        subject="Signed contract",
    )
    result = analyse(msg, ctx())
    assert isinstance(result, AnalysisResult) and result.method == "builtin"
    assert 0.0 <= result.confidence <= 1.0
    assert "contract" in result.summary and "old stuff" not in result.summary and "Best regards" not in result.summary


def test_confidence_follows_how_clear_the_signals_are():
    newsletter = MessageInput(subject="News", text="Our news.", from_address="news@x.example", to=[ME],
                              list_id="<x>", has_list_unsubscribe=True, precedence="bulk")  # fmt: skip
    vague = personal("Some thoughts on the project.")
    assert analyse(newsletter, ctx()).confidence > analyse(vague, ctx()).confidence


def test_empty_message():
    result = analyse(MessageInput(subject="", text=""), UserContext())
    assert result.category == Category.INFORMATION and result.summary == ""


def test_huge_messages_are_capped():
    text = ("Lorem ipsum dolor sit amet, please review. " * 50 + "\n\n") * 2000  # ~4.4 MB
    started = time.perf_counter()
    analyse(personal(text), ctx())
    assert time.perf_counter() - started < 2.0


def test_word_lists_are_compiled_once_at_import():
    assert isinstance(heuristics.WORDING, heuristics.Lexicon) and heuristics.WORDING.word_keys
    assert isinstance(heuristics.NUMERIC_DATE, re.Pattern)
