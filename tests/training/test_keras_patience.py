"""Early stopping's ``patience`` in Keras's meaning (spec version 2) and in nncli's first one
(version 1, one epoch more), against the rule Keras documents for ``EarlyStopping``:

    patience: Number of epochs with no improvement after which training will be stopped.

and its example: ``EarlyStopping(monitor='loss', patience=3)`` on a loss that never improves
after the first epoch runs 4 epochs. The rule is written on its own, from those words, in
``helpers.keras_stop_epoch``."""

import pytest
from helpers import keras_stop_epoch

from nncli.engine.history import History
from nncli.training.callbacks import EarlyStopping

# a fixed validation loss: improvements at epochs 1, 2, 5, 8 and 14, plateaus between
LOSSES = [1.0, 0.8, 0.85, 0.9, 0.7, 0.75, 0.72, 0.69, 0.74, 0.73, 0.76, 0.78, 0.7, 0.6, 0.61]


def stop_epoch(losses: list[float], patience: int, keras: bool, min_delta: float = 0.0) -> int:
    """The epoch after which nncli's callback says stop (None: it never does)."""
    es = EarlyStopping(
        monitor="val_loss",
        patience=patience,
        min_delta=min_delta,
        restore_best=False,
        keras_patience=keras,
    )
    es.begin(net=None, history=History(), best_weights=None)
    for epoch, loss in enumerate(losses, start=1):
        if es.on_epoch_end(epoch, {"epoch": epoch, "val_loss": loss}):
            assert es.exhausted
            return epoch
    return None


def test_the_rule_written_here_reproduces_keras_documented_example():
    assert keras_stop_epoch([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], patience=3) == 4


@pytest.mark.parametrize("patience", [1, 2, 3, 4, 5, 6])
def test_version_2_stops_where_keras_does(patience):
    expected = keras_stop_epoch(LOSSES, patience)
    assert stop_epoch(LOSSES, patience, keras=True) == expected


@pytest.mark.parametrize("patience", [0, 1, 2, 3, 4, 5])
def test_version_1_stops_one_epoch_of_patience_later(patience):
    """nncli's first meaning: patience + 1 epochs without improvement."""
    assert stop_epoch(LOSSES, patience, keras=False) == keras_stop_epoch(LOSSES, patience + 1)


def test_the_stop_epochs_differ_and_min_delta_counts_the_same_way():
    stops = {p: stop_epoch(LOSSES, p, keras=True) for p in (1, 2, 3, 4)}
    assert stops == {1: 3, 2: 4, 3: 11, 4: 12}  # worked out by hand from LOSSES
    assert [stop_epoch(LOSSES, p, keras=False) for p in (1, 2, 3)] == [4, 11, 12]
    for p in (1, 2, 3):  # 0.72 after 0.7 is no improvement by 0.05: it is counted as none
        expected = keras_stop_epoch(LOSSES, p, min_delta=0.05)
        assert stop_epoch(LOSSES, p, keras=True, min_delta=0.05) == expected


def test_keras_patience_0_stops_at_the_first_epoch_without_improvement():
    """Keras's code stops once ``wait >= patience`` after counting an epoch without
    improvement, so its patience 0 behaves as its patience 1."""
    assert stop_epoch(LOSSES, 0, keras=True) == stop_epoch(LOSSES, 1, keras=True) == 3
