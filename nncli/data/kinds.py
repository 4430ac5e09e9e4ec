"""The one registry of data kinds: ``data.kind`` -> its loader and its encoder class.

Adding a data kind = one module (a ``load`` and an ``Encoder`` subclass) + its ``DataKind``
here; the spec room registers its part (section model, starter) in ``spec/kinds.py`` and the
export room its ``DataForm`` in ``export/inputs.py``, each once, under the same name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from nncli.data import arrays, images, sequences, table, text, timeseries
from nncli.data.dataset import Dataset
from nncli.data.encoder import Encoder
from nncli.data.image_encoder import ImageEncoder
from nncli.data.table_encoder import TabularEncoder


@dataclass(frozen=True)
class DataKind:
    """``loader(cfg, base_dir, seed, loss[, skip_bad=])`` -> Dataset; ``encoder`` rebuilds a
    stored one; ``takes_skip_bad``: the loader and ``read_frame`` can leave out unreadable
    files (``--skip-bad``); ``takes_ids``: the loader can give symbols as integer ids
    (``input_form="ids"``, for an embedding first layer); ``takes_dtype``: the loader makes its
    real-valued arrays in the spec's dtype (``dtype="float64"``)."""

    loader: Callable[..., Dataset]
    encoder: type[Encoder]
    takes_skip_bad: bool = False
    takes_ids: bool = False
    takes_dtype: bool = False
    reads: str = ""  # what a model of the kind is applied to, for messages (predict, plot)


KINDS: dict[str, DataKind] = {
    "csv": DataKind(  # --skip-bad: the rows of a missing or unreadable image (data.inputs)
        table.load, TabularEncoder, takes_skip_bad=True, takes_dtype=True, reads="CSV tables"
    ),
    "images": DataKind(
        images.load, ImageEncoder, takes_skip_bad=True, takes_dtype=True, reads="images"
    ),
    "timeseries": DataKind(
        timeseries.load, timeseries.TimeseriesEncoder, takes_dtype=True, reads="CSV time series"
    ),
    "text": DataKind(text.load, text.TextEncoder, takes_ids=True, reads="text files"),
    "sequences": DataKind(
        sequences.load,
        sequences.SequenceEncoder,
        takes_ids=True,
        takes_dtype=True,
        reads="CSV tables of sequences",
    ),
    "arrays": DataKind(
        arrays.load, arrays.ArraysEncoder, takes_dtype=True, reads="arrays of HDF5 or .npz files"
    ),
}
# a name a spec may give -> the registry's: ``kind: table`` is the name for tabular data; the
# registry, its encoder and checkpoints keep ``csv``, its first name, so that releases before
# ``table`` load the checkpoints this one writes
SYNONYMS: dict[str, str] = {"table": "csv"}
