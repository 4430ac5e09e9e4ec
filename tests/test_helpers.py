"""The tests' float32 yardstick (helpers.float32_tolerance, assert_close_float32, chain_terms):
derived from np.finfo(np.float32), wide enough for any order a processor sums in, narrow enough
to catch a real difference."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import (
    assert_close_float32,
    assert_network_close,
    chain_terms,
    float32_tolerance,
    output_reach,
)

from nncli.engine.network import Sequential

EPS = np.finfo(np.float32).eps


def test_the_tolerance_is_terms_times_float32_eps_times_the_magnitude():
    assert EPS == 2.0**-23
    assert float32_tolerance(1.0) == pytest.approx(EPS, rel=1e-6)
    assert float32_tolerance(40.0, 100) == pytest.approx(100 * EPS * 40.0, rel=1e-4)
    np.testing.assert_allclose(float32_tolerance([-2.0, 3.0], 10), [20 * EPS, 30 * EPS], 1e-5)
    with pytest.raises(ValueError, match="terms"):
        float32_tolerance(1.0, 0)


def test_the_issues_two_processors_agree_and_a_fixed_1e6_did_not():
    """tests/fixtures/v0.1.0/lstm.expected.csv against an AMD EPYC with AVX-512: 2.5e-8 apart,
    less than float32 resolves at 40, yet over an absolute 1e-6."""
    stored, epyc = 40.75356636393973, 40.753565348840866
    assert abs(stored - epyc) > 1e-6
    assert_close_float32(epyc, stored, terms=1)
    with pytest.raises(AssertionError, match=r"worst at \(\): got 40\.75.*tolerance"):
        assert_close_float32(stored + 100 * EPS * stored, stored, terms=1)


@pytest.mark.parametrize("n", [10, 1000, 100_000])
def test_every_summation_order_lies_within_the_bound(n):
    """Sequential (cumsum), pairwise (np.sum), BLAS (a dot product), reversed and sorted float32
    sums of n terms, some cancelling: each within half the tolerance of the exact sum, so any
    two within the whole."""
    rng = np.random.default_rng(n)
    x = (rng.standard_normal(n) * 10.0 ** rng.integers(-3, 4, n)).astype(np.float32)
    exact = np.sum(x.astype(np.float64))  # float64 holds each float32 term's bits
    sums = [
        np.cumsum(x)[-1],
        np.sum(x),
        np.dot(x, np.ones(n, np.float32)),
        np.cumsum(x[::-1])[-1],
        np.cumsum(np.sort(x))[-1],
        np.cumsum(x[np.argsort(-np.abs(x))])[-1],
    ]
    assert all(s.dtype == np.float32 for s in sums)
    magnitude = np.sum(np.abs(x.astype(np.float64)))
    for s in sums:
        assert abs(float(s) - exact) <= float32_tolerance(magnitude, n) / 2
    for s in sums:
        assert_close_float32(s, sums[0], terms=n, magnitude=magnitude)


def test_the_check_names_the_worst_element_and_treats_nan_as_a_value():
    expected = np.array([1.0, 2.0, np.nan])
    assert_close_float32(expected.astype(np.float32), expected)
    with pytest.raises(AssertionError, match=r"1 of 3 .* worst at \(2,\): got 0\.0"):
        assert_close_float32([1.0, 2.0, 0.0], expected)
    with pytest.raises(AssertionError, match=r"worst at \(1,\)"):
        assert_close_float32([1.0 + 3 * EPS, 2.001, np.nan], expected, terms=4)
    # the magnitude comes from what is expected, never from a wild actual value
    with pytest.raises(AssertionError):
        assert_close_float32([1e30], [1.0], terms=1000)


def test_chain_terms_counts_each_layers_fan_in_and_each_recurrent_step():
    dense = Sequential([{"type": "dense", "units": 3}], (4,))
    assert chain_terms(dense) == (4 + 1 + 16) + 1 + 3
    lstm = Sequential([{"type": "lstm", "units": 8}, {"type": "dense", "units": 1}], (5, 2))
    per_step = 2 + 8 + 1 + 16  # weight_ih's and weight_hh's fan-in, bias, activation
    assert chain_terms(lstm, steps=5) == 5 * per_step + (8 + 1 + 16) + 5 + 1


def test_output_reach_is_the_last_sums_size_behind_a_softmax_and_changes_nothing():
    net = Sequential([{"type": "dense", "units": 3, "activation": "softmax"}], (2,))
    net.set_weights({"0.dense.weight": [[10, 0], [0, -10], [1, 1]], "0.dense.bias": [0, 0, 0]})
    x = np.array([[1.0, 2.0]], np.float32)
    before = net.forward(x)
    assert output_reach(net, x) == 20.0  # logits (10, -20, 3); the probabilities are at most 1
    assert net.layers[-1].fused_output is False and net.layers[-1].logits is None
    np.testing.assert_array_equal(net.forward(x), before)
    assert_network_close(before + 50 * EPS, before, net, x)  # 50 eps of 20: well inside
    with pytest.raises(AssertionError):
        assert_network_close(before + 1e-3, before, net, x)
