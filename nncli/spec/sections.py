"""What a valid spec looks like: the pydantic sections, one per mapping of the file.

The field checks live in ``fields.py``. Layers, the loss and the optimizer are checked by
building them through the engine's registries, so the spec and the engine never disagree. A new
data kind adds its section here and its ``SpecKind`` in ``kinds.py`` (``DATA_KINDS``, the
``kind:`` union, are made there from them and still read from here).
"""

from __future__ import annotations

import inspect
from functools import partial
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, model_validator

import nncli.engine  # noqa: F401  (fills the registries)
from nncli.engine import checks
from nncli.engine.layer import take_trainable
from nncli.engine.registry import LAYERS, LOSSES, OPTIMIZERS, Registry, did_you_mean
from nncli.engine.schedules import SCHEDULES
from nncli.errors import SpecError
from nncli.spec.conventions import refused
from nncli.spec.document import Path_
from nncli.spec.fields import (
    BatchSize,
    Bool,
    Delimiter,
    FilePath,
    Fraction,
    Invalid,
    LogBackends,
    Missing,
    Names,
    NonNegFloat,
    NonNegInt,
    Normalize,
    OptFilePath,
    OptNames,
    OptPositiveInt,
    OptText,
    PositiveInt,
    Problem,
    SomeNames,
    Target,
    Text,
    checked,
    ints,
    one_of,
    short,
)
from nncli.spec.inputs import check_columns, checked_inputs
from nncli.spec.layers import checked_layers

DEFAULT_OPTIMIZER = "adam"


class Section(BaseModel):
    """A mapping in the spec: unknown keys are errors, nothing is coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, protected_namespaces=())


class _Splits(Section):
    """Fractions of the records held out for validation and test."""

    validation_split: Fraction = 0.2
    test_split: Fraction = 0.0

    @model_validator(mode="after")
    def _splits_leave_training_data(self) -> _Splits:
        if self.validation_split + self.test_split >= 1:
            raise Invalid.one(
                "validation_split + test_split must be below 1, "
                f"got {self.validation_split} + {self.test_split}",
                ("test_split",),
            )
        return self


Splits = _Splits  # the base of a data section with validation and test fractions (spec/kinds.py)


class CsvData(_Splits):
    """A table: one row per record, ``target`` column(s) to predict. ``kind: table`` names
    it; ``csv``, its first name, is the same kind (its checkpoints store ``csv``)."""

    kind: Literal["table", "csv"]
    path: FilePath
    sheet: OptText = None  # an Excel workbook's sheet (the first by default)
    target: Target
    features: OptNames = None
    exclude: Names = []
    categorical: Names = []
    normalize: Normalize = "standard"
    missing: Missing = "error"
    na_values: Names = []
    delimiter: Delimiter = ","
    validation: OptFilePath = None
    test: OptFilePath = None
    split_column: OptText = None  # a column of train / validation / test: the file's own split
    # several named inputs, each with its own encoder (spec/inputs.py); None: one, ``input``
    inputs: Annotated[dict[str, dict[str, Any]] | None, PlainValidator(checked_inputs)] = None

    @model_validator(mode="after")
    def _inputs_own_their_columns(self) -> CsvData:
        check_columns(self.inputs, self.target, self.features)
        return self

    streaming: Bool = False  # data larger than memory: read in chunks (nncli/data/streaming.py)
    chunk_rows: PositiveInt = 10_000  # a CSV chunk's records (Parquet: its row groups)
    buffer_chunks: PositiveInt = 8  # chunks whose rows are shuffled together

    @model_validator(mode="after")
    def _split_column_decides(self) -> CsvData:
        """With ``split_column`` the column gives each row its part: no other file or test
        fraction; ``validation_split`` (default 0 then) draws from the rows it marks train."""
        column = self.split_column
        if column is None:
            return self
        given = self.model_fields_set
        for key in ("validation", "test"):
            if getattr(self, key) is not None:
                raise Invalid.one(
                    f"the rows' parts come from split_column {column!r}; leave {key} out", (key,)
                )
        if "test_split" in given and self.test_split > 0:
            raise Invalid.one(
                f"the test rows are those split_column {column!r} marks test; leave test_split out",
                ("test_split",),
            )
        for key in ("validation_split", "test_split"):
            if key not in given:
                setattr(self, key, 0.0)
        return self


class Augment(Section):
    """Random changes to training images, drawn from the spec's seed."""

    flip_horizontal: Bool = False
    flip_vertical: Bool = False
    shift: NonNegInt = 0
    rotate: NonNegFloat = 0.0
    noise: NonNegFloat = 0.0


class ImagesData(_Splits):
    """A folder with one sub-folder of images per class."""

    kind: Literal["images"]
    path: FilePath
    image_size: Annotated[
        list[int] | None,
        checked(
            partial(ints, what="[height, width], two positive integers", length=2), optional=True
        ),
    ] = None
    color: Annotated[str, one_of("grayscale", "rgb")] = "grayscale"
    normalize: Annotated[str, one_of("none", "standard")] = "none"
    validation: OptFilePath = None
    test: OptFilePath = None
    augment: Augment = Field(default_factory=Augment)
    streaming: Bool = False  # each batch's images decoded when used (nncli/data/image_stream.py)
    chunk_rows: PositiveInt = 256  # images the pass before training decodes at once


class TimeseriesData(_Splits):
    """Windows of ``window`` rows predicting ``horizon`` rows ahead."""

    kind: Literal["timeseries"]
    path: FilePath
    columns: SomeNames
    target: Target
    window: PositiveInt
    horizon: PositiveInt = 1
    stride: PositiveInt = 1
    normalize: Normalize = "standard"
    delimiter: Delimiter = ","
    sheet: OptText = None


class TextData(Section):
    """Plain text cut into sequences of characters or words."""

    kind: Literal["text"]
    path: FilePath
    level: Annotated[str, one_of("char", "word")] = "char"
    sequence_length: PositiveInt = 64
    stride: OptPositiveInt = None  # filled with sequence_length
    validation_split: Fraction = 0.1
    max_chars: OptPositiveInt = None  # read only the first max_chars characters


class SequencesData(_Splits):
    """A table of variable-length sequences, one ``id`` per sequence."""

    kind: Literal["sequences"]
    path: FilePath
    id: Text
    order: OptText = None
    features: OptNames = None
    target: Text
    target_per: Annotated[str, one_of("sequence", "step")] = "sequence"
    exclude: Names = []
    categorical: Names = []
    normalize: Normalize = "standard"
    missing: Missing = "error"
    delimiter: Delimiter = ","
    sheet: OptText = None


# -- layers, loss and optimizer: checked by building them through the registries --------------
def _required(cls: type) -> list[str]:
    params = inspect.signature(cls.__init__).parameters.values()
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [
        p.name
        for p in params
        if p.name != "self" and p.kind in kinds and p.default is inspect.Parameter.empty
    ]


def _build(registry: Registry, item: Any) -> tuple[dict[str, Any], Any, list[Problem]]:
    """A bare name or ``{type, **settings}`` -> (entry, built object or None, problems)."""
    what = registry.kind
    if isinstance(item, str):
        entry = {"type": item}
    elif isinstance(item, dict):
        entry = dict(item)
    else:
        article = "an" if what[0] in "aeiou" else "a"
        message = f"expected {article} {what} name or a mapping with 'type', got {short(item)}"
        return {}, None, [((), message, False)]
    if "type" not in entry:
        return entry, None, [((), "missing required key 'type'", False)]
    name, settings = entry["type"], {k: v for k, v in entry.items() if k != "type"}
    allowed: list[str] = []
    try:
        if registry is LAYERS:  # a key of every layer, not of its constructor
            take_trainable(settings)
        cls = registry.get(name)
        allowed = registry.settings(name)
        takes = f" ({what} {cls.type_name!r} takes {', '.join(allowed) or 'no settings'})"

        def hint(key: str) -> str:
            from nncli.spec.kinds import elsewhere  # it holds this module's sections

            return elsewhere(key, (what,)) or did_you_mean(key, allowed) or takes

        problems: list[Problem] = [
            ((), f"missing required key {key!r}", False)
            for key in _required(cls)
            if key not in settings
        ]
        for key in (k for k in settings if k not in allowed):  # every one, not only the first
            problems.append(((key,), f"unknown key {key!r}{hint(key)}", True))
        if problems:
            return entry, None, problems
        built = registry.create(name, settings)
        problems = refused(what, cls.type_name, settings)  # another library's meaning
        return (entry, None, problems) if problems else (registry.canonical_entry(entry), built, [])
    except SpecError as exc:
        return entry, None, [(tuple(exc.field.split(".")) if exc.field else (), exc.message, False)]
    except Exception as exc:  # an engine constructor choking on an odd value is still a spec error
        return entry, None, [((), f"{what} {name!r} cannot take these settings: {exc}", False)]


def _layers(value: Any, info: Any) -> list[dict[str, Any]]:  # info: pydantic's ValidationInfo
    names = (info.context or {}).get("inputs") or ("input",)  # the data's inputs, by name
    return checked_layers(value, partial(_build, LAYERS), tuple(names))


def _optimizer(value: Any) -> dict[str, Any]:
    """Stored with every setting filled in from the built optimizer's config (and schedule's)."""
    schedule = None
    if isinstance(value, dict) and "schedule" in value:
        value = dict(value)
        schedule = value.pop("schedule")
    entry, built, problems = _build(OPTIMIZERS, value)
    if schedule is not None:
        _, planned, found = _build(SCHEDULES, schedule)
        problems += [(("schedule", *sub), message, key) for sub, message, key in found]
    if problems:
        raise Invalid(problems)
    out = dict(built.config()) if hasattr(built, "config") else entry
    return out if schedule is None else {**out, "schedule": planned.config()}


def _loss(value: Any) -> str | dict[str, Any]:
    """A loss name, or ``{type, **settings}`` for a loss with settings (``{type: name}`` alone
    is read as the name)."""
    if isinstance(value, dict) and list(value) == ["type"]:
        value = value["type"]
    if not isinstance(value, dict):
        try:
            return LOSSES.get(value, field=None).type_name
        except SpecError as exc:
            raise Invalid.one(exc.message) from None
    entry, _, problems = _build(LOSSES, value)
    if problems:
        raise Invalid(problems)
    return entry


def loss_name(loss: str | dict[str, Any]) -> str:
    """The name of a spec's ``loss`` (a name or ``{type, **settings}``)."""
    return loss["type"] if isinstance(loss, dict) else loss


class ModelSpec(Section):
    """The layers in order; ``input`` is inferred from the data when left out."""

    input: Annotated[
        list[int] | None,
        checked(
            partial(ints, what="the input shape as a list of positive integers"), optional=True
        ),
    ] = None
    layers: Annotated[list[dict[str, Any]], PlainValidator(_layers)]
    # a checkpoint whose layers of the same name (or place in a stack) and shapes start this
    # run (commands/init_from.py); relative to the spec's folder
    init_from: OptFilePath = None


class EarlyStopping(Section):
    """Stop when ``monitor`` has not improved for ``patience`` epochs."""

    monitor: Text = "val_loss"
    patience: NonNegInt = 5
    min_delta: NonNegFloat = 0.0
    restore_best: Bool = True
    mode: Annotated[str, one_of("auto", "min", "max")] = "auto"


def _class_weight(value: Any) -> str | dict[str, float]:
    """``balanced`` or ``{label: weight}`` (labels as text; checked against the data later)."""
    if value == "balanced":
        return value
    if not isinstance(value, dict) or not value:
        raise SpecError(
            f"expected 'balanced' or a mapping of labels to weights, got {short(value)}"
        )
    return {
        str(label): checks.number(str(label), weight, 0.0, low_open=True)
        for label, weight in value.items()
    }


ClassWeight = Annotated[str | dict[str, float] | None, checked(_class_weight, optional=True)]


class Training(Section):
    """How the training loop runs."""

    epochs: PositiveInt = 10
    batch_size: BatchSize = 32
    shuffle: Bool = True
    early_stopping: EarlyStopping | None = None
    checkpoint_every: OptPositiveInt = None
    class_weight: ClassWeight = None
    log: LogBackends = []  # where a run logs besides history.csv (nncli/tracking/)


# -- where each section lives; loading.py adds the top level (the Spec itself) -------------------
SECTIONS: dict[Path_, type[BaseModel]] = {
    ("model",): ModelSpec,
    ("training",): Training,
    ("training", "early_stopping"): EarlyStopping,
    ("data", "augment"): Augment,
}


# -- the top level's fields that check through the registries (the Spec: loading.py) ---
Loss = Annotated[str | dict[str, Any], PlainValidator(_loss)]
Optimizer = Annotated[dict[str, Any], PlainValidator(_optimizer)]


def default_optimizer() -> dict[str, Any]:
    return _optimizer(DEFAULT_OPTIMIZER)


def __getattr__(name: str) -> Any:
    """``DATA_KINDS`` and ``Data``, made in ``kinds.py`` from these sections, read from here too."""
    if name in ("DATA_KINDS", "Data"):
        from nncli.spec import kinds

        return getattr(kinds, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
