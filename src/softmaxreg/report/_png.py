"""A minimal PNG encoder (8-bit greyscale or RGB), so the report needs no plotting library.

A PNG is the 8-byte signature followed by chunks ``length | type | data | CRC-32``:
``IHDR`` (width, height, bit depth 8, colour type 0 = grey or 2 = RGB),
``IDAT`` (the zlib-compressed scanlines, each prefixed with filter byte 0,
"None") and an empty ``IEND``.
"""

from __future__ import annotations

import base64
import struct
import zlib

import numpy as np

__all__ = ["encode_png", "png_data_uri", "diverging_rgb"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png(image: np.ndarray) -> bytes:
    """Encode a uint8 array of shape (h, w) (grey) or (h, w, 3) (RGB) as PNG bytes.

    Examples
    --------
    >>> png = encode_png(np.array([[0, 255]], dtype=np.uint8))
    >>> png[:8] == _SIGNATURE, png[12:16], struct.unpack(">II", png[16:24])
    (True, b'IHDR', (2, 1))
    """
    img = np.asarray(image)
    if img.dtype != np.uint8:
        raise ValueError(f"PNG pixels must be uint8, got {img.dtype}")
    if img.ndim == 2:
        colour = 0
    elif img.ndim == 3 and img.shape[2] == 3:
        colour = 2
    else:
        raise ValueError(f"expected shape (h, w) or (h, w, 3), got {img.shape}")
    h, w = img.shape[:2]
    if h == 0 or w == 0:
        raise ValueError("cannot encode an empty image")
    rows = np.ascontiguousarray(img).reshape(h, -1)
    raw = np.concatenate([np.zeros((h, 1), dtype=np.uint8), rows], axis=1).tobytes()
    header = struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0)
    return (_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw, 9))
            + _chunk(b"IEND", b""))


def png_data_uri(image: np.ndarray) -> str:
    """``data:image/png;base64,...`` for embedding in HTML."""
    return "data:image/png;base64," + base64.b64encode(encode_png(image)).decode("ascii")


def diverging_rgb(values: np.ndarray, limit: float | None = None) -> np.ndarray:
    """Map values to blue (negative) - white (0) - red (positive), uint8 RGB.

    ``limit`` is the magnitude drawn at full colour (default: the largest |value|).

    >>> diverging_rgb(np.array([[-1.0, 0.0, 1.0]])).tolist()
    [[[33, 102, 172], [255, 255, 255], [178, 24, 43]]]
    """
    v = np.asarray(values, dtype=np.float64)
    lim = float(np.max(np.abs(v))) if limit is None else float(limit)
    t = np.clip(v / lim, -1.0, 1.0) if lim > 0 else np.zeros_like(v)
    neg = np.array([33, 102, 172], dtype=np.float64)   # ColorBrewer RdBu ends
    pos = np.array([178, 24, 43], dtype=np.float64)
    white = np.full(3, 255.0)
    a = np.abs(t)[..., None]
    end = np.where(t[..., None] < 0, neg, pos)
    return np.round(white + a * (end - white)).astype(np.uint8)
