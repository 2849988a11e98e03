"""Regenerate the built-in data files from scikit-learn (maintainers only).

    python src/softmaxreg/io/data/generate.py

Writes ``iris.csv.gz``, ``wine.csv.gz`` and ``digits.csv.gz`` beside this
script: one header row with the feature names and ``target`` last; the label
column holds class names (iris, wine) or digits. The data are the UCI sets
as shipped with scikit-learn (public domain / CC BY 4.0). The gzip header
carries no time stamp, so reruns give identical bytes. scikit-learn is needed
here only; the package reads the files with pandas.
"""

import gzip
import io
import os


def main() -> None:
    from sklearn import datasets  # maintainer-only dependency

    here = os.path.dirname(os.path.abspath(__file__))
    for name in ("iris", "wine", "digits"):
        bunch = getattr(datasets, f"load_{name}")(as_frame=True)
        frame = bunch.frame.copy()
        if name == "digits":
            frame = frame.astype("int64")
        else:
            frame["target"] = [str(bunch.target_names[t]) for t in bunch.target]
        text = frame.to_csv(index=False, lineterminator="\n", float_format="%.10g")
        with open(os.path.join(here, f"{name}.csv.gz"), "wb") as raw:
            with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=9, filename="") as fh:
                fh.write(text.encode("utf-8"))


if __name__ == "__main__":
    main()
