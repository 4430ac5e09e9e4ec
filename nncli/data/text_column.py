"""One text column of a table -> token ids (N, T) and their padding mask (N, T).

Tokens are words (runs of letters, digits and ``_``) or characters, lower-cased unless told
otherwise; the vocabulary is the ``size`` most frequent tokens of the training rows (ties by
the token's text), id 2 the most frequent. Id 0 pads (masked: the layers after it skip those
steps), id 1 stands for a token the vocabulary lacks. A text longer than ``max_length`` tokens
keeps its first ``max_length``; an empty or missing text reads as one unknown token, so every
row has a real step.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from nncli.data.dataset import state_text, state_texts

PAD, UNKNOWN = 0, 1
WORDS = r"\w+"


def tokens_of(texts: Any, tokens: str, lowercase: bool) -> tuple[np.ndarray, np.ndarray]:
    """Texts (N,) (None or NaN: empty) -> every row's tokens one after another, and each row's
    count (N,)."""
    import pandas as pd  # noqa: PLC0415 - pandas only where tables are read

    series = pd.Series(np.asarray(texts, dtype=object)).where(lambda s: s.notna(), "").astype(str)
    if lowercase:
        series = series.str.lower()
    lists = series.str.findall(WORDS) if tokens == "words" else series.map(list)
    counts = lists.str.len().to_numpy(dtype=np.int64)
    flat = np.array(list(itertools.chain.from_iterable(lists)), dtype=object)
    return flat, counts


@dataclass
class TextColumn:
    """The encoder of one text input: its column, how it splits, and its vocabulary."""

    column: str
    tokens: str  # "words" or "chars"
    lowercase: bool
    max_length: int
    vocabulary: list[str]  # id 2, 3, ... in order

    @classmethod
    def fit(cls, column: str, texts: Any, settings: dict[str, Any]) -> TextColumn:
        """The ``settings["vocabulary"]`` most frequent tokens of the training rows ``texts``."""
        import pandas as pd  # noqa: PLC0415

        flat, _ = tokens_of(texts, settings["tokens"], settings["lowercase"])
        counts = pd.Series(flat, dtype=object).value_counts()
        table = pd.DataFrame({"token": counts.index.astype(str), "count": counts.to_numpy()})
        table = table.sort_values(["count", "token"], ascending=[False, True], kind="stable")
        kept = table["token"].tolist()[: settings["vocabulary"]]
        return cls(column, settings["tokens"], settings["lowercase"], settings["max_length"], kept)

    @property
    def vocabulary_size(self) -> int:
        """The ids an embedding of this input takes: the vocabulary, padding and unknown."""
        return len(self.vocabulary) + 2

    def encode(self, texts: Any) -> tuple[np.ndarray, np.ndarray]:
        """Texts (N,) -> int32 ids (N, max_length), 0 after each text, and the mask (N, T)."""
        import pandas as pd  # noqa: PLC0415

        flat, counts = tokens_of(texts, self.tokens, self.lowercase)
        rows, steps = len(counts), self.max_length
        starts = np.repeat(np.cumsum(counts) - counts, counts)
        position = np.arange(len(flat)) - starts
        keep = position < steps
        ids = pd.Index(self.vocabulary, dtype=object).get_indexer(flat[keep]) + 2
        ids[ids == 1] = UNKNOWN  # get_indexer's -1 (not in the vocabulary), moved up by 2
        out = np.zeros((rows, steps), dtype=np.int32)
        out[np.repeat(np.arange(rows), counts)[keep], position[keep]] = ids
        lengths = np.minimum(counts, steps)
        out[lengths == 0, 0] = UNKNOWN  # an empty text: one unknown token, one real step
        mask = np.arange(steps)[None, :] < np.maximum(lengths, 1)[:, None]
        return out, mask

    def described(self) -> dict[str, Any]:
        """What a request's column is (``Encoder.row_columns``): text, split how, how long."""
        return {
            "type": "text",
            "tokens": self.tokens,
            "lowercase": self.lowercase,
            "max_length": self.max_length,
            "vocabulary": self.vocabulary_size,
        }

    def to_state(self) -> dict[str, Any]:
        return {
            "type": "text",
            "column": self.column,
            "tokens": self.tokens,
            "lowercase": int(self.lowercase),
            "max_length": int(self.max_length),
            "vocabulary": list(self.vocabulary),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TextColumn:
        vocabulary = state_texts(state.get("vocabulary", []))
        return cls(
            state_text(state["column"]),
            state_text(state["tokens"]),
            bool(int(state["lowercase"])),
            int(state["max_length"]),
            vocabulary,
        )
