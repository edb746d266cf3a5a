"""Masking of personal data before text goes to an LLM provider, and its restoration.

Pure functions: no database, no server.
"""

from __future__ import annotations

import time

import pytest

from analysis.masking import Masking, is_valid_iban, mask, names_from_address, names_from_text

VALID_IBANS = [
    "DE89 3704 0044 0532 0130 00",
    "DE89370400440532013000",
    "GB82 WEST 1234 5698 7654 32",
    "FR14 2004 1010 0505 0001 3M02 606",
    "CH93 0076 2011 6238 5295 7",
    "IT60 X054 2811 1010 0000 0123 456",
    "AT61 1904 3002 3457 3201",
    "NL91ABNA0417164300",
]


def mask_one(text: str, names: list[str] | None = None) -> tuple[str, Masking]:
    masked, masking = mask({"text": text}, names or [])
    return masked["text"], masking


# --------------------------------------------------------------------------------------------------
# E-mail addresses and URLs
# --------------------------------------------------------------------------------------------------


def test_email_addresses_get_stable_placeholders_across_fields():
    masked, masking = mask(
        {
            "subject": "Mail from anna.schmidt@example.com",
            "body": "Write to ANNA.SCHMIDT@example.com or bob@example.org.",
        },
        [],
    )
    assert masked["subject"] == "Mail from <EMAIL_1>"
    assert masked["body"] == "Write to <EMAIL_1> or <EMAIL_2>."
    assert masking.unmask("<EMAIL_2>") == "bob@example.org"


def test_url_is_masked_before_the_address_it_contains():
    masked, masking = mask_one("See https://example.com/unsubscribe?u=anna@example.com, then write anna@example.com.")
    assert masked == "See <URL_1>, then write <EMAIL_1>."
    assert masking.unmask("<URL_1>") == "https://example.com/unsubscribe?u=anna@example.com"


@pytest.mark.parametrize(
    ("text", "url"),
    [
        ("Go to https://example.com/a/b.", "https://example.com/a/b"),
        ("(see www.example.org/page)", "www.example.org/page"),
        ("Wiki: https://en.wikipedia.org/wiki/Foo_(bar)!", "https://en.wikipedia.org/wiki/Foo_(bar)"),
        ("<http://intranet.local:8080/x?y=1&z=2>", "http://intranet.local:8080/x?y=1&z=2"),
    ],
)
def test_urls_are_masked_without_trailing_punctuation(text, url):
    masked, masking = mask_one(text)
    assert url not in masked
    assert "<URL_1>" in masked
    assert masking.unmask(masked) == text


def test_address_on_a_www_host_is_one_email_not_a_url():
    masked, _ = mask_one("info@www.example.com")
    assert masked == "<EMAIL_1>"


def test_known_header_addresses_are_masked_even_without_a_dotted_domain():
    masked, masking = mask({"to": "root@localhost"}, [], addresses=["root@localhost"])
    assert masked["to"] == "<EMAIL_1>"
    assert masking.unmask(masked["to"]) == "root@localhost"


# --------------------------------------------------------------------------------------------------
# IBANs
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("iban", VALID_IBANS)
def test_valid_ibans_are_recognised_and_masked(iban):
    assert is_valid_iban(iban)
    masked, masking = mask_one(f"Please pay to {iban} by Friday.")
    assert masked == "Please pay to <IBAN_1> by Friday."
    assert masking.unmask(masked) == f"Please pay to {iban} by Friday."


@pytest.mark.parametrize(
    "candidate",
    [
        "DE89 3704 0044 0532 0130 01",  # one digit off: checksum fails
        "DE89370400440532013",  # too short for DE
        "AB12 CDEF GHIJ KLMN OP",  # not a real number at all
        "ORDER12345678901234567",
    ],
)
def test_iban_lookalikes_fail_the_checksum_and_stay(candidate):
    assert not is_valid_iban(candidate)
    masked, _ = mask_one(f"Reference {candidate} here")
    assert "<IBAN_" not in masked  # (digit runs inside may still be taken for a phone number: over-masking is safe)


def test_iban_followed_by_bic_and_text_masks_only_the_iban():
    masked, _ = mask_one("IBAN: DE89 3704 0044 0532 0130 00 BIC COBADEFFXXX")
    assert masked == "IBAN: <IBAN_1> BIC COBADEFFXXX"


def test_same_iban_in_two_spellings_gets_one_placeholder():
    masked, _ = mask_one("DE89 3704 0044 0532 0130 00 = DE89370400440532013000")
    assert masked == "<IBAN_1> = <IBAN_1>"


# --------------------------------------------------------------------------------------------------
# Phone numbers
# --------------------------------------------------------------------------------------------------

PHONES = [
    # Germany
    "+49 30 12345678",
    "+49 (0)30 1234 5678",
    "0049 89 1234567",
    "030 12345678",
    "030/1234567",
    "0171 1234567",
    "(030) 123 456-78",
    # France
    "+33 1 23 45 67 89",
    "01 23 45 67 89",
    "06.12.34.56.78",
    # Italy
    "+39 02 1234 5678",
    "02 1234 5678",
    "333 123 4567",
    "347 1234567",
    # Switzerland
    "+41 44 123 45 67",
    "044 123 45 67",
    "079 123 45 67",
    # USA
    "+1 (555) 123-4567",
    "(555) 123-4567",
    "555-123-4567",
    "555.123.4567",
]


@pytest.mark.parametrize("phone", PHONES)
def test_phone_numbers_in_national_and_international_formats_are_masked(phone):
    text = f"Call me at {phone}, thanks."
    masked, masking = mask_one(text)
    assert masked == "Call me at <PHONE_1>, thanks."
    assert masking.unmask(masked) == text


@pytest.mark.parametrize(
    "text",
    [
        "The meeting is on 01.02.2024 10:30 in room 4.",
        "Deadline 2024-01-15, please.",
        "Invoice 12345678 over 1.234.567,89 EUR.",
        "Postcode 10115 Berlin, order #4711-0815.",
        "Python 3.11.4 and ISBN 978-3-16-148410-0.",
        "Between 2019 and 2024 sales grew 15 %.",
    ],
)
def test_dates_amounts_and_references_are_not_phone_numbers(text):
    masked, masking = mask_one(text)
    assert masked == text
    assert len(masking) == 0


def test_two_numbers_separated_by_a_slash_are_masked_separately():
    masked, masking = mask_one("Tel 030 1234567 / 0171 7654321")
    assert masked == "Tel <PHONE_1> / <PHONE_2>"
    assert masking.unmask("<PHONE_2>") == "0171 7654321"


def test_a_date_next_to_a_phone_number_stays_readable():
    masked, _ = mask_one("Am 15.03.2024 0171 1234567 anrufen")
    assert masked == "Am 15.03.2024 <PHONE_1> anrufen"


# --------------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------------


def test_full_names_and_their_parts_are_masked_case_insensitively():
    masked, masking = mask_one("Anna Schmidt wrote. Anna says hi; SCHMIDT agrees.", ["Anna Schmidt"])
    assert masked == "<NAME_1> wrote. <NAME_2> says hi; <NAME_3> agrees."
    assert masking.unmask(masked) == "Anna Schmidt wrote. Anna says hi; SCHMIDT agrees."


def test_names_match_on_word_boundaries_only():
    masked, _ = mask_one("Annabelle met Anna in Annapolis with Peterson.", ["Anna Peter"])
    assert masked == "Annabelle met <NAME_1> in Annapolis with Peterson."


def test_short_name_parts_and_non_name_words_are_not_masked():
    masked, _ = mask_one("Li and Peter joined the team of GitHub.", ["Peter Li", "The GitHub Team"])
    assert masked == "Li and <NAME_1> joined the team of <NAME_2>."


def test_hyphenated_names_and_name_spread_over_lines():
    masked, masking = mask_one("Anna-Lena\nMüller-Schmidt and müller", ["Anna-Lena Müller-Schmidt"])
    assert "Anna" not in masked and "Müller" not in masked and "müller" not in masked
    assert masking.unmask(masked).startswith("Anna-Lena")


def test_names_inside_addresses_do_not_break_the_address():
    masked, masking = mask_one("anna.schmidt@example.com (Anna)", ["Anna Schmidt"])
    assert masked == "<EMAIL_1> (<NAME_1>)"
    assert masking.unmask(masked) == "anna.schmidt@example.com (Anna)"


def test_names_from_greetings_and_sign_offs():
    body = (
        "Hallo Herr Müller,\n\nwie besprochen.\n\nMit freundlichen Grüßen\nAnna Schmidt\n"
        "Dear Dr. Jane Doe,\nSehr geehrte Damen und Herren,\nHi all,\nBest,\nMaria\n"
    )
    assert names_from_text(body) == ["Müller", "Jane Doe", "Anna Schmidt", "Maria"]


def test_names_written_next_to_an_address():
    body = "Maria Rossi (maria@example.net) is in copy; write to Jean Dupont <jd@example.fr>. Contact (info@x.de)."
    assert names_from_text(body) == ["Maria Rossi", "Jean Dupont"]
    assert names_from_text("Please contact us (support@example.com) today") == []


@pytest.mark.parametrize(
    ("address", "names"),
    [
        ("anna.schmidt@example.com", ["anna", "schmidt"]),
        ("j.doe@example.com", ["doe"]),
        ("maria@example.net", ["maria"]),
        ("noreply@example.com", []),
        ("info@example.com", []),
        ("user1234@example.com", []),
        ("not-an-address", []),
    ],
)
def test_names_from_address_local_parts(address, names):
    assert names_from_address(address) == names


def test_name_extraction_is_linear_on_long_runs():
    started = time.perf_counter()
    for body in ("a" * 20_000, "Aa " * 7_000 + "(", "Hi " + "A" * 20_000, "x (" * 7_000 + "@"):
        names_from_text(body)
    assert time.perf_counter() - started < 0.5


# --------------------------------------------------------------------------------------------------
# Unmasking and the mapping
# --------------------------------------------------------------------------------------------------


def test_unmask_tolerates_what_models_do_to_placeholders():
    _, masking = mask({"a": "Anna wrote from anna@example.com"}, ["Anna"])
    assert masking.placeholders == {"<EMAIL_1>": "anna@example.com", "<NAME_1>": "Anna"}
    answer = "<name_1>, < NAME_1 >, [NAME_1], NAME_1, &lt;EMAIL_1&gt;, <Email 1>, <NAME_9>, name_1"
    assert masking.unmask(answer) == "Anna, Anna, Anna, Anna, anna@example.com, anna@example.com, <NAME_9>, name_1"


def test_round_trip_restores_every_field_exactly():
    fields = {
        "from": "Anna Schmidt <anna.schmidt@example.com>",
        "subject": "Rechnung für Anna: DE89 3704 0044 0532 0130 00",
        "body": (
            "Hallo Peter,\nbitte an DE89 3704 0044 0532 0130 00 überweisen, Fragen an +49 30 12345678 "
            "oder https://example.com/faq?id=7.\nViele Grüße\nAnna Schmidt"
        ),
    }
    masked, masking = mask(fields, ["Anna Schmidt", "Peter"])
    for value in ("Anna", "Schmidt", "Peter", "anna.schmidt@", "DE89", "12345678", "example.com"):
        assert all(value not in text for text in masked.values()), value
    assert {key: masking.unmask(text) for key, text in masked.items()} == fields


def test_placeholder_like_text_in_the_input_is_kept_and_not_reused():
    masked, masking = mask_one("Template <NAME_1> for Anna", ["Anna"])
    assert masked == "Template <NAME_1> for <NAME_2>"
    assert masking.unmask(masked) == "Template <NAME_1> for Anna"


def test_repr_does_not_show_the_hidden_values():
    _, masking = mask_one("anna@example.com", ["Anna"])
    assert "anna" not in repr(masking).lower()


def test_empty_and_missing_fields():
    masked, masking = mask({"a": "", "b": "nothing personal here"}, ["", "  "])
    assert masked == {"a": "", "b": "nothing personal here"}
    assert masking.unmask("no placeholders") == "no placeholders"


# --------------------------------------------------------------------------------------------------
# Speed
# --------------------------------------------------------------------------------------------------


def test_a_20_kb_body_is_masked_quickly():
    paragraph = (
        "Hello Anna, please call +49 30 12345678 or write to anna.schmidt@example.com about invoice 4711 "
        "(IBAN DE89 3704 0044 0532 0130 00), details at https://example.com/x?y=1. Meeting on 01.02.2024.\n"
    )
    body = paragraph * (20_000 // len(paragraph) + 1)
    started = time.perf_counter()
    masked, masking = mask({"body": body}, ["Anna Schmidt", "Peter Müller"])
    assert time.perf_counter() - started < 0.5
    assert len(masking) == 5
    assert masking.unmask(masked["body"]) == body


@pytest.mark.parametrize(
    "body",
    ["a" * 20_000, "1 " * 10_000, "x." * 10_000, "a@" * 10_000, "DE12" * 5_000, "https://" + "a" * 20_000],
)
def test_pathological_inputs_stay_linear(body):
    started = time.perf_counter()
    mask({"body": body}, ["Anna"])
    assert time.perf_counter() - started < 0.5
