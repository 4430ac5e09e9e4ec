"""The data room's shared pieces: the one registry of kinds, the Encoder base class and its
defaults, the one one-hot encoder, and the one label order used by tables and image folders."""

from __future__ import annotations

import numpy as np
import pytest

from nncli import data
from nncli.data.columns import CategoricalColumn
from nncli.data.encoder import Encoder
from nncli.data.image_encoder import ImageEncoder
from nncli.data.labels import check_class_count, label_order
from nncli.data.onehot import one_hot
from nncli.errors import DataError


@pytest.mark.parametrize("name", sorted(data.KINDS))
def test_every_registered_kind_has_its_encoder_and_loader(name):
    kind = data.KINDS[name]
    assert issubclass(kind.encoder, Encoder) and kind.encoder.kind == name
    assert callable(kind.loader)


def test_the_registry_holds_the_six_kinds_and_only_those_with_images_skip_bad_files():
    assert sorted(data.KINDS) == ["arrays", "csv", "images", "sequences", "text", "timeseries"]
    # image folders, and tables (an image-path column of ``data.inputs``)
    skipping = {name for name, kind in data.KINDS.items() if kind.takes_skip_bad}
    assert skipping == {"csv", "images"}


class Doubling(Encoder):
    kind, task = "double", "regression"

    def transform(self, data, unknown="error"):
        return np.asarray(data, dtype=np.float32) * 2

    def targets(self, frame):
        return np.asarray(frame, dtype=np.float32)


def test_the_optional_encoder_methods_have_working_defaults():
    encoder, frame = Doubling(), [1.0, 2.0]
    x, mask = encoder.inputs(frame)
    np.testing.assert_array_equal(x, [2.0, 4.0])
    assert mask is None and encoder.id_columns(frame) == {} and encoder.labels is None
    x, y, mask = encoder.labelled(frame)
    np.testing.assert_array_equal(x, [2.0, 4.0])
    np.testing.assert_array_equal(y, [1.0, 2.0])
    assert mask is None
    with pytest.raises(NotImplementedError):
        encoder.decode(np.zeros((2, 1)))


def test_one_hot_gives_float32_rows_and_zeros_for_unknown_ids():
    out = one_hot(np.array([[2, -1], [0, 1]]), 3)
    assert out.dtype == np.float32 and out.shape == (2, 2, 3)
    np.testing.assert_array_equal(out[0], [[0, 0, 1], [0, 0, 0]])
    np.testing.assert_array_equal(out[1], [[1, 0, 0], [0, 1, 0]])


def test_table_categories_and_image_classes_encode_through_the_same_one_hot():
    codes = np.array([1, 0, 2, -1])
    column = CategoricalColumn("c", ["a", "b", "c"], False, "a")
    np.testing.assert_array_equal(column.encode(codes), one_hot(codes, 3))
    images = ImageEncoder(["a", "b", "c"], "cross_entropy", (2, 2), "grayscale")
    np.testing.assert_array_equal(images.encode(codes[:3]), one_hot(codes[:3], 3))


@pytest.mark.parametrize(
    "names, order",
    [
        (["10", "2", "1", "1.5"], ["1", "1.5", "2", "10"]),
        (["cat", "ant", "10", "9"], ["10", "9", "ant", "cat"]),
        (["1_000", "2", "10"], ["10", "1_000", "2"]),  # float() reads 1_000; pandas does not
        (["inf", "2"], ["2", "inf"]),  # not finite: text
    ],
)
def test_a_target_column_and_class_folders_put_the_same_names_in_the_same_order(names, order):
    assert label_order(names) == order
    assert CategoricalColumn.fit("y", np.array(names, dtype=object)).categories == order


def test_one_class_count_check_for_every_kind():
    check_class_count(3, "cross_entropy", "found 3")
    check_class_count(2, "binary_cross_entropy", "found 2")
    with pytest.raises(DataError, match="cross_entropy needs at least 2 classes; found 1"):
        check_class_count(1, "cross_entropy", "found 1")
    with pytest.raises(DataError, match="needs exactly 2 classes; found 3") as info:
        check_class_count(3, "binary_cross_entropy", "found 3", field="data.target")
    assert info.value.field == "data.target"
