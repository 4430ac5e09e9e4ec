"""Rank 0 reads, the other ranks get what they need (nncli/training/spread.py, data/shipping.py):
the pieces without MPI. The 2-rank runs through mpiexec are in e2e/test_parallel.py."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import ROOT

from nncli import data
from nncli import spec as spec_module
from nncli.data.augment import Augmenter
from nncli.data.shipping import layouts, pack, unpack
from nncli.spec import build
from nncli.training.spread import HeldRows, Spread, batch_positions

# one spec per data kind (penguins: categorical columns; text: ids; sunspots: a target scale)
SPECS = ["penguins", "shakespeare-words", "sunspots-lstm", "walks-gru", "digits-cnn"]


class _World:
    def __init__(self, rank: int, size: int):
        self.rank, self.size, self.lead = rank, size, rank == 0


def _load(name: str, **changes):
    spec = spec_module.load(ROOT / "models" / f"{name}.yaml")
    cfg = spec.data.model_copy(update=changes) if changes else spec.data
    return data.load(
        cfg,
        spec.base_dir,
        spec.seed,
        spec.loss_name,
        input_form=build.input_form(spec.model.layers),
        dtype=spec.dtype,
    )


def _same(a, b) -> None:
    """Equal nested states: dicts, lists, arrays (dtype and values), strings, numbers."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for u, v in zip(a, b, strict=True):
            _same(u, v)
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape
        assert np.array_equal(a, b)
    else:
        assert a == b and type(a) is type(b), (a, b)


@pytest.mark.parametrize("name", SPECS)
def test_a_dataset_travels_whole_but_its_inputs(name):
    ds = _load(name)
    description, arrays = pack(ds)
    got_layouts = layouts(description)
    sent = {
        n: np.frombuffer(a.tobytes(), dtype=a.dtype).reshape(a.shape) for n, a in arrays.items()
    }
    assert {n: (a.shape, a.dtype) for n, a in sent.items()} == got_layouts
    asked = []

    def inputs(part, shape, dtype):
        asked.append(part)
        return np.empty((shape[0], 0), dtype=dtype)  # stands for rows held elsewhere

    back = unpack(description, sent, inputs)
    _same(ds.encoder.to_state(), back.encoder.to_state())  # predict and resume read the same
    assert back.task == ds.task and back.source == ds.source
    assert back.parts.keys() == ds.parts.keys()
    for part, sent_part in back.parts.items():
        for a, b in ((ds.parts[part].y, sent_part.y), (ds.parts[part].mask, sent_part.mask)):
            assert (a is None) == (b is None)
            if a is not None:
                assert a.dtype == b.dtype and np.array_equal(a, b)
    assert asked == list(ds.parts)
    if ds.target_scale is not None:
        assert np.array_equal(back.target_scale, ds.target_scale)


def test_augmentation_travels_with_its_settings():
    aug = Augmenter(
        flip_horizontal=True, shift=1, rotate=5.0, noise=0.1, fill=(-0.5,), scale=(2.0,)
    )
    ds = _load("digits-cnn")
    ds.augment = aug
    description, arrays = pack(ds)
    back = unpack(description, arrays, lambda part, shape, dtype: np.empty((shape[0], 0)))
    assert back.augment == aug


def test_a_share_of_a_batch_changes_as_in_the_whole_batch():
    """Augmentation draws for the whole batch: any rank's rows change as one process's would."""
    aug = Augmenter(flip_horizontal=True, flip_vertical=True, shift=1, rotate=10.0, noise=0.1)
    x = np.random.default_rng(0).standard_normal((7, 2, 5, 5))
    whole = aug(x, np.random.default_rng(3))
    for share in (slice(0, 3), slice(3, 7), slice(7, 7)):
        part = aug(x[share], np.random.default_rng(3), share, len(x))
        np.testing.assert_array_equal(part, whole[share])
    assert not np.array_equal(whole, x)


def test_held_rows_are_read_by_global_number_and_only_those():
    rows = np.arange(10.0).reshape(5, 2) * 10
    held = HeldRows(8, np.array([6, 1, 3]), rows[[6 % 5, 1, 3]])
    assert len(held) == 8 and held.shape == (8, 2)
    np.testing.assert_array_equal(held[np.array([3, 6])], rows[[3, 1]])
    np.testing.assert_array_equal(held[slice(1, 2)], rows[[1]])
    with pytest.raises(RuntimeError, match="not sent"):
        held[np.array([0, 1])]


@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_every_row_of_every_batch_goes_to_exactly_one_rank(size):
    batches = [np.array([4, 0, 9, 2]), np.array([7]), np.array([1, 3, 5, 6, 8])]
    each = [batch_positions(_World(r, size), batches)(r) for r in range(size)]
    assert sorted(np.concatenate(each).tolist()) == list(range(10))
    first = [b[: len(b) // size] for b in batches]  # rank 0 takes the first of each batch
    np.testing.assert_array_equal(each[0], np.concatenate(first))
    slices = [slice(0, 4), slice(4, 5)]
    np.testing.assert_array_equal(
        np.concatenate([batch_positions(_World(r, size), slices)(r) for r in range(size)]),
        np.arange(5),
    )


def test_a_spread_part_is_read_only_through_hold():
    part = Spread(_World(1, 2), None, (10, 3), np.float32)
    assert len(part) == 10 and part.ndim == 2 and part[:4].shape == (4, 3)
    with pytest.raises(TypeError):
        part[np.array([1, 2])]
