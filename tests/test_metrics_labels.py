import numpy as np
import pytest

from softmaxreg.metrics import encode_labels, label_codes, label_index, object_array, sorted_labels


def test_sorted_labels_matches_np_unique_for_one_dtype():
    rng = np.random.default_rng(0)
    y = rng.integers(-3, 7, size=50)
    np.testing.assert_array_equal(sorted_labels(y), np.unique(y))
    s = np.array(["b", "a", "c", "a"])
    np.testing.assert_array_equal(sorted_labels(s), np.unique(s))


def test_sorted_labels_of_several_arrays_is_their_union():
    assert sorted_labels(np.array([3, 1]), np.array([2.5, 1])).tolist() == [1, 2.5, 3]


def test_mixed_types_sort_numbers_first_or_raise_when_asked():
    y = np.array(["b", 2, "a", (1, 2), 1.5], dtype=object)
    assert sorted_labels(y).tolist() == [1.5, 2, "a", "b", (1, 2)]
    with pytest.raises(ValueError, match="pass labels"):
        sorted_labels(y, mixed="raise")


def test_label_index_marks_absent_labels_and_label_codes_names_them():
    labels = np.array(["c", "a", "b"])  # unsorted on purpose
    y = np.array(["a", "z", "c"])
    assert label_index(y, labels).tolist() == [1, -1, 0]
    with pytest.raises(ValueError, match=r"y\[1\] = 'z' is not one of the classes"):
        label_codes(y, labels)
    # incomparable dtypes never match, they do not raise
    assert label_index(np.array([1, 2]), np.array(["1", "2"])).tolist() == [-1, -1]


def test_encode_labels_round_trips_through_the_classes():
    for y in (np.array([5, 3, 5, 9]), np.array(["x", "y", "x"]), object_array([(0, 1), "a", (0, 1)])):
        classes, codes = encode_labels(y)
        assert codes.dtype == np.intp
        assert [classes[c] for c in codes] == list(y)


def test_object_array_keeps_tuples_whole():
    out = object_array([(0, "a"), (1, "b")])
    assert out.shape == (2,) and out[1] == (1, "b")
