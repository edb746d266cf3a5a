"""Per-user learning: corrections change the next similar message at once, state is weights-only bytes.

The central test (``test_corrections_raise_the_next_similar_message``) is the issue's acceptance check:
a message type the heuristics put at (urgency 1, importance 1) is corrected to (3, 3) a few times, and the
next, unseen message of that type scores higher, while unrelated messages stay as they were.
"""

from __future__ import annotations

import io
import json
import pickle
import random
import struct
from datetime import datetime

import numpy as np
import pytest

from analysis import learning
from analysis.heuristics import analyse
from analysis.learning import LEARNED_REASON, N_FEATURES, TARGETS, OnlineClassifier, blend
from analysis.types import Category, MessageInput, UserContext

ME = "alex@example.org"
NOW = datetime(2025, 3, 10, 9, 0)


def ctx(**kwargs) -> UserContext:
    return UserContext(addresses={ME}, now=NOW, **kwargs)


def plant_report(n: int) -> MessageInput:
    """A bulk report the heuristics file as an unimportant newsletter, but this user needs."""
    return MessageInput(
        subject=f"Weekly plant report #{n}",
        text=f"Output for week {n}: line A {80 + n % 15}%, line B {70 + n % 20}%. Downtime {n % 5} h.\n"
        f"Scrap rate {n % 7}%. This report is generated every Monday.",
        from_address="reports@plant.example.com",
        to=[ME],
        list_id="<reports.plant.example.com>",
        precedence="bulk",
    )


def shop_newsletter(n: int) -> MessageInput:
    return MessageInput(
        subject=f"Spring offers {n}",
        text="Discover our new garden furniture collection. Free delivery this week on all orders.",
        from_address="news@gardenshop.example",
        to=[ME],
        list_id="<news.gardenshop.example>",
        has_list_unsubscribe=True,
    )


def colleague_question(n: int) -> MessageInput:
    return MessageInput(
        subject=f"Lunch {n}?",
        text="Hi Alex, shall we have lunch on Thursday with the new colleagues? Cheers, Bob",
        from_address="bob@friends.example",
        to=[ME],
    )


def promo(n: int) -> MessageInput:
    return MessageInput(
        subject=f"Garden tips {n}",
        text="Seasonal tips for your balcony plants and a voucher for our shop.",
        from_address="tips@balcony-garden.example",
        to=[ME],
    )


def trained(messages, **labels) -> OnlineClassifier:
    classifier = OnlineClassifier.from_state(None)
    for msg in messages:
        classifier.learn(msg, ctx(), **labels)
    return classifier


# --- (b) corrections change the next similar message --------------------------------------------------------


def test_corrections_raise_the_next_similar_message():
    unseen = plant_report(99)
    before = analyse(unseen, ctx())
    assert (before.urgency, before.importance) == (1, 1) and before.method == "builtin"

    classifier = trained([plant_report(n) for n in range(1, 6)], urgency=3, importance=3)
    assert classifier.n_corrections["urgency"] == classifier.n_corrections["importance"] == 5

    after = blend(analyse(unseen, ctx()), classifier, unseen, ctx())
    assert after.urgency > before.urgency and after.importance > before.importance
    assert after.method == "builtin+learned" and LEARNED_REASON in after.reasons
    predicted = classifier.predict(unseen, ctx())
    assert predicted["urgency"][0] == 3 and predicted["urgency"][1] > 0.8

    # Unrelated messages (other senders, other words, even another newsletter) are left alone.
    for other in (shop_newsletter(1), colleague_question(1)):
        heuristic = analyse(other, ctx())
        blended = blend(heuristic, classifier, other, ctx())
        assert (blended.urgency, blended.importance, blended.category) == (
            heuristic.urgency,
            heuristic.importance,
            heuristic.category,
        )
        assert blended.method == "builtin"
        assert classifier.predict(other, ctx())["urgency"][1] < 0.6  # close to "no idea" (1/3)


def test_more_corrections_weigh_more():
    unseen = plant_report(99)
    heuristic = analyse(unseen, ctx())
    few = blend(heuristic, trained([plant_report(n) for n in range(1, 3)], urgency=3, importance=3), unseen, ctx())
    many = blend(heuristic, trained([plant_report(n) for n in range(1, 21)], urgency=3, importance=3), unseen, ctx())
    assert (many.urgency, many.importance) >= (few.urgency, few.importance)
    assert (many.urgency, many.importance) == (3, 3)
    assert learning.OnlineClassifier().weight("urgency") == 0.0
    assert trained([plant_report(n) for n in range(50)], urgency=3).weight("urgency") == learning.MAX_WEIGHT


def test_corrections_can_also_lower_a_score():
    msg = MessageInput(subject="URGENT: daily backup report", text="Backup finished. This is urgent!",
                       from_address="backup@it.example", to=[ME])  # fmt: skip
    heuristic = analyse(msg, ctx())
    assert heuristic.urgency >= 2
    classifier = trained([msg] * 8, urgency=1, importance=1)
    after = blend(heuristic, classifier, msg, ctx())
    assert after.urgency < heuristic.urgency


# --- (c) category and spam ---------------------------------------------------------------------------------


def test_category_corrections_move_the_category():
    unseen = plant_report(99)
    assert analyse(unseen, ctx()).category == Category.NEWSLETTER
    classifier = trained([plant_report(n) for n in range(1, 8)], category="action_required")
    assert classifier.predict(unseen, ctx())["category"][0] == "action_required"
    after = blend(analyse(unseen, ctx()), classifier, unseen, ctx())
    assert after.category == Category.ACTION_REQUIRED and not after.is_newsletter
    # The category correction also taught "not spam", consistently.
    assert classifier.n_corrections["spam"] == 7 and classifier.predict(unseen, ctx())["spam"][0] is False


def test_marking_as_spam_flags_the_next_one():
    unseen = promo(99)
    heuristic = analyse(unseen, ctx())
    assert not heuristic.is_spam
    classifier = trained([promo(n) for n in range(1, 7)], is_spam=True)
    assert classifier.n_corrections["category"] == 6  # marking spam is also a category correction
    after = blend(heuristic, classifier, unseen, ctx())
    assert after.is_spam and after.category == Category.SPAM and (after.urgency, after.importance) == (1, 1)
    assert after.method == "builtin+learned"
    other = colleague_question(1)
    assert not blend(analyse(other, ctx()), classifier, other, ctx()).is_spam


def test_marking_as_not_spam_rescues_the_next_one():
    def lottery(n: int) -> MessageInput:
        return MessageInput(subject=f"Lottery club results {n}!!!", text="You have won 3 EUR!!! Jackpot next week!!!",
                            from_address="club@lottery-club.example", to=["members@lottery-club.example"],
                            reply_to=["treasurer@gmail.com"])  # fmt: skip

    unseen = lottery(99)
    heuristic = analyse(unseen, ctx())
    assert heuristic.is_spam
    classifier = trained([lottery(n) for n in range(1, 9)], is_spam=False, category="information")
    after = blend(heuristic, classifier, unseen, ctx())
    assert not after.is_spam and after.category == Category.INFORMATION


def test_learning_validates_its_input():
    classifier = OnlineClassifier()
    with pytest.raises(ValueError):
        classifier.learn(promo(1), ctx(), category="very-important")
    classifier.learn(promo(1), ctx())  # nothing given: nothing learned
    assert sum(classifier.n_corrections.values()) == 0 and classifier.predict(promo(1), ctx()) == {}
    classifier.learn(promo(1), ctx(), urgency=7)  # clamped to the 1-3 scale
    assert classifier.predict(promo(1), ctx())["urgency"][0] == 3
    assert set(classifier.predict(promo(1), ctx())) == {"urgency"}  # only trained targets


# --- (d) reset ----------------------------------------------------------------------------------------------


def test_reset_forgets_everything():
    classifier = trained([plant_report(n) for n in range(1, 6)], urgency=3, importance=3, category="action_required")
    unseen = plant_report(99)
    heuristic = analyse(unseen, ctx())
    assert blend(heuristic, classifier, unseen, ctx()) != heuristic

    reset = OnlineClassifier.from_state(None)
    assert reset.predict(unseen, ctx()) == {}
    assert all(n == 0 for n in reset.n_corrections.values())
    assert blend(heuristic, reset, unseen, ctx()) is heuristic
    assert OnlineClassifier.from_state(reset.to_state()).predict(unseen, ctx()) == {}


# --- (a) state: bytes, round trip, no pickle ----------------------------------------------------------------


def test_state_round_trips_through_bytes():
    classifier = trained([plant_report(n) for n in range(1, 6)], urgency=3, importance=2, category="action_required")
    classifier.learn(promo(1), ctx(), is_spam=True)
    state = classifier.to_state()
    assert isinstance(state, bytes) and state.startswith(b"MHOC")

    restored = OnlineClassifier.from_state(state)
    assert restored.n_corrections == classifier.n_corrections
    for msg in (plant_report(99), promo(2), colleague_question(3)):
        expected, got = classifier.predict(msg, ctx()), restored.predict(msg, ctx())
        assert expected.keys() == got.keys()
        for target in expected:
            assert got[target][0] == expected[target][0]
            assert got[target][1] == pytest.approx(expected[target][1], abs=1e-4)  # float32 storage

    # A restored classifier keeps learning.
    restored.learn(plant_report(7), ctx(), urgency=3)
    assert restored.n_corrections["urgency"] == 6
    assert OnlineClassifier.from_state(restored.to_state()).n_corrections["urgency"] == 6


def test_state_loads_without_pickle(monkeypatch):
    state = trained([plant_report(n) for n in range(1, 4)], urgency=3, is_spam=False).to_state()

    def forbidden(*args, **kwargs):
        raise AssertionError("pickle must never be used to load a classifier state")

    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    restored = OnlineClassifier.from_state(state)
    assert restored.predict(plant_report(99), ctx())["urgency"][0] == 3


def _state_with(arrays: dict[str, np.ndarray], header: dict | None = None) -> bytes:
    header = header or {"version": 1, "n_features": N_FEATURES, "targets": {"urgency": {"n": 1, "t": 2.0}}}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # allow_pickle defaults to True here: an attacker's file
    head = json.dumps(header).encode()
    return b"MHOC" + struct.pack(">BI", 1, len(head)) + head + buffer.getvalue()


@pytest.mark.parametrize(
    "state",
    [
        b"not a state at all",
        b"MHOC",
        b"MHOC" + struct.pack(">BI", 99, 2) + b"{}",  # unknown version
        b"MHOC" + struct.pack(">BI", 1, 5) + b"{nope" + b"garbage",
        _state_with({"urgency.cols": np.array([1, 2], dtype=object), "urgency.coef": np.zeros((3, 2), np.float32)}),
        _state_with({"urgency.cols": np.array([1, 2], np.int32), "urgency.coef": np.zeros((2, 2), np.float32)}),
        _state_with({"urgency.cols": np.array([N_FEATURES], np.int32), "urgency.coef": np.zeros((3, 1), np.float32)}),
        _state_with({}, {"version": 1, "n_features": 12, "targets": {}}),
        _state_with({}, {"version": 1, "n_features": N_FEATURES, "targets": {"evil": {"n": 1}}}),
        _state_with({}, {"version": 1, "n_features": N_FEATURES, "targets": {"urgency": {"n": -3}}}),
        _state_with({}, [1, 2, 3]),
        OnlineClassifier().to_state()[:-20],  # truncated
    ],
)
def test_invalid_states_are_refused(state):
    with pytest.raises(ValueError):
        OnlineClassifier.from_state(state)


def test_state_stays_small():
    # The worst case is bounded by the hashing space: 13 weight rows of float32.
    rows = sum(1 if len(classes) == 2 else len(classes) for classes in TARGETS.values())
    assert rows * N_FEATURES * 4 < 2_000_000
    # Many corrections of messages full of distinct words: still well under 2 MB.
    rnd = random.Random(3)
    classifier = OnlineClassifier()
    for n in range(40):
        words = " ".join(f"w{rnd.randrange(10**9)}" for _ in range(400))
        msg = MessageInput(subject=f"s{n}", text=words, from_address=f"x{n}@d{n}.example", to=[ME])
        classifier.learn(msg, ctx(), urgency=rnd.randint(1, 3), importance=rnd.randint(1, 3),
                         category=rnd.choice(learning.CATEGORIES))  # fmt: skip
    assert len(classifier.to_state()) < 2_000_000
