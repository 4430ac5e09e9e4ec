from pathlib import Path

import numpy as np
import pytest

import nncli.engine  # noqa: F401  (fills the registries)
from nncli.backend import get_backend

E2E = Path(__file__).resolve().parent / "e2e"


def pytest_collection_modifyitems(items):
    """Every test in tests/e2e/ is an end-to-end run (whole trainings, several processes): it
    carries the ``slow`` marker without each file saying so."""
    for item in items:
        if E2E in item.path.resolve().parents:
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def f64():
    return get_backend("cpu", "float64")


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
