"""Reader and writer for the IDX format of MNIST and Fashion-MNIST.

An IDX file is a 4-byte magic number ``0x00 0x00 <dtype code> <ndim>``,
then ``ndim`` big-endian uint32 dimension sizes, then the array itself in
C order and big-endian byte order. The files are usually gzip-compressed.

========  ==================
code      element type
========  ==================
``0x08``  unsigned byte
``0x09``  signed byte
``0x0B``  int16
``0x0C``  int32
``0x0D``  float32
``0x0E``  float64
========  ==================
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib

import numpy as np

__all__ = ["read_idx", "write_idx"]

_CODE_TO_DTYPE = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_DTYPE_TO_CODE = {dt.newbyteorder("="): code for code, dt in _CODE_TO_DTYPE.items()}
_GZIP_MAGIC = b"\x1f\x8b"


_GZIP_MAX_RATIO = 1032  # deflate cannot expand data by more than this


def _fail(name: str, what: str) -> ValueError:
    return ValueError(f"{name!r} is not a readable IDX file ({what}); delete it and download it again")


def _read_payload(name: str):
    """(shape, dtype, data bytes) with the header checked before the data is read."""
    with open(name, "rb") as raw:
        gz = raw.read(2) == _GZIP_MAGIC
    size = os.path.getsize(name)
    with (gzip.open if gz else open)(name, "rb") as fh:
        head = fh.read(4)
        if len(head) < 4 or head[0] != 0 or head[1] != 0:
            raise ValueError(f"{name!r} is not an IDX file (bad magic number)")
        code, ndim = head[2], head[3]
        if code not in _CODE_TO_DTYPE:
            raise ValueError(f"{name!r}: unknown IDX element type code 0x{code:02X}")
        dims = fh.read(4 * ndim)
        if ndim == 0 or len(dims) < 4 * ndim:
            raise ValueError(f"{name!r}: truncated IDX header")
        shape = struct.unpack(f">{ndim}I", dims)
        dtype = _CODE_TO_DTYPE[code]
        offset = 4 + 4 * ndim
        expected = math.prod(shape) * dtype.itemsize
        # Refuse a header that claims more than the file can hold before reading (or allocating) it.
        room = (size * _GZIP_MAX_RATIO + 1024) if gz else size - offset
        if expected > room or (not gz and expected != room):
            holds = f"a gzip file of {size} bytes cannot hold that many" if gz else f"the file holds {room}"
            raise ValueError(
                f"{name!r}: header announces shape {shape} ({expected} bytes) but {holds}; "
                "the file is truncated or corrupt, download it again"
            )
        data = fh.read(expected + 1)
    if len(data) != expected:
        raise ValueError(
            f"{name!r}: header announces shape {shape} ({expected} bytes) but "
            f"the file holds {len(data)} bytes; the file is truncated or corrupt, download it again"
        )
    return shape, dtype, data


def read_idx(path: str | os.PathLike, max_rows: int | None = None) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed) into a NumPy array.

    Parameters
    ----------
    path : str or path-like
        The file, e.g. ``train-images-idx3-ubyte.gz``. Compression is
        detected from the content, not the name.
    max_rows : int, optional
        Read only the first ``max_rows`` entries along the first axis.

    Returns
    -------
    ndarray
        Shape as stored, e.g. (n_images, 28, 28) of uint8 for image files and
        (n_images,) for label files, in native byte order.

    Raises
    ------
    ValueError
        If the magic number, the type code or the size does not match, or
        the (gzip) stream is corrupt; the header's size is checked against
        the file's before the data is read, so a damaged header cannot make
        it allocate more than the file could hold.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "tiny-idx2-ubyte")
    >>> write_idx(path, np.array([[1, 2, 3], [4, 5, 6]], dtype=np.uint8))
    >>> open(path, "rb").read()[:12].hex()   # magic 0x0000_08_02, dims 2 and 3
    '000008020000000200000003'
    >>> read_idx(path, max_rows=1)
    array([[1, 2, 3]], dtype=uint8)
    """
    name = os.fspath(path)
    if max_rows is not None and (isinstance(max_rows, bool) or int(max_rows) < 0):
        raise ValueError(f"max_rows must be a non-negative integer, got {max_rows!r}")
    try:
        shape, dtype, data = _read_payload(name)
    except (OSError, EOFError, zlib.error) as exc:  # truncated or corrupt gzip stream
        if isinstance(exc, FileNotFoundError):
            raise
        raise _fail(name, str(exc)) from None
    rows = shape[0] if max_rows is None else min(int(max_rows), shape[0])
    count = rows * math.prod(shape[1:])
    out = np.frombuffer(data, dtype=dtype, count=count)
    return out.reshape((rows,) + tuple(shape[1:])).astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike, array: np.ndarray, compress: bool = False) -> None:
    """Write ``array`` as an IDX file (gzip-compressed when ``compress``).

    Parameters
    ----------
    path : str or path-like
    array : ndarray
        Of dtype uint8, int8, int16, int32, float32 or float64, ndim >= 1.
    compress : bool, default=False
    """
    array = np.asarray(array)
    key = array.dtype.newbyteorder("=")
    if key not in _DTYPE_TO_CODE or array.ndim == 0:
        raise ValueError(f"cannot store dtype {array.dtype} with ndim {array.ndim} in IDX")
    header = bytes([0, 0, _DTYPE_TO_CODE[key], array.ndim])
    header += struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + np.ascontiguousarray(array, dtype=_CODE_TO_DTYPE[_DTYPE_TO_CODE[key]]).tobytes()
    opener = gzip.open if compress else open
    with opener(path, "wb") as fh:
        fh.write(payload)
