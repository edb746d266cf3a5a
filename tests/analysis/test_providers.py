"""LLM providers against a loopback server speaking each wire protocol (tests/plugins/llm_servers.py).

No database: the providers are plain Python. What is checked, per protocol: the happy path, that no
personal data and no key in the wrong place left the server, and that every failure (slow, broken,
refused, unauthorised, non-JSON, schema-invalid) is the right ProviderError with a message that
contains neither the key nor any body text.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import pytest

from analysis.providers import (
    ANALYSIS_SCHEMA,
    ProviderBadAnswer,
    ProviderConfig,
    ProviderError,
    ProviderHTTPError,
    ProviderTimeout,
    ProviderUnavailable,
    extract_json_object,
    get_provider,
)
from analysis.types import AnalysisResult, MessageInput, UserContext
from tests.plugins.llm_servers import ERROR_BODY_MARKER, NOT_JSON_TEXT, refused_base_url

KINDS = ["ollama", "openai", "anthropic"]
CHAT_PATHS = {"ollama": "/api/chat", "openai": "/v1/chat/completions", "anthropic": "/v1/messages"}
KEY = "sk-test-key-0123456789"

# Everything personal in MESSAGE: none of it may reach the provider.
PERSONAL = [
    "Anna",
    "Schmidt",
    "anna.schmidt@example.com",
    "Peter",
    "Müller",
    "peter.mueller@example.org",
    "Maria Rossi",
    "maria@example.net",
    "+49 30 12345678",
    "12345678",
    "0171 7654321",
    "DE89 3704 0044 0532 0130 00",
    "0532 0130",
    "https://portal.example.com/contracts/4711?user=anna",
    "portal.example.com",
]
BODY_SENTENCE = "the signed contract must arrive by Friday"


def make_message() -> MessageInput:
    return MessageInput(
        subject="Contract for Anna Schmidt",
        text=(
            "Hallo Peter,\n\n"
            f"{BODY_SENTENCE}. Please transfer the deposit to DE89 3704 0044 0532 0130 00 and call me "
            "at +49 30 12345678 or 0171 7654321. Upload it at https://portal.example.com/contracts/4711?user=anna.\n"
            "Maria Rossi (maria@example.net) is in copy.\n\n"
            "Viele Grüße\nAnna Schmidt"
        ),
        from_address="anna.schmidt@example.com",
        from_name="Anna Schmidt",
        to=["Peter Müller <peter.mueller@example.org>"],
        cc=["maria@example.net"],
        date=datetime(2025, 3, 3, 9, 30, tzinfo=UTC),
    )


def make_context() -> UserContext:
    return UserContext(
        addresses={"peter.mueller@example.org"},
        vip_senders=["@example.com"],
        sent_to_sender_count=4,
        received_from_sender_count=9,
        now=datetime(2025, 3, 3, 10, 0, tzinfo=UTC),
        language_hint="de",
    )


def chat_requests(fake_llm):
    return [r for r in fake_llm.requests if r.method == "POST"]


def assert_safe(exc: ProviderError, *extra: str) -> None:
    """The exception (message, repr, chained context) carries no key, no body text, no personal data."""
    texts = [str(exc), repr(exc)]
    assert exc.__cause__ is None
    assert exc.__suppress_context__ or exc.__context__ is None
    for forbidden in (KEY, ERROR_BODY_MARKER, NOT_JSON_TEXT, BODY_SENTENCE, *PERSONAL, *extra):
        assert all(forbidden.lower() not in text.lower() for text in texts), forbidden


# --------------------------------------------------------------------------------------------------
# Happy paths
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_analyse_happy_path(fake_llm, kind):
    result = get_provider(fake_llm.config(kind)).analyse(make_message(), make_context())

    assert isinstance(result, AnalysisResult)
    assert (result.urgency, result.importance, result.category) == (3, 2, "action_required")
    assert (result.is_spam, result.is_newsletter, result.confidence) == (False, False, 0.82)
    assert result.summary == "The sender asks for the signed contract by Friday."
    assert result.reasons == ["explicit deadline", "direct request"]
    assert result.method == f"llm:{kind}:{fake_llm.config(kind).model}"
    [request] = chat_requests(fake_llm)
    assert request.path == CHAT_PATHS[kind]
    assert request.body["model"] == fake_llm.config(kind).model
    assert "JSON" in request.prompt_text()


@pytest.mark.parametrize("kind", KINDS)
def test_no_personal_data_leaves_the_server(fake_llm, kind):
    get_provider(fake_llm.config(kind)).analyse(make_message(), make_context())

    fake_llm.assert_not_sent(*PERSONAL)
    prompt = chat_requests(fake_llm)[0].prompt_text()
    assert BODY_SENTENCE in prompt  # the content itself is what the model needs
    assert "From: <NAME_1> (<EMAIL_1>)" in prompt
    assert "To: <NAME_2> (<EMAIL_2>)" in prompt
    for kind_ in ("NAME", "EMAIL", "PHONE", "IBAN", "URL"):
        assert f"<{kind_}_1>" in prompt
    assert "sender is on the recipient's VIP list" in prompt
    assert "recipient addressed directly (To)" in prompt


@pytest.mark.parametrize("kind", KINDS)
def test_summary_placeholders_are_restored_even_if_the_model_changes_them(fake_llm, kind):
    fake_llm.answer["summary"] = "<name_1> asks < NAME_3 > to pay to <IBAN_1> and call [PHONE_1]."
    fake_llm.answer["reasons"] = ["deadline", "mentions <NAME_1>"]
    result = get_provider(fake_llm.config(kind)).analyse(make_message(), make_context())

    assert result.summary == "Anna Schmidt asks Peter to pay to DE89 3704 0044 0532 0130 00 and call +49 30 12345678."
    assert result.reasons == ["deadline"]  # a reason that names someone is dropped, not unmasked


def test_ollama_request_shape(fake_llm):
    get_provider(fake_llm.config("ollama")).analyse(make_message(), make_context())
    [request] = chat_requests(fake_llm)
    assert request.body["stream"] is False
    assert request.body["format"] == ANALYSIS_SCHEMA
    assert [m["role"] for m in request.body["messages"]] == ["system", "user"]
    assert request.body["options"]["num_ctx"] >= 4096
    assert request.headers["authorization"] == f"Bearer {KEY}"


def test_ollama_without_key_sends_no_authorization(fake_llm):
    get_provider(fake_llm.config("ollama", api_key="")).analyse(make_message(), make_context())
    assert "authorization" not in chat_requests(fake_llm)[0].headers


@pytest.mark.parametrize("suffix", ["", "/", "/v1", "/v1/"])
def test_openai_request_shape_with_or_without_v1(fake_llm, suffix):
    fake_llm.expected_key = KEY
    config = fake_llm.config("openai", base_url=fake_llm.base_url + suffix)
    get_provider(config).analyse(make_message(), make_context())
    [request] = chat_requests(fake_llm)
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.body["response_format"] == {"type": "json_object"}
    assert "x-api-key" not in request.headers


def test_openai_server_without_json_object_gets_the_schema_instead(fake_llm):
    fake_llm.openai_response_formats = {"text", "json_schema"}  # LM Studio
    provider = get_provider(fake_llm.config("openai"))
    assert provider.analyse(make_message(), make_context()).category == "action_required"
    assert provider.analyse(make_message(), make_context()).category == "action_required"
    formats = [r.body["response_format"]["type"] for r in chat_requests(fake_llm)]
    assert formats == ["json_object", "json_schema", "json_schema"]  # the choice is remembered
    assert chat_requests(fake_llm)[1].body["response_format"]["json_schema"]["schema"] == ANALYSIS_SCHEMA


def test_anthropic_request_shape(fake_llm):
    fake_llm.expected_key = KEY
    get_provider(fake_llm.config("anthropic")).analyse(make_message(), make_context())
    [request] = chat_requests(fake_llm)
    assert request.headers["x-api-key"] == KEY
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in request.headers
    assert "JSON" in request.body["system"]
    assert isinstance(request.body["max_tokens"], int)
    assert [m["role"] for m in request.body["messages"]] == ["user"]


@pytest.mark.parametrize("kind", KINDS)
def test_fenced_json_with_leading_text_is_accepted(fake_llm, kind):
    fake_llm.behaviour = "fenced_json"
    result = get_provider(fake_llm.config(kind)).analyse(make_message(), make_context())
    assert result.category == "action_required"


def test_long_bodies_are_truncated_to_max_input_chars(fake_llm):
    message = make_message()
    message.text = "Call 0171 7654321 now.\n" + "word " * 20_000
    get_provider(fake_llm.config("openai", max_input_chars=2000)).analyse(message, UserContext())
    prompt = chat_requests(fake_llm)[0].body["messages"][1]["content"]
    assert "[... message truncated ...]" in prompt
    assert len(prompt) < 3000
    fake_llm.assert_not_sent("7654321")


def test_spam_category_implies_spam_flag(fake_llm):
    fake_llm.answer.update(category="spam", is_spam=False)
    result = get_provider(fake_llm.config("ollama")).analyse(make_message(), UserContext())
    assert result.is_spam is True


# --------------------------------------------------------------------------------------------------
# Failures
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_slow_provider_times_out(fake_llm, kind):
    fake_llm.behaviour = "slow"
    provider = get_provider(fake_llm.config(kind, timeout=0.5))
    started = time.monotonic()
    with pytest.raises(ProviderTimeout) as info:
        provider.analyse(make_message(), make_context())
    assert time.monotonic() - started < 1.5
    assert info.value.code == "timeout"
    assert_safe(info.value)


@pytest.mark.parametrize("kind", KINDS)
def test_server_error_is_an_http_error_without_the_body(fake_llm, kind):
    fake_llm.behaviour = "http500"
    with pytest.raises(ProviderHTTPError) as info:
        get_provider(fake_llm.config(kind)).analyse(make_message(), make_context())
    assert info.value.status_code == 500
    assert "500" in str(info.value)
    assert_safe(info.value)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("behaviour", ["not_json", "invalid_schema", "garbage_body"])
def test_unusable_answers_are_bad_answers(fake_llm, kind, behaviour):
    fake_llm.behaviour = behaviour
    with pytest.raises(ProviderBadAnswer) as info:
        get_provider(fake_llm.config(kind)).analyse(make_message(), make_context())
    assert info.value.code == "bad_answer"
    assert_safe(info.value, "urgent", "42")


@pytest.mark.parametrize("kind", KINDS)
def test_refused_port_is_unavailable(kind):
    config = ProviderConfig(kind=kind, base_url=refused_base_url(), model="m", api_key=KEY, timeout=2)
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable) as info:
        get_provider(config).analyse(make_message(), make_context())
    assert time.monotonic() - started < 2
    assert_safe(info.value)


@pytest.mark.parametrize("kind", KINDS)
def test_connection_closed_without_answer_is_unavailable(fake_llm, kind):
    fake_llm.behaviour = "disconnect"
    with pytest.raises(ProviderUnavailable) as info:
        get_provider(fake_llm.config(kind)).analyse(make_message(), make_context())
    assert_safe(info.value)


@pytest.mark.parametrize("kind", KINDS)
def test_wrong_key_is_http_401_without_the_key(fake_llm, kind):
    fake_llm.expected_key = "sk-the-right-key"
    with pytest.raises(ProviderHTTPError) as info:
        get_provider(fake_llm.config(kind)).analyse(make_message(), make_context())
    assert info.value.status_code == 401
    assert "API key" in str(info.value)
    assert_safe(info.value, "sk-the-right-key")


@pytest.mark.parametrize("kind", KINDS)
def test_refuse_auth_behaviour(fake_llm, kind):
    fake_llm.behaviour = "refuse_auth"
    with pytest.raises(ProviderHTTPError) as info:
        get_provider(fake_llm.config(kind)).check()
    assert info.value.status_code == 401
    assert_safe(info.value)


def test_a_url_with_credentials_never_reaches_messages_or_logs(fake_llm, caplog):
    fake_llm.behaviour = "http500"
    secret_url = fake_llm.base_url.replace("http://", "http://admin:hunter2-secret@") + "/?token=tok-secret"
    caplog.set_level(logging.DEBUG, logger="analysis")
    with pytest.raises(ProviderHTTPError) as info:
        get_provider(fake_llm.config("openai", base_url=secret_url)).analyse(make_message(), make_context())
    assert_safe(info.value, "hunter2-secret", "tok-secret")
    for record in caplog.records:
        text = record.getMessage().lower()
        for forbidden in (KEY, "hunter2-secret", "tok-secret", ERROR_BODY_MARKER, BODY_SENTENCE, "anna", "schmidt"):
            assert forbidden.lower() not in text


def test_logs_of_a_successful_call_carry_no_content(fake_llm, caplog):
    caplog.set_level(logging.DEBUG)
    get_provider(fake_llm.config("anthropic")).analyse(make_message(), make_context())
    assert caplog.records, "the call should be logged (metadata only)"
    logged = "\n".join(record.getMessage() for record in caplog.records).lower()
    for forbidden in (KEY, BODY_SENTENCE, "contract", *PERSONAL):
        assert forbidden.lower() not in logged


def test_bad_base_url_and_key_are_provider_errors():
    with pytest.raises(ProviderError, match="base URL"):
        get_provider(ProviderConfig(kind="openai", base_url="ftp://x", model="m")).analyse(
            make_message(), UserContext()
        )
    config = ProviderConfig(kind="anthropic", base_url="http://127.0.0.1:9", model="m", api_key="sk-bad\nkey")
    with pytest.raises(ProviderError) as info:
        get_provider(config).analyse(make_message(), UserContext())
    assert "sk-bad" not in str(info.value)


def test_unknown_kind_and_hidden_key():
    config = ProviderConfig(kind="gemini", base_url="http://x", model="m", api_key=KEY)
    assert KEY not in repr(config)
    with pytest.raises(ProviderError, match="unknown provider kind"):
        get_provider(config)


# --------------------------------------------------------------------------------------------------
# Reply drafts
# --------------------------------------------------------------------------------------------------


def draft(fake_llm, kind: str, **overrides) -> str:
    options = {
        "style": "formal",
        "greeting": "Liebe",
        "closing": "Viele Grüße, Peter",
        "address_form": "du",
        "instructions": "Mention my number 0171 7654321 if useful.",
        "signature": "Peter Müller\nACME GmbH\n+49 89 7654321",
        "language": "de",
    }
    options.update(overrides)
    return get_provider(fake_llm.config(kind)).draft_reply(make_message(), **options)


@pytest.mark.parametrize("kind", KINDS)
def test_draft_reply_is_unmasked_and_signed_locally(fake_llm, kind):
    fake_llm.reply_text = "Liebe <name_1>,\n\ndanke, der Vertrag kommt bis Freitag. Ruf mich an: <PHONE_2>.\n\n<NAME_2>"
    text = draft(fake_llm, kind)

    assert text.startswith("Liebe Anna Schmidt,\n\ndanke, der Vertrag kommt bis Freitag. Ruf mich an: 0171 7654321.")
    assert text.endswith("\n\nPeter Müller\nACME GmbH\n+49 89 7654321")
    fake_llm.assert_not_sent(*PERSONAL, "+49 89 7654321", "ACME")
    [request] = chat_requests(fake_llm)
    assert request.path == CHAT_PATHS[kind]
    prompt = request.prompt_text()
    assert "formal and polite" in prompt and "Form of address: du" in prompt and "Language: de" in prompt
    assert "Mention my number <PHONE_" in prompt
    assert "format" not in request.body and "response_format" not in request.body


@pytest.mark.parametrize("style", ["formal", "friendly", "brief", "decline"])
def test_draft_styles_reach_the_prompt(fake_llm, style):
    fake_llm.reply_text = "```\nOk.\n```"
    assert draft(fake_llm, "ollama", style=style, signature="") == "Ok."
    assert "Style: " in chat_requests(fake_llm)[0].prompt_text()


def test_draft_rejects_unknown_style_and_empty_answers(fake_llm):
    with pytest.raises(ValueError, match="style"):
        draft(fake_llm, "openai", style="rude")
    fake_llm.reply_text = "   "
    with pytest.raises(ProviderBadAnswer):
        draft(fake_llm, "openai")


def test_draft_failures_are_provider_errors(fake_llm):
    fake_llm.behaviour = "http500"
    with pytest.raises(ProviderHTTPError) as info:
        draft(fake_llm, "anthropic")
    assert_safe(info.value)


# --------------------------------------------------------------------------------------------------
# "Test provider" button
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_check_reports_the_model(fake_llm, kind):
    fake_llm.expected_key = KEY
    config = fake_llm.config(kind)
    message = get_provider(config).check()
    assert config.model in message
    assert KEY not in message


def test_check_fails_for_a_missing_model(fake_llm):
    with pytest.raises(ProviderError, match="ollama pull"):
        get_provider(fake_llm.config("ollama", model="mistral:7b")).check()
    with pytest.raises(ProviderError, match="does not offer"):
        get_provider(fake_llm.config("openai", model="gpt-x")).check()
    with pytest.raises(ProviderHTTPError) as info:
        get_provider(fake_llm.config("anthropic", model="claude-nope")).check()
    assert info.value.status_code == 404


def test_check_accepts_single_model_servers(fake_llm):
    fake_llm.models = ["/models/qwen2.5-7b-instruct.gguf"]
    assert "serves only" in get_provider(fake_llm.config("openai", model="anything")).check()


def test_check_of_a_refused_port():
    config = ProviderConfig(kind="ollama", base_url=refused_base_url(), model="m")
    with pytest.raises(ProviderUnavailable):
        get_provider(config).check()


# --------------------------------------------------------------------------------------------------
# Answer parsing
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1}',
        '```json\n{"a": 1}\n```',
        'Here you go: {"a": 1} -- hope it helps {"b": 2}',
        'Note {not json} then {"a": 1}',
        '\ufeff  {"a": 1}  ',
    ],
)
def test_extract_json_object(text):
    assert extract_json_object(text) == {"a": 1}


def test_extract_json_object_keeps_braces_inside_strings():
    assert extract_json_object('x {"summary": "use {braces} and }"} y') == {"summary": "use {braces} and }"}


@pytest.mark.parametrize("text", ["", "no json", "[1, 2]", '{"a": ', "```\nnope\n```"])
def test_extract_json_object_rejects_everything_else(text):
    with pytest.raises(ProviderBadAnswer):
        extract_json_object(text)
