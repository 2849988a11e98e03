"""``softmaxreg skipgram``: a corpus file in, word2vec text vectors out, errors as one line and status 2."""

import io

import numpy as np
import pytest
from gensim.models import KeyedVectors

from softmaxreg import SkipGram
from softmaxreg.cli import main
from softmaxreg.cli._progress import TrainingProgress

TEXT = "the cat sat on the mat\nthe dog sat on the log\n\na cat and a dog\n"


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def test_writes_vectors_gensim_reads(corpus, tmp_path, capsys):
    out = tmp_path / "vectors.txt"
    status = main(["skipgram", str(corpus), "--vector-size", "6", "--window", "2", "--epochs", "3",
                   "--seed", "4", "-q", "-o", str(out)])
    assert status == 0
    printed = capsys.readouterr().out
    assert "words/s" in printed and f"saved the vectors to {out}" in printed
    kv = KeyedVectors.load_word2vec_format(str(out))
    sentences = [line.split() for line in TEXT.splitlines() if line.strip()]
    model = SkipGram(vector_size=6, window=2, epochs=3, random_state=4).fit(sentences)
    assert kv.index_to_key == model.index_to_key_
    np.testing.assert_array_equal(kv.vectors, model.vectors_)


def test_min_count_and_lowercase(tmp_path, capsys):
    path = tmp_path / "c.txt"
    path.write_text("The cat\nthe dog\nTHE cat\n", encoding="utf-8")
    out = tmp_path / "v.txt"
    assert main(["skipgram", str(path), "--min-count", "2", "--lowercase", "--epochs", "1", "-q",
                 "--vector-size", "3", "-o", str(out)]) == 0
    assert KeyedVectors.load_word2vec_format(str(out)).index_to_key == ["the", "cat"]


def test_sgd_option(corpus, tmp_path):
    out = tmp_path / "v.txt"
    assert main(["skipgram", str(corpus), "--optimizer", "sgd", "--epochs", "2", "--vector-size", "3",
                 "--seed", "1", "-q", "-o", str(out)]) == 0
    sentences = [line.split() for line in TEXT.splitlines() if line.strip()]
    model = SkipGram(vector_size=3, epochs=2, optimizer="sgd", alpha=0.025, random_state=1).fit(sentences)
    np.testing.assert_array_equal(KeyedVectors.load_word2vec_format(str(out)).vectors, model.vectors_)


def test_verbose_prints_an_epoch_line_with_words_per_second(corpus, tmp_path, capsys):
    assert main(["skipgram", str(corpus), "--epochs", "2", "--vector-size", "3", "-v",
                 "-o", str(tmp_path / "v.txt")]) == 0
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("skipgram")]
    assert len(lines) == 2 and all("words/s" in ln and "loss" in ln for ln in lines)
    assert lines[1].split()[1] == "2/2"


def test_progress_bar_shows_words_per_second():
    stream = io.StringIO()
    bar = TrainingProgress(total=4, unit="epoch", label="skipgram", stream=stream, enabled=True)
    bar({"iteration": 1, "objective": 6.5, "elapsed": 2.0, "words_per_second": 12345.6})
    bar.close()
    assert "1/4 epoch" in stream.getvalue() and "12,346 words/s" in stream.getvalue()


@pytest.mark.parametrize("make, args, message", [
    (lambda d: d / "missing.txt", [], "does not exist"),
    (lambda d: (d / "empty.txt").write_text("\n\n") and d / "empty.txt", [], "corpus is empty"),
    (lambda d: (d / "c.txt").write_text("a b\n") and d / "c.txt", ["--min-count", "5"], "min_count=5"),
    (lambda d: (d / "c.txt").write_text("a b\n") and d / "c.txt", ["--min-alpha", "1"], "min_alpha"),
])
def test_bad_input_is_one_line_and_status_2(tmp_path, capsys, make, args, message):
    path = make(tmp_path)
    out = tmp_path / "v.txt"
    assert main(["skipgram", str(path), "-q", "-o", str(out), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("softmaxreg: error:") and message in err[0]
    assert not out.exists()


def test_missing_output_folder(corpus, tmp_path, capsys):
    assert main(["skipgram", str(corpus), "-q", "-o", str(tmp_path / "nope" / "v.txt")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_bad_option_value_is_a_usage_error(corpus, tmp_path):
    with pytest.raises(SystemExit) as info:
        main(["skipgram", str(corpus), "--vector-size", "0", "-o", str(tmp_path / "v.txt")])
    assert info.value.code == 2
