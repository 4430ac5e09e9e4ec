import numpy as np
import pytest

import nncli.engine  # noqa: F401  (fills the registries)
from nncli.backend import get_backend


@pytest.fixture
def f64():
    return get_backend("cpu", "float64")


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
