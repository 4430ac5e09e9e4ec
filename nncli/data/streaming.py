"""``data.streaming: true``: a table larger than memory, read chunk by chunk (``chunks.py``).

One pass before training reads every chunk once and fits the encoder from what it gathers
(``moments.py``: each number column's mean and variance by Chan's update, each text column's
categories and the labels with their counts), counting each part's rows. A row's part is drawn
from a seeded hash of its record number (``row_parts``), so the validation and test rows are the
same every epoch, after a resume and whatever the chunk size. Training then reads the chunks in
an order drawn from (seed, epoch), ``buffer_chunks`` of them at a time, and shuffles the rows
held (at most ``buffer_chunks * chunk_rows + batch_size - 1``: ``Stream.held_peak`` counts them)
before cutting them into batches; a resumed run draws what an uninterrupted one would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from nncli.data.chunks import open_chunks
from nncli.data.csv_reader import cell_missing, cell_numbers, cell_text, not_numbers
from nncli.data.dataset import Dataset, Part, parts_of, task_for_loss
from nncli.data.labels import check_class_count
from nncli.data.moments import Counts, Moments
from nncli.data.streams import STREAM_SHUFFLE, STREAM_SPLIT, rng_for
from nncli.data.table_encoder import TabularEncoder
from nncli.errors import DataError, SpecError

TRAIN, VALIDATION, TEST = 0, 1, 2
WHOLE = -1  # every row of a file is in one part (a separate validation: or test: file)
PARTS = (TRAIN, VALIDATION, TEST, WHOLE)


def row_parts(rows: np.ndarray, seed: int, validation: float, test: float) -> np.ndarray:
    """Record numbers (N,) -> each row's part (N,): TRAIN, VALIDATION or TEST, by a uniform draw
    u in [0, 1) hashed from (seed, record number) with splitmix64's finaliser: validation when
    u < ``validation``, test when below ``validation + test``."""
    key = np.uint64(rng_for(seed, STREAM_SPLIT).integers(2**63))
    with np.errstate(over="ignore"):
        z = np.asarray(rows, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15) + key
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return np.where(u < validation, VALIDATION, np.where(u < validation + test, TEST, TRAIN))


class Source:
    """One file's chunks and how a chunk's rows are kept: the part each row belongs to, and
    the rows ``data.missing`` leaves out (drop: any missing value; fill: a missing target)."""

    def __init__(self, chunks: Any, cfg: Any, seed: int, fractions: tuple[float, float] | None):
        self.chunks, self.seed, self.fractions = chunks, seed, fractions
        self.missing = getattr(cfg, "missing", "error")
        self.na_values = [str(v) for v in getattr(cfg, "na_values", None) or []]
        self.features: list[str] = []
        self.targets: list[str] = []
        # each part's rows in each chunk, counted by the first pass (ranks share out chunks)
        self.chunk_rows = {part: np.zeros(len(chunks), dtype=np.int64) for part in PARTS}

    def rows(self, k: int, part: int) -> Any:
        """Chunk ``k``'s rows of ``part`` that ``data.missing`` keeps, as a frame."""
        return self.kept(self.chunks.read(k), part)

    def kept(self, frame: Any, part: int) -> Any:
        """The rows of a chunk's ``frame`` in ``part`` that ``data.missing`` keeps."""
        if self.fractions is not None:
            frame = frame.iloc[np.flatnonzero(self.parts(frame.index.to_numpy()) == part)]
        names = self.targets if self.missing != "drop" else [*self.targets, *self.features]
        if self.missing == "error" or not len(frame):
            return frame
        gone = np.zeros(len(frame), dtype=bool)
        for name in names:
            gone |= cell_missing(frame[name], self.na_values)
        return frame.iloc[np.flatnonzero(~gone)]

    def parts(self, rows: np.ndarray) -> np.ndarray:
        return row_parts(rows, self.seed, *self.fractions)


class Stream:
    """The rows of one part of a streamed table, encoded a chunk at a time."""

    def __init__(self, source: Source, part: int, rows: int, encoder: TabularEncoder, buffer: int):
        self.source, self.part, self.rows, self.encoder = source, part, rows, encoder
        self.buffer_chunks = buffer
        self.held_peak = 0  # the most rows the shuffle buffer held at once (tests count it)
        self.label_counts: np.ndarray | None = None  # the training part's, per class

    def encoded(self, order: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(x, y) of each chunk in ``order`` (chunks without rows of this part skipped)."""
        for k in order:
            frame = self.source.rows(int(k), self.part)
            if len(frame):
                yield self.encoder.transform(frame, unknown="ignore"), self.encoder.targets(frame)

    def batches(
        self, size: int, seed: int = 0, epoch: int = 0, shuffle: bool = False
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Batches of ``size`` rows (the last may be smaller): the chunks in an order drawn from
        (seed, STREAM_SHUFFLE, epoch), ``buffer_chunks`` at a time with the rows left over from
        the last batch, their rows shuffled by the same generator; in file order unshuffled."""
        rng = rng_for(seed, STREAM_SHUFFLE, epoch)
        count = len(self.source.chunks)
        order = rng.permutation(count) if shuffle else np.arange(count)
        sizes = [size] * (self.rows // size) + ([self.rows % size] if self.rows % size else [])
        yield from self._cut(order, sizes, rng if shuffle else None)

    def shares(
        self, size: int, seed: int, epoch: int, shuffle: bool, rank: int, ranks: int
    ) -> Iterator[tuple[np.ndarray, np.ndarray, int, int]]:
        """Rank ``rank``'s part of every global batch of one epoch of ``ranks`` processes, as
        (x, y, its first row in the global batch, the global batch's rows): each rank reads the
        chunks ``rank, rank + ranks, ...`` of the epoch's order (no rank reads another's) and
        gives each of the ceil(rows / size) steps its rows in proportion to the rows it holds,
        so every rank takes the same number of steps (a global batch holds about ``size``)."""
        rng = rng_for(seed, STREAM_SHUFFLE, epoch)
        count = len(self.source.chunks)
        order = rng.permutation(count) if shuffle else np.arange(count)
        per_chunk = self.source.chunk_rows[self.part][order]
        held = np.array([per_chunk[q::ranks].sum() for q in range(ranks)])
        steps = max(-(-self.rows // size), 1)
        edges = np.floor(np.arange(steps + 1)[None, :] * held[:, None] / steps).astype(np.int64)
        cuts = np.diff(edges, axis=1)  # (ranks, steps): each rank's rows of each step
        firsts, totals = cuts[:rank].sum(axis=0), cuts.sum(axis=0)
        own = self._cut(order[rank::ranks], cuts[rank].tolist(), rng if shuffle else None)
        for s, (x, y) in enumerate(own):
            yield x, y, int(firsts[s]), int(totals[s])

    def _cut(
        self, order: np.ndarray, sizes: list[int], rng: np.random.Generator | None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The rows of the chunks in ``order`` cut into batches of ``sizes`` (which add up to
        those rows), shuffled ``buffer_chunks`` chunks at a time when ``rng`` is given."""
        xs: list[np.ndarray] = []
        ys: list[np.ndarray] = []
        done, chunks = 0, 0
        for x, y in self.encoded(order):
            xs.append(x)
            ys.append(y)
            chunks += 1
            self.held_peak = max(self.held_peak, sum(len(v) for v in xs))
            if chunks % self.buffer_chunks:
                continue
            x, y = _shuffled(xs, ys, rng)
            start = 0
            while done < len(sizes) and start + sizes[done] <= len(x):
                yield x[start : start + sizes[done]], y[start : start + sizes[done]]
                start, done = start + sizes[done], done + 1
            xs, ys = [x[start:]], [y[start:]]
        if not xs:  # a rank given no chunk of this part: its steps hold no rows
            xs = [np.zeros((0, len(self.encoder.feature_names)), dtype=self.encoder.dtype)]
            ys = [np.zeros((0, self.encoder.output_width), dtype=self.encoder.dtype)]
        x, y = _shuffled(xs, ys, rng)
        start = 0
        for cut in sizes[done:]:  # the rows left add up to the batches left
            yield x[start : start + cut], y[start : start + cut]
            start += cut

    def head(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The part's first ``n`` rows in file order, as arrays (a smoke run, the first loss)."""
        xs, ys, got = [], [], 0
        for x, y in self.batches(min(n, 4096)):
            xs.append(x)
            ys.append(y)
            got += len(x)
            if got >= n:
                break
        return np.concatenate(xs)[:n], np.concatenate(ys)[:n]


def _shuffled(xs: list, ys: list, rng: np.random.Generator | None) -> tuple[Any, Any]:
    x, y = np.concatenate(xs), np.concatenate(ys)
    if rng is None:
        return x, y
    order = rng.permutation(len(x))
    return x[order], y[order]


class Unheld:
    """A part's inputs that are not held in memory (a streamed table's, an image folder's read
    per batch): their loader checks each value as it reads it."""


class Streamed(Unheld):
    """A streamed part's ``x`` (``which=0``) or ``y`` (1) as ``Part`` and ``fit`` see it: its
    length, shape and dtype; its first rows by ``[:n]``; its batches from ``stream``."""

    def __init__(self, stream: Stream, which: int, shape: tuple[int, ...], dtype: str):
        self.stream, self.which = stream, which
        self.shape = (stream.rows, *shape)
        self.dtype = np.dtype(dtype)

    def __len__(self) -> int:
        return self.stream.rows

    def __getitem__(self, key: slice) -> np.ndarray:
        if not isinstance(key, slice) or key.start not in (None, 0) or key.step not in (None, 1):
            raise TypeError("a streamed part gives its first rows only: part[:n]")
        n = self.stream.rows if key.stop is None else min(key.stop, self.stream.rows)
        return self.stream.head(n)[self.which]


def streamed_part(stream: Stream, encoder: TabularEncoder) -> Part:
    x = Streamed(stream, 0, (len(encoder.feature_names),), encoder.dtype)
    return Part(x, Streamed(stream, 1, (encoder.output_width,), encoder.dtype))


def load(
    cfg: Any,
    path: Path,
    seed: int,
    loss: str,
    dtype: str,
    columns: Callable[..., tuple[list[str], list[str], list[str]]],
    other: Callable[[str], Path],
) -> Dataset:
    """``data: {kind: csv, streaming: true}`` -> a Dataset whose parts are streams. ``columns``
    checks the spec's columns against the header (the table loader's), ``other`` resolves a
    ``validation:``/``test:`` file's path."""
    if getattr(cfg, "split_column", None):
        raise SpecError("streaming draws the parts by row; leave it out", field="data.split_column")
    task = task_for_loss(loss)
    delimiter, na_values = cfg.delimiter, [str(v) for v in cfg.na_values or []]
    chunks = open_chunks(path, cfg.chunk_rows, delimiter, na_values)
    targets, features, categorical = columns(cfg, chunks.header, path)
    if task == "classification" and len(targets) != 1:
        raise DataError(f"{loss} takes one target column, got {len(targets)}", field="data.target")
    files = {name: getattr(cfg, name, None) for name in ("validation", "test")}
    fractions = tuple(0.0 if files[n] else float(getattr(cfg, f"{n}_split")) for n in files)
    chunks.text = set(categorical) | set(targets[:1] if task == "classification" else [])
    source = Source(chunks, cfg, seed, fractions)
    source.features, source.targets = features, targets
    fitted, counts = first_pass(source, categorical, task)
    encoder = fitted.encoder(cfg, loss, delimiter, na_values)
    encoder.dtype = dtype
    buffer = cfg.buffer_chunks
    parts = {}
    for part, name in ((TRAIN, "train"), (VALIDATION, "validation"), (TEST, "test")):
        stream = None
        if name != "train" and files[name]:
            more = open_chunks(other(files[name]), cfg.chunk_rows, delimiter, na_values)
            more.text = chunks.text
            whole = Source(more, cfg, seed, None)
            whole.features, whole.targets = features, targets
            stream = Stream(whole, WHOLE, count_rows(whole), encoder, buffer)
        elif counts[part]:
            stream = Stream(source, part, counts[part], encoder, buffer)
            stream.label_counts = fitted.labels.totals.get(targets[0]) if part == TRAIN else None
        parts[name] = None if stream is None else streamed_part(stream, encoder)
    if not counts[TRAIN]:
        raise DataError("the training part is empty", where=str(path))
    return Dataset(task, parts_of(**parts), encoder, str(path))


def count_rows(source: Source) -> int:
    """The rows a file gives (``data.missing`` applied), read chunk by chunk in order."""
    rows = 0
    for k in range(len(source.chunks)):
        frame = source.chunks.read(k)
        source.chunks.counted(k, len(frame))
        source.chunk_rows[WHOLE][k] = len(source.kept(frame, WHOLE))
        rows += int(source.chunk_rows[WHOLE][k])
    return rows


class Fitted:
    """What the first pass gathers from the training rows to fit a ``TabularEncoder``."""

    def __init__(self, features: list[str], targets: list[str], categorical: list[str]):
        self.features, self.targets, self.categorical = features, targets, set(categorical)
        self.numeric: list[str] | None = None  # decided by the first chunk with training rows
        self.moments: Moments | None = None
        self.counts: Counts | None = None
        self.labels = Counts(targets[:1])

    def add(self, frame: Any, task: str, na_values: list[str]) -> None:
        if self.numeric is None:
            self.numeric = [
                n for n in self.features if _numbers(frame, n, self.categorical, na_values)
            ]
            self.moments = Moments(self.numeric)
            self.counts = Counts([n for n in self.features if n not in set(self.numeric)])
        values = np.empty((len(frame), len(self.numeric)))
        for j, name in enumerate(self.numeric):
            values[:, j], _, bad = cell_numbers(frame[name], na_values)
            if bad.any():
                text = cell_text(frame[name], na_values)[0]
                raise not_numbers(frame, name, text, bad)
        self.moments.add(values)
        for name in self.counts.seen:
            text, absent = cell_text(frame[name], na_values)
            self.counts.add(name, text[~absent])
        if task == "classification":
            text, absent = cell_text(frame[self.targets[0]], na_values)
            self.labels.add(self.targets[0], text[~absent])

    def encoder(self, cfg: Any, loss: str, delimiter: str, na_values: list[str]) -> TabularEncoder:
        numeric = {c.name: c for c in self.moments.columns(cfg.normalize)}
        columns = [numeric[n] if n in numeric else self.counts.column(n) for n in self.features]
        label = None
        if task_for_loss(loss) == "classification":
            label = self.labels.column(self.targets[0])
            found = f"column {self.targets[0]!r} has {len(label.categories)}"
            check_class_count(len(label.categories), loss, found, field="data.target")
        return TabularEncoder(columns, self.targets, loss, label, cfg.missing, na_values, delimiter)


def _numbers(frame: Any, name: str, categorical: set[str], na_values: list[str]) -> bool:
    """A feature is numeric when not named categorical and its first chunk's present cells are
    all numbers (later chunks must agree: a stray text there is an error naming its line)."""
    return name not in categorical and not cell_numbers(frame[name], na_values)[2].any()


def first_pass(source: Source, categorical: list[str], task: str) -> tuple[Fitted, list[int]]:
    """Every chunk once: each chunk's rows numbered, the training rows' statistics gathered, and
    each part's rows counted -> (what fits the encoder, rows per part)."""
    chunks, counts = source.chunks, [0, 0, 0]
    fitted = Fitted(source.features, source.targets, categorical)
    for k in range(len(chunks)):
        whole = chunks.read(k)
        chunks.counted(k, len(whole))
        for part in (TRAIN, VALIDATION, TEST):
            frame = source.kept(whole, part)
            counts[part] += len(frame)
            source.chunk_rows[part][k] = len(frame)
            if part == TRAIN and len(frame):
                fitted.add(frame, task, source.na_values)
                chunks.text |= set(source.features) - set(fitted.numeric)
    if fitted.numeric is None:
        raise DataError("the training part is empty", where=str(chunks.path))
    return fitted, counts
