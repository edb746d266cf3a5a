"""One way from a user's stored provider settings to a ProviderConfig, for analysis, replies and the test button."""

import pytest

from analysis.models import ProviderSettings
from analysis.provider_settings import config_for, enabled_for

pytestmark = pytest.mark.django_db


def stored(owner, **fields) -> ProviderSettings:
    row = ProviderSettings(
        owner=owner, kind="anthropic", base_url="https://llm.example", model="m1", timeout_seconds=40
    )
    for name, value in fields.items():
        setattr(row, name, value)
    row.api_key = "sk-test-key-0123456789"
    row.save()
    return ProviderSettings.objects.get(pk=row.pk)  # read back: the key is decrypted like in production


def test_the_config_carries_the_stored_settings_and_a_cap_only_lowers_the_timeout(alice):
    row = stored(alice.user)
    config = config_for(row)
    assert (config.kind, config.base_url, config.model, config.timeout) == (
        "anthropic",
        "https://llm.example",
        "m1",
        40,
    )
    assert config.api_key == "sk-test-key-0123456789" and "sk-test" not in repr(config)
    assert config_for(row, timeout=2.5).timeout == 2.5
    assert config_for(row, timeout=300).timeout == 40


def test_which_purpose_may_use_the_provider(alice, bob):
    assert enabled_for(alice.user.pk, "analysis") is None
    row = stored(alice.user, enabled=False)
    assert enabled_for(alice.user.pk, "analysis") is None and enabled_for(alice.user.pk, "replies") is None
    ProviderSettings.objects.filter(pk=row.pk).update(enabled=True)
    assert enabled_for(alice.user.pk, "analysis").pk == row.pk
    assert enabled_for(alice.user.pk, "replies").pk == row.pk
    ProviderSettings.objects.filter(pk=row.pk).update(use_for_replies=False)
    assert enabled_for(alice.user.pk, "analysis").pk == row.pk and enabled_for(alice.user.pk, "replies") is None
    assert enabled_for(bob.user.pk, "analysis") is None
    with pytest.raises(ValueError, match="purpose"):
        enabled_for(alice.user.pk, "summaries")
