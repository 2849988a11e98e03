"""Class labels of any hashable type: their sorted order and each sample's index into it.

Every layer that meets labels (the metrics, the estimators, the command line)
encodes them here, so a label sorts and compares the same way everywhere.
"""

import numbers

import numpy as np

__all__ = ["encode_labels", "label_codes", "label_index", "object_array", "sorted_labels"]


def object_array(items):
    """A 1-D object array holding ``items`` as they are (tuples stay whole).

    >>> object_array([(0, "a"), (1, "b")]).shape
    (2,)
    """
    items = list(items)
    out = np.empty(len(items), dtype=object)
    for i, v in enumerate(items):
        out[i] = v
    return out


def _label_sort_key(v):
    # Numbers first (they compare with each other), then every other type grouped by name.
    if isinstance(v, numbers.Real):
        return (0, "", v)
    return (1, type(v).__name__, v)


def sorted_labels(*ys, mixed="sort"):
    """Sorted unique labels of one or more label arrays, as a 1-D array.

    Labels of one sortable dtype sort as ``np.unique`` sorts them. Labels that
    do not compare with each other (mixed types) are, with ``mixed="sort"``,
    returned as an object array sorted numbers first, then by type name, then
    by value (by ``repr`` where values of one type do not compare); with
    ``mixed="raise"`` they are a ValueError asking for an explicit order.

    >>> sorted_labels(np.array(["b", 1, "a", 2.5], dtype=object)).tolist()
    [1, 2.5, 'a', 'b']
    >>> sorted_labels(np.array([2, 0]), np.array([1, 2])).tolist()
    [0, 1, 2]
    """
    arrays = [np.asarray(y) if not isinstance(y, np.ndarray) else y for y in ys]
    kinds = {a.dtype.kind for a in arrays}
    if "O" not in kinds and (len(kinds) == 1 or kinds <= set("biuf")):
        return np.unique(np.concatenate(arrays) if len(arrays) > 1 else arrays[0])
    unique = list(dict.fromkeys(v for a in arrays for v in a.tolist()))
    try:
        unique.sort()
    except TypeError:
        if mixed == "raise":
            raise ValueError(
                "the labels cannot be sorted (mixed types?); pass labels=[...] explicitly "
                "to fix their order."
            ) from None
        try:
            unique.sort(key=_label_sort_key)
        except TypeError:
            unique.sort(key=lambda v: (_label_sort_key(v)[:2], repr(v)))
    return object_array(unique)


def label_index(y, labels):
    """Index of each entry of ``y`` in ``labels``, ``-1`` where it is absent.

    ``labels`` need not be sorted.

    >>> label_index(np.array(["b", "c", "a"]), np.array(["a", "b"])).tolist()
    [1, -1, 0]
    """
    if y.dtype != object and labels.dtype != object:
        try:
            order = np.argsort(labels, kind="stable")
            ordered = labels[order]
            pos = np.clip(np.searchsorted(ordered, y), 0, labels.shape[0] - 1)
            found = ordered[pos] == y
            if isinstance(found, np.ndarray) and found.shape == y.shape:
                return np.where(found, order[pos], -1).astype(np.intp)
        except TypeError:  # incomparable dtypes (str labels vs int y): look up one by one
            pass
    table = {v: i for i, v in enumerate(labels.tolist())}
    return np.fromiter((table.get(v, -1) for v in y.tolist()), dtype=np.intp, count=y.shape[0])


def label_codes(y, classes):
    """Index of each label of ``y`` in ``classes``; a label not in ``classes`` is a ValueError.

    >>> label_codes(np.array(["b", "a", "b"]), np.array(["a", "b"])).tolist()
    [1, 0, 1]
    """
    codes = label_index(y, classes)
    missing = np.flatnonzero(codes < 0)
    if missing.size:
        i = int(missing[0])
        v = y[i].item() if isinstance(y[i], np.generic) else y[i]
        raise ValueError(f"y[{i}] = {v!r} is not one of the classes {classes.tolist()}.")
    return codes


def encode_labels(y):
    """``(classes, codes)``: the sorted unique labels and each sample's index into them.

    >>> classes, codes = encode_labels(np.array(["b", "a", "b"]))
    >>> classes.tolist(), codes.tolist()
    (['a', 'b'], [1, 0, 1])
    """
    classes = sorted_labels(y)
    if y.dtype != object:
        return classes, np.searchsorted(classes, y).astype(np.intp)
    return classes, label_codes(y, classes)
