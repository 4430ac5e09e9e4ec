"""Text: a file of characters or words -> one-hot windows whose targets are the next symbols.

Symbols are characters (``level: char``) or words (``level: word``: runs of letters and digits,
single punctuation marks, and line breaks). The vocabulary is every symbol of the training file,
sorted, and is stored in the checkpoint. x (N, T, V): one-hot windows of T = ``sequence_length``
symbols whose starts are ``stride`` apart (default T: the windows do not overlap); y (N, T, V):
the same windows one symbol on, so the target of step t is symbol t + 1 (sequence to sequence,
cross-entropy at every step). The validation part is the text's tail.

Memory: x and y are ``OneHotWindows``, read-only views that keep the int32 symbol ids and
one-hot encode only the rows asked for. Training indexes them one batch at a time, so a batch
costs B*T*V floats and the whole text 4 bytes a symbol (Shakespeare's 1.1 M characters as
one-hot windows would take 330 MB).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nncli.bounds.files import require_regular
from nncli.data.dataset import Dataset, Part, distinct_texts, state_text
from nncli.data.encoder import Encoder
from nncli.data.formats import not_utf8
from nncli.data.onehot import one_hot
from nncli.data.split import part_size
from nncli.data.table import resolve
from nncli.errors import DataError, ShapeError, SpecError

STATE_VERSION = 1
WORD = re.compile(r"\w+|[^\w\s]|\n")  # words, single punctuation marks, line breaks
NO_SPACE_BEFORE = set(".,;:!?)]}'\n")
NO_SPACE_AFTER = set("([{'\n")
SHOW = 5
NOUNS = {"char": "character", "word": "word"}


class OneHotWindows:
    """A read-only float32 array (N, T, V) of one-hot windows, made on demand from int ids.

    Row i is one_hot(ids[starts[i] + shift : starts[i] + shift + T]). Indexing with an int array,
    a slice or an int gives an ordinary numpy array of those rows only; ``len``, ``shape``,
    ``ndim`` and ``dtype`` behave as they would for the full array.
    """

    dtype = np.dtype(np.float32)
    ndim = 3

    def __init__(self, ids: np.ndarray, starts: np.ndarray, length: int, size: int, shift: int = 0):
        self.ids, self.starts = ids, np.asarray(starts, dtype=np.int64)
        self.length, self.size, self.shift = int(length), int(size), int(shift)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self.starts), self.length, self.size)

    def __len__(self) -> int:
        return len(self.starts)

    def symbols(self, index: Any = slice(None)) -> np.ndarray:
        """The windows' symbol ids, int (n, T) (or (T,) for an int index)."""
        starts = self.starts[index] + self.shift
        return self.ids[np.asarray(starts)[..., None] + np.arange(self.length)]

    def __getitem__(self, index: Any) -> np.ndarray:
        return one_hot(self.symbols(index), self.size)


class IdWindows(OneHotWindows):
    """The same windows as symbol ids, int32 (N, T), for a model whose first layer is an
    embedding; ``size`` is still the vocabulary's."""

    dtype = np.dtype(np.int32)
    ndim = 2

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.starts), self.length)

    def __getitem__(self, index: Any) -> np.ndarray:
        return self.symbols(index).astype(np.int32)


@dataclass
class TextFile:
    """A text read for a model; ``columns`` is empty so table-only options find no column."""

    text: str
    path: str
    columns: tuple = ()


def read_text(path: Path) -> TextFile:
    """UTF-8 text, line endings as ``\\n`` -> TextFile; DataError if missing, empty, not UTF-8."""
    path = Path(path)
    require_regular(path, DataError)  # /dev/zero never ends, a named pipe may never start
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"no such file: {path}") from None
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise not_utf8(path, raw, err.start) from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise DataError("the file holds no text", where=str(path))
    return TextFile(text, str(path))


def tokens(text: str, level: str) -> np.ndarray:
    """Text -> its symbols as a numpy array: code points (char, uint32) or str (word)."""
    if level == "char":
        return np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
    return np.array(WORD.findall(text), dtype=str)


def join_words(words: list[str]) -> str:
    """Words back to text: spaces between, none before punctuation or around line breaks."""
    out: list[str] = []
    for word in words:
        if out and word not in NO_SPACE_BEFORE and out[-1] not in NO_SPACE_AFTER:
            out.append(" ")
        out.append(word)
    return "".join(out)


class TextEncoder(Encoder):
    """Text -> symbol ids over a fixed vocabulary -> one-hot windows; outputs -> next symbols."""

    kind = "text"
    task = "classification"

    def __init__(
        self,
        vocabulary: list[str],
        level: str,
        sequence_length: int,
        stride: int,
        input_form: str = "onehot",
    ):
        self.vocabulary = list(vocabulary)
        self.input_form = input_form
        self.level = level
        self.sequence_length, self.stride = int(sequence_length), int(stride)
        if level == "char":
            self._keys = np.array([ord(c) for c in self.vocabulary], dtype=np.uint32)
        else:
            self._keys = np.array(self.vocabulary, dtype=str)
        disorder = np.flatnonzero(self._keys[1:] <= self._keys[:-1])
        if len(disorder):  # fit sorts it, so only a changed checkpoint gets here
            i = int(disorder[0])
            raise ValueError(
                "the vocabulary is not sorted and unique: "
                f"{self.vocabulary[i]!r} comes before {self.vocabulary[i + 1]!r}"
            )

    @classmethod
    def fit(
        cls, symbols: np.ndarray, level: str, sequence_length: int, stride: int, input_form: str
    ) -> TextEncoder:
        keys = np.unique(symbols)
        vocabulary = [chr(k) for k in keys.tolist()] if level == "char" else keys.tolist()
        return cls(vocabulary, level, sequence_length, stride, input_form)

    # -- what it knows ---------------------------------------------------------------------------

    @property
    def labels(self) -> None:
        return None  # the classes are the vocabulary; one per symbol, not a target column

    @property
    def feature_names(self) -> list[str]:
        return list(self.vocabulary)

    @property
    def size(self) -> int:
        return len(self.vocabulary)

    @property
    def vocabulary_size(self) -> int:
        return self.size

    # -- symbols ---------------------------------------------------------------------------------

    def ids(self, text: TextFile | str, unknown: str = "error", what: str = "") -> np.ndarray:
        """Text -> int32 symbol ids; symbols outside the vocabulary are an error (or -1 with
        ``unknown="ignore"``: all-zero one-hot rows)."""
        source = text if isinstance(text, TextFile) else TextFile(text, what or "text")
        symbols = tokens(source.text, self.level)
        at = np.minimum(np.searchsorted(self._keys, symbols), len(self._keys) - 1)
        known = self._keys[at] == symbols
        if not known.all() and unknown != "ignore":
            raise self._unknown(source, symbols, known)
        return np.where(known, at, -1).astype(np.int32)

    def _unknown(self, source: TextFile, symbols: np.ndarray, known: np.ndarray) -> DataError:
        bad = np.flatnonzero(~known)
        keys, first = np.unique(symbols[bad], return_index=True)  # distinct symbols only
        names = [self._symbol(key) for key in keys[np.argsort(first)].tolist()]
        if self.level == "char":
            offset = int(bad[0])
        else:
            offset = [m.start() for m in WORD.finditer(source.text)][int(bad[0])]
        line = source.text.count("\n", 0, offset) + 1
        shown = ", ".join(repr(s) for s in names[:SHOW]) + (", ..." if len(names) > SHOW else "")
        noun = NOUNS[self.level]
        if len(names) == 1:
            what = f"the {noun} {shown} (line {line}) is"
        else:
            what = f"the {noun}s {shown} (the first on line {line}) are"
        return DataError(
            f"{what} not in the model's vocabulary of {self.size} {noun}s", where=source.path
        )

    def _symbol(self, key: Any) -> str:
        return chr(int(key)) if self.level == "char" else str(key)

    def join(self, ids: np.ndarray) -> str:
        """Symbol ids -> text."""
        symbols = [self.vocabulary[i] for i in np.asarray(ids).tolist()]
        return "".join(symbols) if self.level == "char" else join_words(symbols)

    def continuation(self, prompt: str, ids: np.ndarray) -> str:
        """The prompt as written, then the symbols ``ids`` (words spaced as ``join`` would)."""
        if self.level == "char":
            return prompt + self.join(ids)
        last = WORD.findall(prompt)[-1:]
        tail = join_words(last + [self.vocabulary[i] for i in ids.tolist()])[len("".join(last)) :]
        return prompt + (tail.lstrip(" ") if prompt[-1:].isspace() else tail)

    def windows(self, ids: np.ndarray, starts: np.ndarray) -> tuple[OneHotWindows, OneHotWindows]:
        """Ids and window starts -> (x, y): the windows (as ids or one-hot, the input form) and
        the same windows one symbol on (one-hot: the targets)."""
        form = IdWindows if self.input_form == "ids" else OneHotWindows
        x = form(ids, starts, self.sequence_length, self.size)
        return x, OneHotWindows(ids, starts, self.sequence_length, self.size, shift=1)

    # -- new data --------------------------------------------------------------------------------

    def read_frame(self, path: str | Path) -> TextFile:
        return read_text(Path(path))

    def inputs(self, frame: TextFile, unknown: str = "error") -> tuple[np.ndarray, None]:
        """The text's last ``sequence_length`` symbols -> x (1, t, V), or ids (1, t): predicts
        what follows."""
        ids = self.ids(frame, unknown)
        return self.window_inputs(ids[-self.sequence_length :][None]), None

    def window_inputs(self, ids: np.ndarray) -> np.ndarray:
        """Symbol ids (n, t) -> the network's input: the ids themselves (int32) for an
        embedding, else one-hot rows (n, t, V)."""
        if self.input_form == "ids":
            return np.asarray(ids, dtype=np.int32)
        return one_hot(ids, self.size)

    def transform(self, data: Any, unknown: str = "error") -> np.ndarray:
        frame = data if isinstance(data, TextFile) else self.read_frame(data)
        return self.inputs(frame, unknown)[0]

    def labelled(
        self, frame: TextFile, unknown: str = "error"
    ) -> tuple[OneHotWindows, OneHotWindows, None]:
        """Every window of the text (``stride`` apart) and its shifted targets, for evaluate."""
        ids = self.ids(frame)
        need = self.sequence_length + 1
        if len(ids) < need:
            raise DataError(
                f"the text has {len(ids)} {NOUNS[self.level]}s; sequence_length "
                f"{self.sequence_length} "
                f"needs at least {need}",
                where=frame.path,
            )
        x, y = self.windows(ids, np.arange(0, len(ids) - need + 1, self.stride))
        return x, y, None

    def targets(self, frame: TextFile) -> OneHotWindows:
        return self.labelled(frame)[1]

    def decode(
        self, output: np.ndarray, proba: bool = False, mask: Any = None
    ) -> dict[str, np.ndarray]:
        """Outputs (N, t, V) -> ``prediction``: the most likely symbol after each input's last
        step; with ``proba`` one ``proba_<symbol>`` column per vocabulary symbol."""
        output = np.asarray(output)
        if output.ndim != 3 or output.shape[2] != self.size:
            raise ShapeError(f"expected network outputs (N, T, {self.size}), got {output.shape}")
        last = output[:, -1]
        columns = {"prediction": np.array(self.vocabulary, dtype=object)[last.argmax(axis=1)]}
        if proba:
            columns.update({f"proba_{s}": last[:, k] for k, s in enumerate(self.vocabulary)})
        return columns

    # -- checkpoint state ------------------------------------------------------------------------

    def to_state(self) -> dict:
        return {
            "kind": self.kind,
            "version": STATE_VERSION,
            "level": self.level,
            "sequence_length": self.sequence_length,
            "stride": self.stride,
            "vocabulary": list(self.vocabulary),
            # stored only for ids: older checkpoints then resume unchanged
            **({"input_form": self.input_form} if self.input_form != "onehot" else {}),
        }

    @classmethod
    def from_state(cls, state: dict) -> TextEncoder:
        return cls(
            distinct_texts(state["vocabulary"], "vocabulary"),
            state_text(state["level"]),
            int(state["sequence_length"]),
            int(state["stride"]),
            state_text(state.get("input_form", "onehot")),  # older checkpoints: one-hot
        )


def load(cfg: Any, base_dir: Path, seed: int, loss: str, input_form: str = "onehot") -> Dataset:
    """``data: {kind: text, ...}`` -> Dataset of one-hot (or ``input_form="ids"``: id) windows;
    validation is the text's tail."""
    if loss != "cross_entropy":
        raise SpecError(
            f"a text model predicts the next symbol: expected loss cross_entropy, got {loss!r}",
            field="loss",
        )
    path = resolve(cfg.path, base_dir)
    source = read_text(path)
    max_chars = getattr(cfg, "max_chars", None)
    if max_chars is not None:
        source.text = source.text[: int(max_chars)]
    length = int(cfg.sequence_length)
    stride = int(cfg.stride or length)
    symbols = tokens(source.text, cfg.level)
    encoder = TextEncoder.fit(symbols, cfg.level, length, stride, input_form)
    ids = encoder.ids(source)
    n = len(ids)
    n_val = part_size(float(cfg.validation_split), n)
    n_train = n - n_val
    parts: dict[str, Part] = {}
    for part, (low, high) in {"train": (0, n_train), "validation": (n_train, n)}.items():
        if part == "validation" and n_val == 0:
            continue
        if high - low < length + 1:
            noun = NOUNS[cfg.level]
            which = "text" if n_val == 0 else f"{part} part ({high - low} of {n} {noun}s)"
            raise DataError(
                f"the {which} is shorter than sequence_length + 1 ({length + 1} {noun}s): "
                "a window needs its target one symbol on; lower sequence_length"
                + ("" if part == "train" else " or raise validation_split"),
                where=str(path),
                field="data.sequence_length",
            )
        parts[part] = Part(*encoder.windows(ids, np.arange(low, high - length, stride)))
    return Dataset("classification", parts, encoder, str(path))
