"""Per-user topic vectors for "similar messages" and "find messages about ...": TF-IDF + LSA over blind ids.

Why this shape:

* No model download (the network may be closed) and nothing shared between users: each user gets a
  small LSA projection (TF-IDF weighting, then ``TruncatedSVD``) fitted on their own mail.
* The features are the message's **blind-index ids** (mail/search_tokens.py: keyed HMACs of the
  normalised words of subject, body and addresses), with the subject's ids counted once more. The
  pipeline has them anyway, so a vector costs no extra hashing, and a query ("flight booking") goes
  through exactly the same normalisation and key as keyword search. Fitting needs no message body:
  only the stored ids and the (small) subjects, so a refit over 20,000 messages does not decrypt 20,000
  bodies. The ids are folded into ``N_FEATURES`` buckets; the projection keeps the ``MAX_VOCAB`` most
  frequent buckets that occur in at least two messages and in at most half of them (the very common
  words and the user's own address carry no topic).
* The state (bucket list, idf, components) is serialised with ``np.savez`` behind a JSON header, never
  pickle, and stored encrypted like the learned classifier. Vectors are L2-normalised float16, also
  stored encrypted (analysis/similarity.py); cosine similarity is then a dot product.

This module is pure numpy/scikit-learn: no Django, no keys; analysis/similarity.py does the storing.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse

#: Blind ids (signed 64-bit) are folded into 2**20 buckets: few collisions for one user's vocabulary.
N_FEATURES = 2**20
DIMS = 96
MAX_VOCAB = 20_000
MIN_MESSAGES = 20  # fewer indexed messages than this: no topics are learned yet
MIN_VOCAB = 8
MAX_DF = 0.5
SUBJECT_WEIGHT = 1.0  # added to the body weight of a word that is in the subject
VECTOR_DTYPE = np.float16

_MAGIC = b"MHTP"
_VERSION = 1


class NotEnoughMail(Exception):
    """Too few messages, or too few words they share, to learn topics from."""


def features(ids: Sequence[int], subject_ids: Sequence[int] = ()) -> dict[int, float]:
    """Bucket -> term weight of one message (1 per distinct word, +SUBJECT_WEIGHT if in the subject)."""
    weights: dict[int, float] = {}
    for value in ids:
        weights[value % N_FEATURES] = 1.0
    for value in subject_ids:
        bucket = value % N_FEATURES
        weights[bucket] = weights.get(bucket, 0.0) + SUBJECT_WEIGHT
    return weights


def feature_matrix(docs: Iterable[tuple[Sequence[int], Sequence[int]]]) -> sparse.csr_matrix:
    """Rows of ``features`` for (ids, subject_ids) pairs, as a CSR matrix n x N_FEATURES (float32)."""
    indptr, indices, data = [0], [], []
    for ids, subject_ids in docs:
        row = features(ids, subject_ids)
        indices.append(np.fromiter(row.keys(), dtype=np.int64, count=len(row)))
        data.append(np.fromiter(row.values(), dtype=np.float32, count=len(row)))
        indptr.append(indptr[-1] + len(row))
    if not indices:
        return sparse.csr_matrix((0, N_FEATURES), dtype=np.float32)
    return sparse.csr_matrix(
        (np.concatenate(data), np.concatenate(indices), np.array(indptr, dtype=np.int64)),
        shape=(len(indptr) - 1, N_FEATURES),
    )


@dataclass
class Projection:
    """One user's fitted topic space: kept buckets (sorted), their idf, and the LSA components."""

    buckets: np.ndarray  # int64, sorted, shape (V,)
    idf: np.ndarray  # float32, shape (V,)
    components: np.ndarray  # float32, shape (k, V)
    n_messages: int

    @property
    def dims(self) -> int:
        return int(self.components.shape[0])

    # --- fitting ----------------------------------------------------------------------------------------

    @classmethod
    def fit(cls, x: sparse.csr_matrix, dims: int = DIMS, max_vocab: int = MAX_VOCAB) -> Projection:
        """Fit on a feature matrix (rows of ``feature_matrix``). Raises NotEnoughMail when it cannot."""
        from sklearn.decomposition import TruncatedSVD

        n = x.shape[0]
        if n < MIN_MESSAGES:
            raise NotEnoughMail(f"{n} messages")
        binary = x.copy()
        binary.data[:] = 1
        df = np.asarray(binary.sum(axis=0)).ravel()
        candidates = np.flatnonzero((df >= 2) & (df <= max(2, MAX_DF * n)))
        if candidates.size > max_vocab:  # the most frequent ones; ties by bucket, so a refit is stable
            order = np.lexsort((candidates, -df[candidates]))[:max_vocab]
            candidates = candidates[order]
        buckets = np.sort(candidates).astype(np.int64)
        if buckets.size < MIN_VOCAB:
            raise NotEnoughMail(f"{buckets.size} shared words")
        idf = (np.log((1 + n) / (1 + df[buckets])) + 1).astype(np.float32)
        projection = cls(buckets, idf, np.zeros((0, buckets.size), dtype=np.float32), n)
        weighted = projection._weighted(x)
        k = max(1, min(dims, buckets.size - 1, n - 1))
        svd = TruncatedSVD(n_components=k, algorithm="randomized", n_iter=5, random_state=0)
        svd.fit(weighted)
        projection.components = svd.components_.astype(np.float32)
        return projection

    # --- projecting -------------------------------------------------------------------------------------

    def _weighted(self, x: sparse.csr_matrix) -> sparse.csr_matrix:
        """TF-IDF (sublinear tf) over the kept buckets, rows L2-normalised."""
        kept = self._kept(x)
        kept.data = (1.0 + np.log(kept.data)) * self.idf[kept.indices]
        norms = np.sqrt(np.asarray(kept.multiply(kept).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        return sparse.diags(1.0 / norms).dot(kept).tocsr().astype(np.float32)

    def _kept(self, x: sparse.csr_matrix) -> sparse.csr_matrix:
        """x restricted to the kept buckets, columns renumbered 0..V-1 (a sorted lookup per stored value:
        scipy's column indexing over 2**20 columns costs milliseconds even for a single row)."""
        x = x.tocsr()
        if self.buckets.size == 0 or x.nnz == 0:
            return sparse.csr_matrix((x.shape[0], self.buckets.size), dtype=np.float32)
        pos = np.searchsorted(self.buckets, x.indices)
        pos[pos == self.buckets.size] = 0
        keep = self.buckets[pos] == x.indices
        rows = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))[keep]
        indptr = np.concatenate(([0], np.cumsum(np.bincount(rows, minlength=x.shape[0]))))
        return sparse.csr_matrix(
            (x.data[keep].astype(np.float32), pos[keep], indptr), shape=(x.shape[0], self.buckets.size)
        )

    def transform(self, x: sparse.csr_matrix) -> np.ndarray:
        """L2-normalised topic vectors (float32, n x k); an all-zero row for a message with no kept word."""
        vectors = np.asarray(self._weighted(x) @ self.components.T, dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return vectors / norms

    def vector(self, ids: Sequence[int], subject_ids: Sequence[int] = ()) -> np.ndarray:
        """The topic vector of one message (or of a query's words)."""
        return self.transform(feature_matrix([(ids, subject_ids)]))[0]

    # --- state ------------------------------------------------------------------------------------------

    def to_state(self) -> bytes:
        """Arrays behind a small JSON header; no pickle. Components as float16 (halves the size)."""
        header = {"version": _VERSION, "n_features": N_FEATURES, "n_messages": self.n_messages}
        buffer = io.BytesIO()
        np.savez(
            buffer, allow_pickle=False, buckets=self.buckets.astype(np.int64), idf=self.idf.astype(np.float32),
            components=self.components.astype(np.float16),
        )  # fmt: skip
        head = json.dumps(header, separators=(",", ":")).encode()
        return _MAGIC + struct.pack(">BI", _VERSION, len(head)) + head + buffer.getvalue()

    @classmethod
    def from_state(cls, state: bytes) -> Projection:
        """A projection from ``to_state`` bytes; ValueError for anything else (nothing is unpickled)."""
        state = bytes(state)
        prefix = len(_MAGIC) + 5
        if len(state) < prefix or not state.startswith(_MAGIC):
            raise ValueError("invalid topic state: not a Mailhelper topic model")
        version, head_len = struct.unpack(">BI", state[len(_MAGIC) : prefix])
        if version != _VERSION:
            raise ValueError(f"invalid topic state: unsupported version {version}")
        try:
            header = json.loads(state[prefix : prefix + head_len])
            with np.load(io.BytesIO(state[prefix + head_len :]), allow_pickle=False) as npz:
                arrays: dict[str, Any] = {name: npz[name] for name in npz.files}
        except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as exc:
            raise ValueError(f"invalid topic state: {type(exc).__name__}") from exc
        if not isinstance(header, dict) or header.get("n_features") != N_FEATURES:
            raise ValueError("invalid topic state: header")
        buckets, idf, components = arrays.get("buckets"), arrays.get("idf"), arrays.get("components")
        if buckets is None or idf is None or components is None:
            raise ValueError("invalid topic state: arrays")
        if buckets.dtype != np.int64 or idf.dtype != np.float32 or components.dtype != np.float16:
            raise ValueError("invalid topic state: array type")
        if buckets.ndim != 1 or idf.shape != buckets.shape or components.ndim != 2:
            raise ValueError("invalid topic state: shape")
        if components.shape[1] != buckets.shape[0]:
            raise ValueError("invalid topic state: shape")
        if buckets.size and (buckets.min() < 0 or buckets.max() >= N_FEATURES or np.any(np.diff(buckets) <= 0)):
            raise ValueError("invalid topic state: buckets")
        return cls(buckets, idf, components.astype(np.float32), int(header.get("n_messages", 0)))


def pack_vector(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=VECTOR_DTYPE).tobytes()


def unpack_vectors(blobs: Sequence[bytes], dims: int) -> np.ndarray:
    """Stacked float32 matrix of packed vectors; a blob of another length becomes a zero row."""
    size = dims * np.dtype(VECTOR_DTYPE).itemsize
    joined = b"".join(b if len(b) == size else bytes(size) for b in blobs)
    return np.frombuffer(joined, dtype=VECTOR_DTYPE).reshape(len(blobs), dims).astype(np.float32)
