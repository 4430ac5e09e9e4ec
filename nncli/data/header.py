"""A table's header against the spec: the columns it names, the features it leaves, and the
delimiter a one-column header suggests.
"""

from __future__ import annotations

from typing import Any

from nncli.errors import DataError, SpecError

DELIMITERS = (";", "\t", "|")  # what a one-column header is checked for


def check_names(
    names: list[str], field: str, choices: list[str], what: str, error: type = DataError
) -> None:
    """``error`` (DataError) at the first of ``names`` not in ``choices`` (``what`` names those),
    for the spec ``field`` that lists it, with a did-you-mean, or with the delimiter the file
    seems to use when ``choices`` is a one-column header."""
    known = set(choices)  # a wide header: one lookup a name, not a scan of the header
    for name in names:
        if name not in known:
            from nncli.engine.registry import did_you_mean  # only on this error path

            hint = delimiter_hint(choices) or did_you_mean(name, choices)
            raise error(f"column {name!r} not in {what}{hint}", field=field)


def delimiter_hint(header: list[str]) -> str:
    """For a header read as one column holding ``;``, tabs or ``|``: " (the header is one column
    ...; set data.delimiter: ";")", naming the most frequent of them; else ""."""
    if len(header) != 1:
        return ""
    sep = _most_frequent(header[0])
    if sep is None:
        return ""
    written = "\\t" if sep == "\t" else sep
    return (
        f" (the header reads as one column, {header[0][:40]!r}; the file seems to use {written!r}"
        f' between fields: set data.delimiter: "{written}")'
    )


def _most_frequent(line: str) -> str | None:
    """The one of DELIMITERS that ``line`` holds most often, or None when it holds none."""
    counts = {sep: line.count(sep) for sep in DELIMITERS}
    sep = max(counts, key=lambda s: counts[s])
    return sep if counts[sep] else None


def sniff_delimiter(line: str) -> str:
    """The delimiter of a header line: a comma when it holds one, else the most frequent of
    DELIMITERS (the one ``delimiter_hint`` would suggest), else a comma (one column)."""
    return "," if "," in line else _most_frequent(line) or ","


def feature_columns(
    cfg: Any, header: list[str], reserved: list[str], role: str, source: str
) -> tuple[list[str], list[str]]:
    """(features, categorical): the spec's ``features`` (default: every header column not
    ``reserved``, i.e. not the ``role`` columns, nor in ``exclude``) and ``categorical``, each
    checked by name; a name in ``exclude`` must be in the header (SpecError) and not a feature."""
    features = list(dict.fromkeys(getattr(cfg, "features", None) or []))
    exclude = list(getattr(cfg, "exclude", None) or [])
    check_names(features, "data.features", header, source)
    check_names(exclude, "data.exclude", header, source, error=SpecError)
    roles, excluded = set(reserved), set(exclude)
    for names, field, other in ((features, "data.features", role), (exclude, "data.exclude", role)):
        both = [name for name in names if name in roles]
        if both:
            raise DataError(f"column {both[0]!r} is also {other}", field=field)
    both = [name for name in features if name in excluded]
    if both:
        raise SpecError(
            f"column {both[0]!r} is in both data.features and data.exclude; keep it in one",
            field="data.exclude",
        )
    left_out = roles | excluded
    features = features or [name for name in header if name not in left_out]
    if not features:
        raise DataError(f"{source} has no columns besides {role}", field="data.features")
    categorical = list(getattr(cfg, "categorical", None) or [])
    check_names(categorical, "data.categorical", features, "the feature columns")
    return features, categorical
