"""Reading ``.npy`` members of ZIP archives (model files, ``.npz``) from files nobody vouches for.

A member's header says how many bytes it holds and its ``.npy`` header what
array it is; both are checked against each other and against what the
compressed bytes can hold *before* anything of that size is allocated, so a
small file that claims a huge array is refused at once.
"""

from __future__ import annotations

import io
import math
import zipfile
import zlib

import numpy as np

__all__ = ["ArchiveError", "check_member_size", "read_member", "read_npy_member", "ZIP_ERRORS"]

#: Deflate cannot expand data by more than about 1032:1 (a 258-byte match coded in 2 bits).
_DEFLATE_MAX_RATIO = 1032
_MAX_NPY_HEADER = 10000  # numpy's own default limit for a header

#: What the zipfile, zlib and numpy readers raise on damaged input (besides ValueError);
#: zlib.error is not an OSError, and a flipped flag bit can ask for encryption (RuntimeError).
ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, NotImplementedError,
              RuntimeError, OverflowError, MemoryError, KeyError, IndexError, UnicodeDecodeError,
              zlib.error)


class ArchiveError(ValueError):
    """A member of an archive is not what it claims to be (the message says how)."""


def check_member_size(info: zipfile.ZipInfo, limit: int | None = None) -> None:
    """Refuse a member whose stated size is more than its compressed bytes can hold (or than ``limit``)."""
    if info.flag_bits & 0x1:
        raise ArchiveError(f"member {info.filename!r} is encrypted")
    if info.compress_type == zipfile.ZIP_STORED:
        if info.file_size != info.compress_size:
            raise ArchiveError(f"member {info.filename!r} is stored uncompressed but its sizes differ "
                               f"({info.file_size} and {info.compress_size} bytes)")
    elif info.compress_type == zipfile.ZIP_DEFLATED:
        if info.file_size > info.compress_size * _DEFLATE_MAX_RATIO + 1024:
            raise ArchiveError(
                f"member {info.filename!r} claims {info.file_size:,} bytes, more than its "
                f"{info.compress_size:,} compressed bytes can hold"
            )
    else:
        raise ArchiveError(f"member {info.filename!r} uses ZIP compression method {info.compress_type}; "
                           "only stored and deflated members are read")
    if limit is not None and info.file_size > limit:
        raise ArchiveError(f"member {info.filename!r} is implausibly large ({info.file_size:,} bytes)")


def read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int | None = None) -> bytes:
    """The member's bytes, after :func:`check_member_size` (ZIP's CRC is checked as it is read)."""
    check_member_size(info, limit)
    with zf.open(info) as fh:
        blob = fh.read(info.file_size + 1)
    if len(blob) != info.file_size:
        raise ArchiveError(f"member {info.filename!r} holds {len(blob)} bytes, not the {info.file_size} "
                           "its header states")
    return blob


def read_npy_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, expect=None) -> tuple[np.ndarray, bytes]:
    """Load a ``.npy`` member without pickle, checking its header before reading its data.

    Parameters
    ----------
    zf : zipfile.ZipFile
    info : zipfile.ZipInfo
    expect : callable, optional
        Called with ``(shape, dtype, blob)`` once the header is known to be
        consistent and the bytes are read, before the array is built (the
        model file compares them with meta.json and the checksum).

    Returns
    -------
    array : ndarray
    blob : bytes
        The member's bytes.
    """
    check_member_size(info)
    name = info.filename
    with zf.open(info) as fh:
        try:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh, max_header_size=_MAX_NPY_HEADER)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh, max_header_size=_MAX_NPY_HEADER)
            else:
                raise ArchiveError(f"member {name!r} is .npy format {version}; versions 1.0 and 2.0 are read")
        except ArchiveError:
            raise
        except (ValueError, TypeError, SyntaxError) as exc:
            raise ArchiveError(f"member {name!r} is not a readable .npy array ({exc})") from None
        header = fh.tell()
    if dtype.hasobject:
        raise ArchiveError(f"member {name!r} holds Python objects, which need pickle to load; refused")
    if not all(isinstance(s, int) and s >= 0 for s in shape):
        raise ArchiveError(f"member {name!r} has an invalid shape {shape!r}")
    nbytes = math.prod(shape) * dtype.itemsize
    if info.file_size != header + nbytes:
        raise ArchiveError(
            f"member {name!r} claims an array of shape {shape} and dtype {dtype} ({nbytes:,} bytes) "
            f"but holds {info.file_size - header:,} bytes of data"
        )
    blob = read_member(zf, info)
    if expect is not None:
        expect(shape, dtype, blob)
    try:
        arr = np.load(io.BytesIO(blob), allow_pickle=False)
    except ValueError as exc:
        raise ArchiveError(f"member {name!r} is not a readable .npy array ({exc})") from None
    return arr, blob
