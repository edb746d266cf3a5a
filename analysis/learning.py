"""Per-user online learning from corrections, blended with the built-in heuristics.

Why this shape: every user sorts mail differently, and a correction should change the very next similar
message, so each user has a small linear model (scikit-learn ``SGDClassifier`` with log loss, one per
target) updated with ``partial_fit`` the moment they correct something. Features are hashed
(``HashingVectorizer``), so the stored state is weights only: no vocabulary, no message text, no
addresses in clear. The state is serialised with ``np.savez`` plus a JSON header, never pickle, so loading
a state from the database cannot execute code.

The learned opinion is blended in gradually: its weight grows with the number of corrections
(n / (n + 5), capped at 0.8) and with how sure the model is about *this* message, so an unrelated message
(no shared features, hence a uniform prediction) is left alone.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
from dataclasses import replace
from typing import Any

import numpy as np
from scipy.special import expit
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import SGDClassifier
from threadpoolctl import ThreadpoolController

from .heuristics import extract_signals, registrable_domain
from .summary import STOPWORDS, tokens
from .types import AnalysisResult, Category, MessageInput, UserContext

#: 2**15 hashed features: 13 weight rows x 32,768 x float32 = 1.7 MB at the very worst; real states,
#: stored sparse and compressed, are a few KB to a few hundred KB.
N_FEATURES = 2**15
TARGETS: dict[str, list[int]] = {
    "urgency": [1, 2, 3],
    "importance": [1, 2, 3],
    "category": list(range(len(Category))),
    "spam": [0, 1],
}
CATEGORIES = [c.value for c in Category]
LEARNED_REASON = "learned from your corrections"
MAX_WEIGHT = 0.8
WEIGHT_HALF = 5  # corrections at which the learned weight reaches half
#: The heuristics' spam opinion as a probability: "not spam" is weak evidence, "spam" a strong one.
HEURISTIC_SPAM_P = {True: 0.85, False: 0.25}

_MAGIC = b"MHOC"
_VERSION = 1
_MAX_BODY_CHARS = 4000
_MAX_BODY_TOKENS = 300


def _identity(words: list[str]) -> list[str]:
    return words


# norm=None and our own L2 normalisation: sklearn's ``normalize`` validation costs more than the hashing.
_VECTORIZER = HashingVectorizer(n_features=N_FEATURES, analyzer=_identity, alternate_sign=False, norm=None)


def vectorise(msg: MessageInput, ctx: UserContext) -> Any:
    """One L2-normalised sparse row (1 x N_FEATURES) of hashed ``features``."""
    x = _VECTORIZER.transform([features(msg, ctx)])
    norm = float(np.sqrt(np.dot(x.data, x.data)))
    if norm > 0:
        x.data /= norm
    return x


def features(msg: MessageInput, ctx: UserContext) -> list[str]:
    """Tokens describing a message: who sent it (weighted up: corrections are mostly about senders), how it
    was addressed, what the heuristics noticed, and the words of subject and body (deduplicated)."""
    sig = extract_signals(msg, ctx)
    out = [f"from:{sig.sender}"] * 3 + [f"dom:{registrable_domain(sig.sender_domain)}"] * 2
    out.append(f"host:{sig.sender_domain}")
    out.extend(f"name:{w}" for w in _tokens(msg.from_name))
    if msg.list_id:
        out.append(f"listid:{msg.list_id.strip().lower()[:100]}")
    flags = {
        "list": sig.list_mail,
        "auto": sig.auto_submitted,
        "noreply": sig.notification_sender,
        "cc_only": sig.cc_only,
        "not_addressed": sig.not_addressed,
        "thread_mine": sig.thread_mine,
        "history": sig.history > 0,
        "vip": sig.vip,
        "attachments": msg.has_attachments,
        "deadline": sig.deadline,
        "urgent_words": bool(sig.urgency_languages),
        "request": bool(sig.request_languages),
        "question": sig.direct_questions > 0,
        "spamish": sig.spam_score >= 1.5,
    }
    out.extend(f"flag:{name}" for name, on in flags.items() if on)
    out.extend(f"s:{w}" for w in _tokens(msg.subject) for _ in range(2))
    out.extend(f"b:{w}" for w in _tokens(sig.cleaned[:_MAX_BODY_CHARS])[:_MAX_BODY_TOKENS])
    return out


def _tokens(text: str) -> list[str]:
    """Distinct words (letters first, 2-30 characters, no stop words) in order of appearance."""
    words = (w for w in tokens(text or "") if 1 < len(w) <= 30 and w[0].isalpha() and w not in STOPWORDS)
    return list(dict.fromkeys(words))


_THREADS: ThreadpoolController | None = None


def _single_threaded() -> Any:
    """Limit BLAS/OpenMP to one thread around a tiny fit: with more, thread start-up and contention on a
    busy server make a one-sample update 5-10x slower (25 ms instead of 3 ms per target)."""
    global _THREADS
    if _THREADS is None:
        _THREADS = ThreadpoolController()
    return _THREADS.limit(limits=1)


def _new_model() -> SGDClassifier:
    return SGDClassifier(loss="log_loss", alpha=1e-4, fit_intercept=False, random_state=0)


class OnlineClassifier:
    """One user's learned corrections: urgency, importance, category and spam models over hashed features."""

    def __init__(self) -> None:
        self.models: dict[str, SGDClassifier | None] = dict.fromkeys(TARGETS)
        self.n_corrections: dict[str, int] = dict.fromkeys(TARGETS, 0)

    # --- state ------------------------------------------------------------------------------------------

    @classmethod
    def from_state(cls, state: bytes | None) -> OnlineClassifier:
        """A classifier from ``to_state`` bytes; ``None``/empty gives a fresh one (that is also "reset").

        Raises ValueError for bytes that are not a valid state; nothing in them is ever unpickled.
        """
        classifier = cls()
        if not state:
            return classifier
        header, arrays = _read_state(bytes(state))
        for target, info in header["targets"].items():
            classifier.n_corrections[target] = int(info["n"])
            if target + ".cols" in arrays:
                classifier.models[target] = _restore_model(target, info, arrays)
        return classifier

    def to_state(self) -> bytes:
        """Weights only (float32, sparse columns, compressed) behind a small JSON header; no pickle."""
        header: dict[str, Any] = {"version": _VERSION, "n_features": N_FEATURES, "targets": {}}
        arrays: dict[str, np.ndarray] = {}
        for target, model in self.models.items():
            info: dict[str, Any] = {"n": self.n_corrections[target]}
            if model is not None:
                coef = np.asarray(model.coef_)
                cols = np.flatnonzero(np.any(coef != 0, axis=0)).astype(np.int32)
                arrays[target + ".cols"] = cols
                arrays[target + ".coef"] = coef[:, cols].astype(np.float32)
                info["t"] = float(model.t_)
            header["targets"][target] = info
        buffer = io.BytesIO()
        np.savez_compressed(buffer, allow_pickle=False, **arrays)
        head = json.dumps(header, separators=(",", ":")).encode()
        return _MAGIC + struct.pack(">BI", _VERSION, len(head)) + head + buffer.getvalue()

    # --- learning and prediction ------------------------------------------------------------------------

    def learn(
        self,
        msg: MessageInput,
        ctx: UserContext,
        *,
        urgency: int | None = None,
        importance: int | None = None,
        category: str | None = None,
        is_spam: bool | None = None,
    ) -> None:
        """Update the models at once with one correction (only the targets given).

        A category correction also teaches the spam model (spam or not), and marking spam teaches the
        category model "spam", so the two never drift apart.
        """
        if category is not None and category not in CATEGORIES:
            raise ValueError(f"unknown category {category!r}")
        if is_spam is None and category is not None:
            is_spam = category == Category.SPAM.value
        if category is None and is_spam:
            category = Category.SPAM.value
        labels = {
            "urgency": None if urgency is None else min(3, max(1, int(urgency))),
            "importance": None if importance is None else min(3, max(1, int(importance))),
            "category": None if category is None else CATEGORIES.index(category),
            "spam": None if is_spam is None else int(bool(is_spam)),
        }
        if all(label is None for label in labels.values()):
            return
        x = vectorise(msg, ctx)
        with _single_threaded():
            for target, label in labels.items():
                if label is None:
                    continue
                model = self.models[target] or _new_model()
                model.partial_fit(x, [label], classes=TARGETS[target])
                self.models[target] = model
                self.n_corrections[target] += 1

    def predict(self, msg: MessageInput, ctx: UserContext) -> dict[str, tuple[Any, float]]:
        """``{target: (value, probability)}`` for targets with at least one correction.

        Values: urgency/importance 1-3, category a Category value, spam a bool.
        """
        return {target: (value, float(probs.max())) for target, (value, probs) in self.distributions(msg, ctx).items()}

    def distributions(self, msg: MessageInput, ctx: UserContext) -> dict[str, tuple[Any, np.ndarray]]:
        """``{target: (value, class probabilities)}`` for trained targets (``blend`` needs the spread)."""
        trained = {t: m for t, m in self.models.items() if m is not None and self.n_corrections[t] > 0}
        if not trained:
            return {}
        x = vectorise(msg, ctx)
        out: dict[str, tuple[Any, np.ndarray]] = {}
        for target, model in trained.items():
            probs = _probabilities(model, x)
            label = int(model.classes_[int(np.argmax(probs))])
            value: Any = label
            if target == "category":
                value = CATEGORIES[label]
            elif target == "spam":
                value = bool(label)
            out[target] = (value, probs)
        return out

    def weight(self, target: str) -> float:
        """How much the learned opinion may count for ``target``: grows with corrections, at most 0.8."""
        n = self.n_corrections[target]
        return min(MAX_WEIGHT, n / (n + WEIGHT_HALF))


def _probabilities(model: SGDClassifier, x: Any) -> np.ndarray:
    """``predict_proba`` for one sparse row without its per-call validation and without multiplying the
    whole weight matrix: only the columns the row uses, then the same one-vs-rest normalisation
    scikit-learn applies for log loss (this runs for every new message of a user with corrections)."""
    scores = model.coef_[:, x.indices] @ x.data
    if scores.shape[0] == 1:
        p1 = float(expit(scores[0]))
        return np.array([1.0 - p1, p1])
    probs = expit(scores)
    total = probs.sum()
    return probs / total if total > 0 else np.full(probs.shape, 1.0 / probs.shape[0])


def _restore_model(target: str, info: dict[str, Any], arrays: dict[str, np.ndarray]) -> SGDClassifier:
    classes = TARGETS[target]
    rows = 1 if len(classes) == 2 else len(classes)
    cols, values = arrays[target + ".cols"], arrays[target + ".coef"]
    if cols.ndim != 1 or values.shape != (rows, cols.shape[0]):
        raise ValueError("invalid classifier state: weight shape")
    if cols.size and (cols.min() < 0 or cols.max() >= N_FEATURES):
        raise ValueError("invalid classifier state: feature index")
    coef = np.zeros((rows, N_FEATURES), dtype=np.float64)
    coef[:, cols] = values
    model = _new_model()
    model.classes_ = np.array(classes)
    model.coef_ = coef
    model.intercept_ = np.zeros(rows, dtype=np.float64)
    model.t_ = float(info.get("t", 1.0))
    model.n_features_in_ = N_FEATURES
    return model


def _read_state(state: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Header and arrays of a state, validated; ``allow_pickle=False`` refuses object arrays."""
    prefix = len(_MAGIC) + 5
    if len(state) < prefix or not state.startswith(_MAGIC):
        raise ValueError("invalid classifier state: not a Mailhelper classifier")
    version, head_len = struct.unpack(">BI", state[len(_MAGIC) : prefix])
    if version != _VERSION:
        raise ValueError(f"invalid classifier state: unsupported version {version}")
    try:
        header = json.loads(state[prefix : prefix + head_len])
        with np.load(io.BytesIO(state[prefix + head_len :]), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise ValueError(f"invalid classifier state: {type(exc).__name__}") from exc
    _check_header(header)
    for name, array in arrays.items():
        kind = np.int32 if name.endswith(".cols") else np.float32
        if array.dtype != kind:
            raise ValueError("invalid classifier state: array type")
    return header, arrays


def _check_header(header: Any) -> None:
    if not isinstance(header, dict) or header.get("n_features") != N_FEATURES:
        raise ValueError("invalid classifier state: header")
    targets = header.get("targets")
    if not isinstance(targets, dict) or not set(targets) <= set(TARGETS):
        raise ValueError("invalid classifier state: targets")
    for info in targets.values():
        if not isinstance(info, dict) or not isinstance(info.get("n"), int) or info["n"] < 0:
            raise ValueError("invalid classifier state: correction counts")
        if not isinstance(info.get("t", 1.0), int | float):
            raise ValueError("invalid classifier state: learning step")


# --- blending ------------------------------------------------------------------------------------------


def _certainty(probs: np.ndarray) -> float:
    """0 for a uniform prediction (nothing known about this message), 1 for a certain one."""
    k = len(probs)
    return float(np.clip((probs.max() - 1.0 / k) / (1.0 - 1.0 / k), 0.0, 1.0))


def _blend_level(current: int, learned: int, weight: float) -> int:
    return min(3, max(1, int((1 - weight) * current + weight * learned + 0.5)))


def blend(result: AnalysisResult, classifier: OnlineClassifier, msg: MessageInput, ctx: UserContext) -> AnalysisResult:
    """``result`` adjusted by what the user's corrections taught, weighted by corrections and certainty.

    Urgency and importance move towards the learned level; the category switches when the learned
    weight outweighs the heuristic one (its weight times its confidence); spam is decided on a blended
    probability. Unchanged results are returned as they are; changed ones get method "<method>+learned"
    and the reason "learned from your corrections".
    """
    dists = classifier.distributions(msg, ctx)
    if not dists:
        return result
    new = replace(result, reasons=list(result.reasons))
    for target in ("urgency", "importance"):
        if target in dists:
            value, probs = dists[target]
            weight = classifier.weight(target) * _certainty(probs)
            setattr(new, target, _blend_level(getattr(result, target), value, weight))
    if "category" in dists:
        _blend_category(new, result, classifier, dists["category"])
    if "spam" in dists:
        _blend_spam(new, classifier, dists["spam"], dists.get("category"))
    if new.is_spam and not result.is_spam:
        new.urgency = new.importance = 1  # spam is never urgent or important, as in the heuristics
    changed = (new.urgency, new.importance, new.category, new.is_spam) != (
        result.urgency,
        result.importance,
        result.category,
        result.is_spam,
    )
    if not changed:
        return result
    new.method = result.method if result.method.endswith("+learned") else result.method + "+learned"
    if LEARNED_REASON not in new.reasons:
        new.reasons.append(LEARNED_REASON)
    return new


def _blend_category(
    new: AnalysisResult, result: AnalysisResult, classifier: OnlineClassifier, dist: tuple[Any, np.ndarray]
) -> None:
    value, probs = dist
    weight = classifier.weight("category") * _certainty(probs)
    if value != result.category and weight > (1 - weight) * result.confidence:
        new.category = value
        new.is_spam = value == Category.SPAM.value
        new.is_newsletter = value == Category.NEWSLETTER.value
    new.confidence = (1 - weight) * result.confidence + weight * float(probs.max())


def _blend_spam(
    new: AnalysisResult,
    classifier: OnlineClassifier,
    dist: tuple[Any, np.ndarray],
    category_dist: tuple[Any, np.ndarray] | None,
) -> None:
    _, probs = dist
    weight = classifier.weight("spam") * _certainty(probs)
    p_spam = (1 - weight) * HEURISTIC_SPAM_P[bool(new.is_spam)] + weight * float(probs[1])
    if p_spam >= 0.5 and not new.is_spam:
        new.is_spam, new.is_newsletter, new.category = True, False, Category.SPAM.value
    elif p_spam < 0.5 and new.is_spam:
        new.is_spam = False
        new.category = _best_non_spam(category_dist)
        new.is_newsletter = new.category == Category.NEWSLETTER.value


def _best_non_spam(category_dist: tuple[Any, np.ndarray] | None) -> str:
    if category_dist is None:
        return Category.INFORMATION.value
    probs = category_dist[1].copy()
    probs[CATEGORIES.index(Category.SPAM.value)] = -1.0
    return CATEGORIES[int(np.argmax(probs))]
