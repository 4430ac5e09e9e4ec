"""``nncli lr-find``: the learning-rate range test (``nncli/training/range_test.py``) on a spec's
network, from the weights the spec's seed draws (or ``model.init_from``'s), with its optimizer
and batches: ``lr_find.csv`` and, when matplotlib is installed, ``lr_find.png`` in the output
folder, and the suggested rate as the ``--set`` to train with."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nncli.checkpoint.folder import write_atomic
from nncli.checkpoint.outputs import check_output, make_folder
from nncli.commands.train import fit_arrays, start
from nncli.errors import SpecError
from nncli.spec.resolve import resolve
from nncli.training.range_test import RangeTest, pairs, range_test

if TYPE_CHECKING:
    from nncli.spec import Spec

COLUMNS = ("step", "learning_rate", "loss", "smoothed_loss")


@dataclass
class LrFindResult:
    test: RangeTest
    files: list[Path]
    setting: str  # "optimizer.learning_rate=0.0032"
    no_picture: str = ""  # why there is no PNG (matplotlib missing), else ""


def csv_text(test: RangeTest) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in pairs(test):
        writer.writerow({k: repr(v) if isinstance(v, float) else v for k, v in row.items()})
    return buffer.getvalue()


def _picture(test: RangeTest, name: str) -> bytes | None:
    """The PNG, or None without matplotlib (the plot extra)."""
    from nncli import plots

    if not plots.available():
        return None
    from nncli.plots import draw
    from nncli.plots.figures import RangeCurve

    title = f"{name}: learning-rate range test"
    picture = RangeCurve(title, test.rates, test.losses, test.smoothed, test.suggestion)
    return draw.render(picture)


def lr_find(
    spec: Spec,
    *,
    steps: int = 100,
    low: float = 1e-7,
    high: float = 10.0,
    output_dir: Path | None = None,
    force: bool = False,
    device: str | None = None,
) -> LrFindResult:
    """Run the range test on the spec's network and write its CSV (and PNG) into ``output_dir``
    (default ``runs/<name>-lr-find/`` under the current folder)."""
    if not 0 < low < high:
        raise SpecError(f"expected 0 < --min-lr < --max-lr, got {low} and {high}", field="--min-lr")
    folder = Path(output_dir or Path("runs", f"{spec.name}-lr-find"))
    inputs = [spec.source, spec.model.init_from]
    inputs += [getattr(spec.data, key, None) for key in ("path", "validation", "test")]
    outputs = [folder / "lr_find.csv", folder / "lr_find.png"]
    for path in outputs:
        check_output(path, inputs, force=force, makes_folder=True, option="--output-dir")
    ready = resolve(spec, device=device)
    start(spec, ready)
    x, y, config = fit_arrays(spec, ready.ds, smoke=False)
    test = range_test(
        ready.net, ready.loss, ready.optimizer, (x, y, config.mask),
        batch_size=spec.training.batch_size, seed=spec.seed, steps=steps, low=low, high=high,
    )  # fmt: skip
    make_folder(folder)
    write_atomic(outputs[0], csv_text(test))
    png = _picture(test, spec.name)
    if png is not None:
        write_atomic(outputs[1], png)
    written = outputs if png is not None else outputs[:1]
    why = (
        "" if png is not None else 'no PNG: matplotlib is not installed (pip install -e ".[plot]")'
    )
    return LrFindResult(test, written, f"optimizer.learning_rate={test.suggestion:.3g}", why)
