"""The HTML report: self-contained, renders in a real headless Chromium with its images, no console errors."""

import os
import re
import shutil
import struct
import subprocess
import zlib

import numpy as np
import pytest

from softmaxreg.io import ModelBundle, Preprocessor, load_builtin
from softmaxreg.models import SoftmaxRegression, TemperatureScaling
from softmaxreg.report import encode_png, render_report, write_report
from softmaxreg.report._png import diverging_rgb
from softmaxreg.report._svg import nice_ticks

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _decode_png(blob):
    """Inflate a PNG written with filter 0 (what encode_png writes) back to pixels."""
    assert blob[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(blob):
        (n,) = struct.unpack(">I", blob[pos:pos + 4])
        kind, data = blob[pos + 4:pos + 8], blob[pos + 8:pos + 8 + n]
        (crc,) = struct.unpack(">I", blob[pos + 8 + n:pos + 12 + n])
        assert crc == zlib.crc32(kind + data) & 0xFFFFFFFF
        chunks[kind] = chunks.get(kind, b"") + data
        pos += 12 + n
    w, h, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    channels = {0: 1, 2: 3}[colour]
    raw = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), dtype=np.uint8).reshape(h, 1 + w * channels)
    assert np.all(raw[:, 0] == 0) and b"IEND" in chunks
    return raw[:, 1:].reshape((h, w) if channels == 1 else (h, w, 3))


@pytest.mark.parametrize("shape", [(3, 5), (28, 28, 3), (1, 1)])
def test_png_round_trip(shape):
    img = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    np.testing.assert_array_equal(_decode_png(encode_png(img)), img)
    with pytest.raises(ValueError, match="uint8"):
        encode_png(img.astype(float))


def test_colour_map_and_ticks():
    rgb = diverging_rgb(np.array([-2.0, -1.0, 0.0, 1.0, 2.0]), limit=1.0)
    assert rgb[0].tolist() == rgb[1].tolist() == [33, 102, 172]  # clipped at the limit
    assert rgb[2].tolist() == [255, 255, 255] and rgb[4].tolist() == [178, 24, 43]
    assert nice_ticks(0, 10, 5) == [0, 2, 4, 6, 8, 10]


@pytest.fixture(scope="module")
def image_bundle():
    data = load_builtin("digits:train")
    est = SoftmaxRegression(C=0.1, max_iter=60).fit(data.X / 16.0, data.y)
    bundle = ModelBundle(est, None, data_info={"name": "digits", "image_shape": [8, 8],
                                               "class_names": [str(k) for k in range(10)]},
                         metadata={"data": "digits:train",
                                   "history": {"iteration": np.arange(1, len(est.history_) + 1),
                                               "objective": np.asarray(est.history_)}})
    test = load_builtin("digits:test")
    test.X = test.X / 16.0
    cal = TemperatureScaling(est).fit(test.X, test.y)
    bundle.calibration = {"method": "temperature", "temperature": cal.temperature_}
    return bundle, test


@pytest.fixture(scope="module")
def tabular_bundle():
    data = load_builtin("wine:train")
    pre = Preprocessor(standardize=True).fit(data.X)
    est = SoftmaxRegression().fit(pre.transform(data.X), data.y)
    return ModelBundle(est, pre, data_info={"name": "wine"}, metadata={"data": "wine:train"}), load_builtin("wine:test")


def test_report_content(image_bundle, tabular_bundle):
    bundle, test = image_bundle
    html = render_report(bundle, test)
    assert html.count("<img ") == 11  # ten weight images and the colour scale
    for heading in ("Training", "Confusion matrix", "Calibration", "Per-class metrics", "Learned weights"):
        assert f"<h2>{heading}</h2>" in html
    assert "before calibration" in html and "after calibration" in html
    # nothing to fetch: no external URLs, stylesheets or scripts
    assert not re.search(r"""(src|href)=["'](https?:|//)""", html)
    assert "<link" not in html and "@import" not in html
    other = bundle.estimator.coef_ * 0.5
    html = render_report(bundle, test, extra_weights={"a second run": other})
    assert html.count("<img ") == 22 and "<h3>a second run</h3>" in html
    html = render_report(*tabular_bundle)
    assert "<h2>Coefficients</h2>" in html and "alcohol" in html and "<img " not in html
    assert "not calibrated" in html


def _chromium(args, tmp_path, timeout=90):
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr",
         "--v=0", "--virtual-time-budget=10000", *args],
        capture_output=True, text=True, timeout=timeout,
    )


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (make system-deps)")
def test_renders_in_headless_chromium(tmp_path, image_bundle, tabular_bundle):
    write_report(*image_bundle, tmp_path / "images.html")
    write_report(*tabular_bundle, tmp_path / "tabular.html")
    for name, n_images in (("images.html", 11), ("tabular.html", 0)):
        r = _chromium(["--dump-dom", (tmp_path / name).as_uri()], tmp_path)
        assert r.returncode == 0, r.stderr[-2000:]
        check = re.search(r'<div id="render-check"[^>]*>', r.stdout)
        assert check, r.stdout[-500:]
        attrs = dict(re.findall(r'data-([a-z]+)="([^"]*)"', check.group(0)))
        assert attrs["status"] == "ok", attrs  # the load handler ran: every image decoded
        assert attrs["images"] == str(n_images) and attrs["broken"] == "0"
        assert int(attrs["svgs"]) >= 3  # curves or none, heatmap, reliability diagrams
        console = [line for line in r.stderr.splitlines() if ":CONSOLE" in line]
        assert console == [], console
    r = _chromium(["--screenshot=" + str(tmp_path / "shot.png"), "--window-size=1100,1400",
                   "--hide-scrollbars", (tmp_path / "images.html").as_uri()], tmp_path)
    assert r.returncode == 0 and os.path.getsize(tmp_path / "shot.png") > 10000


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (make system-deps)")
def test_browser_check_catches_broken_images(tmp_path, image_bundle):
    """The in-page check is not vacuous: a damaged image is reported."""
    html = render_report(*image_bundle).replace("data:image/png;base64,", "data:image/png;base64,AAAA", 1)
    (tmp_path / "broken.html").write_text(html)
    r = _chromium(["--dump-dom", (tmp_path / "broken.html").as_uri()], tmp_path)
    check = re.search(r'<div id="render-check"[^>]*>', r.stdout).group(0)
    assert 'data-status="broken-images"' in check and 'data-broken="1"' in check
