"""Tag suggestions learned from the user's own tagging: hashed features, one small model per tag.

Why this shape:

* Per user and per tag there are few examples (a handful to a few hundred), labels arrive one at a
  time (accept, reject, manual tag) and the model must update instantly and be stored cheaply. A
  nearest-centroid model does exactly that: each tag keeps the sum of the feature vectors of its
  positive examples and, separately, of its rejected suggestions (negatives); adding an example is a
  sparse addition, no retraining pass over the mailbox.
* Features are a hashed bag of words (presence, not counts, so one long repetitive body does not
  dominate) plus the sender address, its domain and the mailing-list id with extra weight, because
  "who sent it" predicts a tag like "invoices" or "newsletter" better than any single word.
* Only hashed feature ids and float weights are kept, never words; the stored model is additionally
  encrypted by the caller like the mail itself. The centroids are capped to their strongest
  ``MAX_CENTROID_FEATURES`` entries so a tag's state stays bounded (at most ~80 KB of JSON, about
  20 KB compressed).

A score is the similarity to the positive centroid, scaled by how much evidence the tag has (a tag
learned from one example is suggested less confidently than one learned from ten) and by a soft
decision between positive and negative centroid (rejections of a kind of message push that kind
below the threshold without punishing the tag's real examples).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from operator import mul
from typing import Any
from zlib import crc32

from mail.search_tokens import normalise as _normalise  # the search index's folding: one word, one feature

__all__ = [
    "MAX_CENTROID_FEATURES",
    "TagModel",
    "features",
    "suggest",
]

FEATURE_BITS = 24  # 16.7 M buckets: collisions between one user's words are negligible
MAX_CENTROID_FEATURES = 2000
MAX_BODY_CHARS = 20_000  # the start of a body says what it is about; bounds the work on huge mails
MAX_WORD_LEN = 30  # longer "words" are hashes, tokens, base64: noise for classification

# Weights of the metadata features relative to the text part (which is scaled to length 1 first), so
# the sender counts the same whether the body has ten words or a thousand.
SUBJECT_WEIGHT = 2.0  # a subject word counts twice a body word
ADDRESS_WEIGHT = 0.45
DOMAIN_WEIGHT = 0.35
ORG_DOMAIN_WEIGHT = 0.2
LIST_WEIGHT = 0.6

# Scoring (see TagModel.score). UNRELATED_COSINE is the similarity that unrelated mail still has
# (shared everyday words survive the stop-word list); only similarity beyond it is evidence.
UNRELATED_COSINE = 0.15
CERTAIN_COSINE = 0.5  # a cosine to the positive centroid at which the score saturates
NEGATIVE_SOFTNESS = 0.03  # how sharply "more like the rejected examples" turns a suggestion off
# Evidence: the score is multiplied by n / (n + EVIDENCE_PRIOR), n = number of positive examples.
EVIDENCE_PRIOR = 0.5

_FORMAT_VERSION = 1

# Function words of the languages the built-in analyser covers, already folded ("für" -> "fur").
# They occur in every message, so in a centroid they only add the same similarity to every tag.
_STOPWORDS_EN = """
the and for are but not you your with this that from have has had was were will would can could our
out all any been being into more most other some such than then there these they them their what when
where which while who whom why how its ours yours him his her hers she he we us me my of to in on at by
as an or is it be do if so no up re fw fwd am pm
"""
_STOPWORDS_DE = """
der die das den dem des ein eine einer eines einem einen und oder aber nicht mit von zu zum zur im in an
auf aus bei fur uber unter vor nach ist sind war waren wird werden hat haben sie ihr ihre ich du er es
wir uns sich auch noch nur wie was wenn dass als am ab bis mehr sehr so da hier dort dies diese dieser
dieses
"""
_STOPWORDS_FR = """
le la les un une des du de et ou mais pas ne avec pour par sur dans en au aux est sont etre avoir ce
cet cette ces il elle ils elles nous vous je tu qui que quoi dont se sa son ses leur leurs plus tres
comme si
"""
_STOPWORDS_IT = """
il lo gli le una uno di da dei delle della del al alla nel nella con per tra fra che non sono essere
avere questo questa quello quella ci si mi ti vi noi voi loro suo sua suoi sue piu molto come anche ma
se
"""
_STOPWORDS = frozenset(" ".join((_STOPWORDS_EN, _STOPWORDS_DE, _STOPWORDS_FR, _STOPWORDS_IT)).split())

_MASK = (1 << FEATURE_BITS) - 1


def _hash(namespace: bytes, value: str) -> int:
    """Stable feature id (Python's ``hash`` differs per process, so it cannot be stored).

    CRC-32 is not a cryptographic hash and need not be: ids only have to be stable and evenly
    spread, and the stored model is encrypted anyway. It is four times faster than BLAKE2 here.
    """
    return crc32(value.encode("utf-8"), crc32(namespace)) & _MASK


# CRC state after the "w:" namespace: crc32(token, _WORD_SEED) == crc32(b"w:" + token), minus a concat.
_WORD_SEED = crc32(b"w:")


def _org_domain(domain: str) -> str:
    """A rough registrable domain ("mail.billing.acme.co.uk" -> "acme.co.uk") without a suffix list.

    Two labels, or three when the second-level label looks like a public suffix (co.uk, com.au).
    Only used as one more similarity feature, so an occasional wrong cut costs little.
    """
    labels = domain.split(".")
    if len(labels) <= 2:
        return domain
    if len(labels[-2]) <= 3 and len(labels[-1]) == 2:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def _address(from_address: str) -> str:
    """The bare address out of "Name <addr>" or "addr", lower-cased ("" if there is none)."""
    value = from_address.strip()
    if "<" in value and ">" in value:
        value = value[value.rfind("<") + 1 : value.rfind(">")]
    value = value.strip().strip("<>").lower()
    return value if "@" in value else ""


def features(subject: str, body: str, from_address: str, list_id: str = "") -> dict[int, float]:
    """Sparse, L2-normalised feature vector of a message: ``{hashed feature id: weight}``.

    Text: distinct folded words of the body (1 each; a repeated word counts once) plus 2 for each
    subject word, without function words, numbers and very long tokens. Then the sender address,
    its domain, its organisation domain and the List-Id are added with fixed weights relative to a
    text part of length 1, and the whole vector is scaled to length 1 (so that cosine similarity is
    a plain dot product). Mail without any of these gives ``{}``, which no tag is suggested for.
    """
    seed = _WORD_SEED
    text = dict.fromkeys([crc32(t.encode(), seed) & _MASK for t in _words((body or "")[:MAX_BODY_CHARS])], 1.0)
    for key in {crc32(t.encode(), seed) & _MASK for t in _words(subject or "")}:
        text[key] = text.get(key, 0.0) + SUBJECT_WEIGHT

    # Metadata weights are relative to a text part of length 1: scale them by the text's norm
    # rather than normalising the text first, which saves a pass over the vector.
    scale = math.hypot(*text.values()) or 1.0
    meta: list[tuple[int, float]] = []
    address = _address(from_address or "")
    if address:
        domain = address.rpartition("@")[2]
        meta.append((_hash(b"from:", address), ADDRESS_WEIGHT))
        meta.append((_hash(b"dom:", domain), DOMAIN_WEIGHT))
        meta.append((_hash(b"org:", _org_domain(domain)), ORG_DOMAIN_WEIGHT))
    list_key = (list_id or "").strip().strip("<>").lower()
    if list_key:
        meta.append((_hash(b"list:", list_key), LIST_WEIGHT))
    for key, weight in meta:
        text[key] = text.get(key, 0.0) + weight * scale
    norm = math.hypot(*text.values())
    if norm == 0.0:
        return {}
    inv = 1.0 / norm
    return {k: w * inv for k, w in text.items()}


def _words(text: str) -> list[str]:
    """Folded distinct words worth a feature: no function words, numbers, addresses or junk."""
    if not text:
        return []
    return [
        t
        for t in _normalise(text)
        if len(t) <= MAX_WORD_LEN and t not in _STOPWORDS and "@" not in t and not t.isdigit()
    ]


def _cosine(feat: Mapping[int, float], centroid: Mapping[int, float], norm: float) -> float:
    """Cosine of a unit vector and a (non-normalised) centroid, touching only shared keys."""
    if norm == 0.0 or not feat:
        return 0.0
    common = feat.keys() & centroid.keys()  # C-level: iterates the smaller of the two
    return sum(map(mul, map(feat.__getitem__, common), map(centroid.__getitem__, common))) / norm


class TagModel:
    """What one tag learned: positive and negative centroids (sums of unit vectors) with counts.

    Positives are messages the user tagged (by hand or by accepting a suggestion); negatives are
    rejected suggestions. Sums, not means, are kept: adding an example is one sparse addition, and
    the cosine does not depend on the scale.
    """

    __slots__ = ("_neg_norm", "_pos_norm", "max_features", "n_neg", "n_pos", "neg", "pos")

    def __init__(self, max_features: int = MAX_CENTROID_FEATURES) -> None:
        self.pos: dict[int, float] = {}
        self.neg: dict[int, float] = {}
        self.n_pos = 0
        self.n_neg = 0
        self.max_features = max_features
        self._pos_norm: float | None = None
        self._neg_norm: float | None = None

    def __repr__(self) -> str:
        return f"<TagModel +{self.n_pos} -{self.n_neg} ({len(self.pos)}/{len(self.neg)} features)>"

    def _add(self, centroid: dict[int, float], feat: Mapping[int, float]) -> None:
        for k, w in feat.items():
            centroid[k] = centroid.get(k, 0.0) + w
        self._prune(centroid)

    def _prune(self, centroid: dict[int, float]) -> None:
        """Keep the strongest ``max_features`` weights (ties broken by id, so it is deterministic)."""
        if len(centroid) > self.max_features:
            keep = sorted(centroid.items(), key=lambda kv: (-abs(kv[1]), kv[0]))[: self.max_features]
            centroid.clear()
            centroid.update(keep)

    def add_positive(self, feat: Mapping[int, float]) -> None:
        """Learn from a message that carries the tag (manual tag or accepted suggestion)."""
        if not feat:
            return
        self._add(self.pos, feat)
        self.n_pos += 1
        self._pos_norm = None

    def add_negative(self, feat: Mapping[int, float]) -> None:
        """Learn from a suggestion of this tag that the user rejected."""
        if not feat:
            return
        self._add(self.neg, feat)
        self.n_neg += 1
        self._neg_norm = None

    def _norms(self) -> tuple[float, float]:
        """Centroid lengths, cached until the next example: scoring is far more frequent than learning."""
        if self._pos_norm is None:
            self._pos_norm = math.hypot(*self.pos.values())
        if self._neg_norm is None:
            self._neg_norm = math.hypot(*self.neg.values())
        return self._pos_norm, self._neg_norm

    def score(self, feat: Mapping[int, float]) -> float:
        """Confidence in [0, 1] that the message belongs to this tag (0 without positive examples).

        Three factors, each in [0, 1]:

        * similarity: the cosine to the positive centroid, mapped linearly from [0.15, 0.5] to
          [0, 1] (below 0.15 is what unrelated mail reaches through everyday words);
        * evidence: ``n / (n + 0.5)`` for ``n`` positive examples (0.67 for one, 0.8 for two, 0.86
          for three, 0.95 for ten): one example is a hint, not proof, so a tag taught once never
          reaches the default auto-apply threshold of 0.8;
        * rejections: a soft nearest-centroid decision between the accepted and the rejected
          examples, ``sigmoid((cos_pos - w * cos_neg) / 0.03)`` with ``w = m / (m + 0.5)`` for ``m``
          rejections. A message more like the rejected ones than the accepted ones drops towards 0;
          one that shares only a sender or everyday words with them keeps most of its score. One
          rejection (w = 0.67) weighs less than three of the same kind (w = 0.86).
        """
        if self.n_pos < 1 or not feat:
            return 0.0
        pos_norm, neg_norm = self._norms()
        cos_pos = _cosine(feat, self.pos, pos_norm)
        similarity = min(1.0, max(0.0, (cos_pos - UNRELATED_COSINE) / (CERTAIN_COSINE - UNRELATED_COSINE)))
        evidence = self.n_pos / (self.n_pos + EVIDENCE_PRIOR)
        gate = 1.0
        if self.n_neg and similarity > 0.0:
            neg_weight = self.n_neg / (self.n_neg + EVIDENCE_PRIOR)
            margin = cos_pos - neg_weight * _cosine(feat, self.neg, neg_norm)
            gate = 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, margin / NEGATIVE_SOFTNESS))))
        return similarity * evidence * gate

    def to_json(self) -> dict[str, Any]:
        """JSON-safe state: counts and the two centroids as ``{"id": weight}`` (ids only, no words)."""
        return {
            "v": _FORMAT_VERSION,
            "n_pos": self.n_pos,
            "n_neg": self.n_neg,
            "pos": {str(k): float(f"{w:.5g}") for k, w in self.pos.items()},
            "neg": {str(k): float(f"{w:.5g}") for k, w in self.neg.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], max_features: int = MAX_CENTROID_FEATURES) -> TagModel:
        """Rebuild a model from :meth:`to_json` output; malformed entries are dropped, not trusted."""
        if data.get("v") != _FORMAT_VERSION:
            raise ValueError(f"unsupported tag model version {data.get('v')!r}")
        model = cls(max_features=max_features)
        model.n_pos = max(0, int(data.get("n_pos", 0)))
        model.n_neg = max(0, int(data.get("n_neg", 0)))
        for name in ("pos", "neg"):
            centroid: dict[int, float] = getattr(model, name)
            for k, w in _entries(data.get(name) or {}):
                centroid[k] = w
            model._prune(centroid)
        return model


def _entries(raw: Mapping[str, Any]) -> Iterable[tuple[int, float]]:
    for k, w in raw.items():
        try:
            key, weight = int(k), float(w)
        except (TypeError, ValueError):
            continue
        if 0 <= key < (1 << FEATURE_BITS) and math.isfinite(weight):
            yield key, weight


def suggest(
    models: Mapping[int, TagModel],
    feat: Mapping[int, float],
    exclude: set[int],
    min_score: float = 0.35,
    limit: int = 3,
) -> list[tuple[int, float]]:
    """Best tags for a message: ``[(tag_id, score)]``, highest first, at most ``limit``.

    ``exclude`` holds tags the message already has (and, typically, tags already rejected for this
    message). Tags without a positive example are never suggested: there is nothing to compare to.
    """
    scored = []
    for tag_id, model in models.items():
        if tag_id in exclude or model.n_pos < 1:
            continue
        score = model.score(feat)
        if score >= min_score:
            scored.append((tag_id, score))
    scored.sort(key=lambda item: (-item[1], item[0]))
    return scored[:limit]
