"""Bad input: one clear line on stderr, exit status 2, no traceback (unless --debug)."""

import os
import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest

from softmaxreg.cli import main


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    d = tmp_path_factory.mktemp("err")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=30), "b": rng.normal(size=30),
                          "y": rng.choice(["p", "q"], size=30)})
    frame.to_csv(d / "good.csv", index=False)
    assert main(["train", str(d / "good.csv"), "--target", "y", "-o", str(d / "m.srm"), "-q"]) == 0
    return d


def _write(path, text):
    path.write_text(text)
    return path


CASES = {
    "missing file": (lambda d: ["train", str(d / "nope.csv"), "--target", "y", "-o", str(d / "x.srm")],
                     "no such file"),
    "unknown format": (lambda d: ["train", str(_write(d / "data.xlsx", "a,y\n1,p\n")), "--target", "y",
                                  "-o", str(d / "x.srm")], "cannot tell the format"),
    "unknown target": (lambda d: ["train", str(d / "good.csv"), "--target", "label", "-o", str(d / "x.srm")],
                       "has no column 'label'; choose --target from: a, b, y"),
    "empty file": (lambda d: ["train", str(_write(d / "empty.csv", "")), "--target", "y",
                              "-o", str(d / "x.srm")], "is empty"),
    "header only": (lambda d: ["train", str(_write(d / "head.csv", "a,y\n")), "--target", "y",
                               "-o", str(d / "x.srm")], "no data rows"),
    "single class": (lambda d: ["train", str(_write(d / "one.csv", "a,y\n1,p\n2,p\n3,p\n")), "--target", "y",
                                "-o", str(d / "x.srm")], "holds a single class ('p')"),
    "garbage numbers": (lambda d: ["train", str(_write(d / "junk.csv", "a,y\n1,p\n2,q\nabc,p\n4,q\n5,p\n6,q\n7,p\n")),
                                   "--target", "y", "-o", str(d / "x.srm")],
                        "column 'a' is numeric but 1 value cannot be read as numbers ('abc'"),
    "missing values": (lambda d: ["train", str(_write(d / "holes.csv", "a,b,y\n1,,p\n2,3,q\n,4,p\n")),
                                  "--target", "y", "-o", str(d / "x.srm")],
                       "missing values in 'a' (1 row), 'b' (1 row); fill or drop them, or pass --impute"),
    "not a model": (lambda d: ["evaluate", str(d / "good.csv"), str(d / "good.csv")], "not a ZIP archive"),
    "truncated model": (lambda d: ["evaluate", str(_truncate(d)), str(d / "good.csv")],
                        "cannot load model"),
    "newer model": (lambda d: ["summary", str(_newer(d))], "newer softmaxreg"),
    "unknown labels": (lambda d: ["evaluate", str(d / "m.srm"),
                                  str(_write(d / "other.csv", "a,b,y\n1,2,zz\n3,4,p\n"))],
                       "labels 'zz' were not seen in training"),
    "wrong columns": (lambda d: ["predict", str(d / "m.srm"), str(_write(d / "cols.csv", "a,c\n1,2\n")),
                                 "-o", str(d / "p.csv")], "missing columns 'b'"),
    "continuous labels": (lambda d: ["train", str(_write(d / "reg.csv", "a,y\n1,0.5\n2,1.25\n3,2\n")),
                                     "--target", "y", "-o", str(d / "x.srm")],
                          "holds non-integer numbers (e.g. 0.5); softmax regression needs class labels"),
    "missing folder": (lambda d: ["train", str(d / "good.csv"), "--target", "y", "-o", str(d / "no/m.srm")],
                       "does not exist"),
}


def _truncate(d):
    blob = (d / "m.srm").read_bytes()
    (d / "trunc.srm").write_bytes(blob[: len(blob) - 200])
    return d / "trunc.srm"


def _newer(d):
    import json

    with zipfile.ZipFile(d / "m.srm") as src, zipfile.ZipFile(d / "newer.srm", "w") as dst:
        for name in src.namelist():
            blob = src.read(name)
            if name == "meta.json":
                meta = json.loads(blob)
                meta["format_version"] += 1
                blob = json.dumps(meta)
            dst.writestr(name, blob)
    return d / "newer.srm"


@pytest.mark.parametrize("case", sorted(CASES))
def test_one_line_exit_2(good, capsys, case):
    argv, expected = CASES[case]
    code = main(argv(good))
    out, err = capsys.readouterr()
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("softmaxreg: error: "), err
    assert expected in err
    assert "Traceback" not in err
    assert not (good / "x.srm").exists()


def test_debug_shows_traceback(good, capsys):
    code = main(["--debug", "train", str(good / "nope.csv"), "--target", "y", "-o", str(good / "x.srm")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" in err and err.rstrip().endswith("check the path")


def test_usage_errors_exit_2(good, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", str(good / "good.csv"), "--C", "-1", "-o", "x"])
    assert exc.value.code == 2
    assert "must be positive" in capsys.readouterr().err
    assert main([]) == 2


def test_through_a_real_process(good):
    _write(good / "one.csv", "a,y\n1,p\n2,p\n3,p\n")
    r = subprocess.run([sys.executable, "-m", "softmaxreg", "train", str(good / "one.csv"), "--target", "y",
                        "-o", str(good / "x.srm")], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip().splitlines() == [
        f"softmaxreg: error: '{good / 'one.csv'}': the label column 'y' holds a single class ('p'); "
        "classification needs at least two, check --target"
    ]
