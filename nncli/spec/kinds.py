"""The spec room's part of each data kind, registered once: its ``data:`` section model, its
``nncli init`` starter and what one example's input shape holds (``SpecKind``).

A data kind is one name in three rooms, each registering its own part once, keyed by the data
room's names (the arrows let a room see only those below it): the data room's ``DataKind``
(loader, encoder, what ``predict`` reads: ``data.kinds.KINDS``), this ``SpecKind``, and the export
room's ``DataForm`` (``export.inputs.KINDS``). ``tests/data/test_data_kinds.py`` holds the three
to the same names. ``DATA_KINDS`` (the ``kind:`` values a spec may give: each name and its
synonyms, ``table`` for ``csv``) and ``Data`` (their union) are made here from them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Literal, Union

from pydantic import BaseModel, Field

from nncli.data.kinds import KINDS, SYNONYMS
from nncli.data.profile import Profile
from nncli.engine.registry import OPTIMIZERS
from nncli.spec.document import Path_, render
from nncli.spec.fields import FilePath, OptFilePath, Text
from nncli.spec.sections import (
    DEFAULT_OPTIMIZER,
    CsvData,
    ImagesData,
    SequencesData,
    Splits,
    TextData,
    TimeseriesData,
)
from nncli.spec.sections import SECTIONS as PLACED
from nncli.spec.starter_kinds import (
    Training,
    arrays_starter,
    csv_starter,
    images_starter,
    sequences_starter,
    text_starter,
    timeseries_starter,
)


class ArraysData(Splits):
    """Arrays ``x`` (N, ...) and ``y`` of an HDF5 or ``.npz`` file, used as stored."""

    kind: Literal["arrays"]
    path: FilePath
    x: Text = "x"
    y: Text = "y"
    validation: OptFilePath = None
    test: OptFilePath = None


@dataclass(frozen=True)
class SpecKind:
    """``section``: the ``data:`` mapping's model; ``starter(profile, path)`` -> the ``data:``
    and ``model:`` lines of ``nncli init``'s spec and how it trains; ``shape``: what one
    example's input shape holds, for the starter's comment."""

    section: type[BaseModel]
    starter: Callable[[Profile, str], tuple[list[str], Training]]
    shape: str


SPEC_KINDS: dict[str, SpecKind] = {
    "csv": SpecKind(CsvData, csv_starter, "numbers a row, text columns one-hot"),
    "images": SpecKind(ImagesData, images_starter, "[channels, height, width]"),
    "timeseries": SpecKind(TimeseriesData, timeseries_starter, "[window steps, columns]"),
    "text": SpecKind(TextData, text_starter, "[characters, one-hot over the vocabulary]"),
    "sequences": SpecKind(
        SequencesData, sequences_starter, "[steps, features], padded to the longest sequence"
    ),
    "arrays": SpecKind(ArraysData, arrays_starter, "the shape of one row of x, as stored"),
}
assert set(SPEC_KINDS) == set(KINDS), "each data kind registers its spec part once"

# the names a spec's ``kind:`` takes: ``table`` (the name for tables) first, then each kind
DATA_KINDS: dict[str, type[BaseModel]] = {
    **{name: SPEC_KINDS[kind].section for name, kind in SYNONYMS.items()},
    **{name: kind.section for name, kind in SPEC_KINDS.items()},
}
SECTIONS = tuple(dict.fromkeys(DATA_KINDS.values()))  # each model once (table and csv: one)
Data = Annotated[Union[SECTIONS], Field(discriminator="kind")]  # noqa: UP007


def elsewhere(key: str, parent: Path_) -> str:
    """`` (did you mean 'training.epochs'?)`` for a key that belongs in another section."""
    places = [(path, list(section.model_fields)) for path, section in PLACED.items()]
    places += [(("data",), list(section.model_fields)) for section in DATA_KINDS.values()]
    places.append((("optimizer",), OPTIMIZERS.settings(DEFAULT_OPTIMIZER)))
    for path, keys in places:
        if path != parent and key in keys:
            where = repr(render((*path, key))) if path else f"{key!r} at the top level"
            return f" (did you mean {where}?)"
    return ""
