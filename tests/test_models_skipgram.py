"""SkipGram: vocabulary, the exact full-softmax steps against torch autograd, scores, lookups, files, errors."""

import os

import numpy as np
import pytest
import torch
from gensim.models import KeyedVectors
from scipy.special import log_softmax
from sklearn.exceptions import NotFittedError

from softmaxreg import SkipGram, WordNotInVocabularyError
from softmaxreg.io import LineSentences

CORPUS = [
    ["the", "cat", "sat", "on", "the", "mat"],
    ["the", "dog", "sat", "on", "the", "log"],
    ["a", "cat", "and", "a", "dog"],
    ["stocks", "fell", "as", "markets", "fell"],
]


def _pairs(sentences, vocab, window):
    """Every (center, context) pair with the full window, unknown words dropped first."""
    out = []
    for s in sentences:
        ids = [vocab[w] for w in s if w in vocab]
        for i, c in enumerate(ids):
            for j in range(max(0, i - window), min(len(ids), i + window + 1)):
                if j != i:
                    out.append((c, ids[j]))
    return np.array(out)


def test_vocabulary_sorted_by_count_with_counts():
    m = SkipGram(vector_size=4, min_count=2, epochs=1, random_state=0).fit(CORPUS)
    assert m.index_to_key_ == ["the", "cat", "sat", "on", "dog", "a", "fell"]
    assert m.vocabulary_ == {w: i for i, w in enumerate(m.index_to_key_)}
    assert m.word_counts_.tolist() == [4, 2, 2, 2, 2, 2, 2]
    assert m.corpus_word_count_ == sum(map(len, CORPUS))
    assert m.vectors_.shape == m.output_vectors_.shape == (7, 4)
    assert m.vectors_.dtype == np.float32
    assert "cat" in m and "mat" not in m


def test_deterministic_with_random_state():
    kw = dict(vector_size=6, window=3, epochs=3, batch_size=8, random_state=3)
    a, b = SkipGram(**kw).fit(CORPUS), SkipGram(**kw).fit(CORPUS)
    np.testing.assert_array_equal(a.vectors_, b.vectors_)
    np.testing.assert_array_equal(a.output_vectors_, b.output_vectors_)
    c = SkipGram(**{**kw, "random_state": 4}).fit(CORPUS)
    assert not np.array_equal(a.vectors_, c.vectors_)


def test_steps_equal_torch_autograd_of_the_full_softmax():
    """Two full-batch steps (one per epoch) from the documented initialization, against torch."""
    d, lr, window = 3, 0.3, 2
    m = SkipGram(vector_size=d, window=window, epochs=2, batch_size=10_000, alpha=lr, min_alpha=lr, sample=0,
                 optimizer="sgd", shrink_windows=False, dtype="float64", random_state=0).fit(CORPUS)
    n_words = len(m.index_to_key_)
    pairs = _pairs(CORPUS, m.vocabulary_, window)
    rng = np.random.default_rng(0)
    V = torch.tensor((rng.random((n_words, d)) - 0.5) / d, requires_grad=True)
    W = torch.zeros((n_words, d), dtype=torch.float64, requires_grad=True)
    centers, contexts = torch.from_numpy(pairs[:, 0]), torch.from_numpy(pairs[:, 1])
    losses = []
    for _ in range(2):
        loss = torch.nn.functional.cross_entropy(V[centers] @ W.T, contexts, reduction="sum")
        loss.backward()
        losses.append(loss.item() / len(pairs))
        with torch.no_grad():
            V -= lr * V.grad
            W -= lr * W.grad
        V.grad = W.grad = None
    np.testing.assert_allclose(m.vectors_, V.detach().numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(m.output_vectors_, W.detach().numpy(), rtol=1e-10, atol=1e-14)
    # The epoch's objective is the mean cross-entropy before the step: log V at the zero start.
    np.testing.assert_allclose([h["objective"] for h in m.history_], losses, rtol=1e-10)
    np.testing.assert_allclose(losses[0], np.log(n_words), rtol=1e-12)
    assert [h["pairs"] for h in m.history_] == [len(pairs)] * 2


def test_adam_steps_equal_torch_adam_on_the_mean_loss():
    d, lr, window = 3, 0.01, 2
    m = SkipGram(vector_size=d, window=window, epochs=3, batch_size=10_000, alpha=lr, min_alpha=lr, sample=0,
                 optimizer="adam", shrink_windows=False, dtype="float64", random_state=0).fit(CORPUS)
    pairs = _pairs(CORPUS, m.vocabulary_, window)
    rng = np.random.default_rng(0)
    V = torch.tensor((rng.random((len(m.index_to_key_), d)) - 0.5) / d, requires_grad=True)
    W = torch.zeros(V.shape, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([V, W], lr=lr)
    centers, contexts = torch.from_numpy(pairs[:, 0]), torch.from_numpy(pairs[:, 1])
    for _ in range(3):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(V[centers] @ W.T, contexts).backward()
        opt.step()
    np.testing.assert_allclose(m.vectors_, V.detach().numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(m.output_vectors_, W.detach().numpy(), rtol=1e-9, atol=1e-12)


def test_log_likelihood_equals_materialized_full_softmax():
    m = SkipGram(vector_size=5, window=2, epochs=4, batch_size=4, alpha=0.2, random_state=1).fit(CORPUS)
    held_out = [["the", "cat", "unknownword", "sat"], ["dog", "on", "a", "mat"], ["fell"]]
    pairs = _pairs(held_out, m.vocabulary_, m.window)
    logp = log_softmax(m.vectors_.astype(np.float64) @ m.output_vectors_.T.astype(np.float64), axis=1)
    expected = logp[pairs[:, 0], pairs[:, 1]]
    assert m.log_likelihood(held_out) == pytest.approx(expected.mean(), rel=1e-5)
    assert m.log_likelihood(held_out, reduction="sum") == pytest.approx(expected.sum(), rel=1e-5)
    assert m.score(held_out) == m.log_likelihood(held_out)


def test_training_raises_the_likelihood_and_groups_words():
    corpus = [["cat", "purrs", "meows"], ["dog", "barks", "growls"]] * 30
    m = SkipGram(vector_size=10, window=2, epochs=30, batch_size=16, alpha=0.1, sample=0, optimizer="sgd",
                 random_state=0).fit(corpus)
    assert m.log_likelihood(corpus) > -np.log(len(m.index_to_key_)) + 0.5
    assert m.history_[-1]["objective"] < m.history_[0]["objective"]
    assert m.similarity("purrs", "meows") > m.similarity("purrs", "barks")


def test_saved_vectors_read_by_gensim_and_equal(tmp_path):
    m = SkipGram(vector_size=7, epochs=2, random_state=0).fit(CORPUS)
    path = tmp_path / "vectors.txt"
    m.save_word2vec_format(path)
    kv = KeyedVectors.load_word2vec_format(str(path))
    assert kv.index_to_key == m.index_to_key_
    np.testing.assert_array_equal(kv.vectors, m.vectors_)
    assert os.listdir(tmp_path) == ["vectors.txt"]  # no temporary file left behind
    ours, theirs = m.most_similar("cat", topn=3), kv.most_similar("cat", topn=3)
    assert [w for w, _ in ours] == [w for w, _ in theirs]
    assert [s for _, s in ours] == pytest.approx([s for _, s in theirs], rel=1e-5)


def test_most_similar_and_similarity_by_hand():
    m = SkipGram(vector_size=2, epochs=1, random_state=0).fit([["a", "b", "c", "d"]])
    m.vectors_[:] = np.array([[1.0, 0.0], [3.0, 3.0], [0.0, 2.0], [-1.0, 0.5]], dtype=np.float32)
    assert m.similarity("a", "b") == pytest.approx(1 / np.sqrt(2))
    assert m.similarity("a", "d") == pytest.approx(-1 / np.sqrt(1.25))
    top = m.most_similar("a", topn=10)
    assert [w for w, _ in top] == ["b", "c", "d"]
    assert [s for _, s in top] == pytest.approx([1 / np.sqrt(2), 0.0, -1 / np.sqrt(1.25)])
    # positive/negative: mean of unit vectors, as gensim computes it.
    kv = KeyedVectors(2)
    kv.add_vectors(m.index_to_key_, m.vectors_)
    ours = m.most_similar(positive=["b", "c"], negative="a", topn=2)
    theirs = kv.most_similar(positive=["b", "c"], negative=["a"], topn=2)
    assert [w for w, _ in ours] == [w for w, _ in theirs]
    assert [s for _, s in ours] == pytest.approx([s for _, s in theirs], rel=1e-5)
    np.testing.assert_allclose(m.get_vector("c", norm=True), [0.0, 1.0])


def test_line_sentences_fit_like_a_list(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(" ".join(s) for s in CORPUS) + "\n\n", encoding="utf-8")
    corpus = LineSentences(path)
    assert list(corpus) == CORPUS and list(corpus) == CORPUS  # starts over
    kw = dict(vector_size=4, epochs=2, random_state=0)
    np.testing.assert_array_equal(SkipGram(**kw).fit(corpus).vectors_, SkipGram(**kw).fit(CORPUS).vectors_)


def test_callback_sees_every_epoch_and_can_stop():
    seen = []
    m = SkipGram(vector_size=3, epochs=5, random_state=0, callback=lambda info: seen.append(info) or len(seen) == 2)
    m.fit(CORPUS)
    assert m.n_epochs_ == 2 and [i["iteration"] for i in seen] == [1, 2]
    assert {"objective", "elapsed", "words", "words_per_second", "learning_rate"} <= set(seen[0])
    assert seen[1]["words"] == 2 * m.corpus_word_count_ and m.words_per_second_ > 0


def test_learning_rate_decays_to_min_alpha():
    m = SkipGram(vector_size=3, epochs=3, batch_size=2, alpha=0.05, min_alpha=0.01, sample=0, random_state=0)
    rates = [h["learning_rate"] for h in m.fit(CORPUS * 5).history_]
    assert 0.05 > rates[0] > rates[1] > rates[2] >= 0.01
    assert rates[2] == pytest.approx(0.01, abs=0.01)


@pytest.mark.parametrize("corpus, message", [
    ([], "corpus is empty"),
    ([[], []], "corpus is empty"),
])
def test_empty_corpus(corpus, message):
    with pytest.raises(ValueError, match=message):
        SkipGram().fit(corpus)


def test_bad_corpora():
    with pytest.raises(ValueError, match="min_count=9.*'the', occurs 4 times"):
        SkipGram(min_count=9).fit(CORPUS)
    with pytest.raises(TypeError, match="iterator"):
        SkipGram().fit(s for s in CORPUS)
    with pytest.raises(TypeError, match="list of str tokens"):
        SkipGram().fit(["the cat sat", "a dog"])
    with pytest.raises(TypeError, match="single string"):
        SkipGram().fit("the cat sat")
    with pytest.raises(TypeError, match="tokens must be str"):
        SkipGram().fit([["a", 3]])


def test_unknown_word_is_a_key_error_and_a_value_error():
    m = SkipGram(vector_size=3, epochs=1, random_state=0).fit(CORPUS)
    for call in (lambda: m.similarity("cat", "zebra"), lambda: m.most_similar("zebra"),
                 lambda: m.get_vector("zebra")):
        with pytest.raises(WordNotInVocabularyError, match="'zebra' is not in the vocabulary") as info:
            call()
        assert isinstance(info.value, KeyError) and isinstance(info.value, ValueError)
    with pytest.raises(ValueError, match="no .center, context. pair"):
        m.log_likelihood([["zebra", "cat"]])
    with pytest.raises(ValueError, match="topn"):
        m.most_similar("cat", topn=0)


@pytest.mark.parametrize("params, message", [
    ({"vector_size": 0}, "vector_size must be an integer >= 1"),
    ({"window": 2.5}, "window must be an integer"),
    ({"epochs": True}, "epochs must be"),
    ({"alpha": 0.0}, "alpha must be a real number > 0"),
    ({"alpha": 0.01, "min_alpha": 0.1}, "min_alpha .* must not exceed alpha"),
    ({"min_alpha": 0.01}, r"min_alpha \(0.01\) must not exceed alpha \(0.003\)"),
    ({"sample": -1e-3}, "sample must be"),
    ({"alpha": float("inf")}, "alpha must be finite"),
    ({"dtype": "float16"}, "dtype must be one of"),
    ({"optimizer": "adagrad"}, "optimizer must be one of"),
    ({"random_state": -1}, "random_state must be"),
])
def test_bad_parameters(params, message):
    with pytest.raises(ValueError, match=message):
        SkipGram(**params).fit(CORPUS)


def test_divergence_is_an_error_not_nan():
    with pytest.raises(ValueError, match="training diverged.*lower alpha"):
        SkipGram(vector_size=4, window=4, epochs=5, batch_size=10_000, alpha=1e6, min_alpha=1e6,
                 sample=0, optimizer="sgd", random_state=0).fit(CORPUS * 10)


def test_not_fitted_and_unwritable_words(tmp_path):
    for call in (lambda m: m.most_similar("cat"), lambda m: m.similarity("cat", "dog"),
                 lambda m: m.get_vector("cat"), lambda m: m.save_word2vec_format(tmp_path / "u.txt")):
        with pytest.raises(NotFittedError):
            call(SkipGram())
    fitted = SkipGram(vector_size=2, epochs=1, random_state=0).fit(CORPUS)
    with pytest.raises(FileNotFoundError, match="no-such-folder.*does not exist"):
        fitted.save_word2vec_format(tmp_path / "no-such-folder" / "v.txt")
    m = SkipGram(vector_size=2, epochs=1, random_state=0).fit([["new york", "is", "big"]])
    with pytest.raises(ValueError, match="whitespace"):
        m.save_word2vec_format(tmp_path / "v.txt")
    assert not os.listdir(tmp_path)


def test_an_epoch_without_pairs_is_nan_and_warned():
    """Subsampling can leave a tiny corpus no pairs: those epochs report NaN, not a perfect 0."""
    with pytest.warns(UserWarning, match="drew no .center, context. pairs.*lower sample"):
        m = SkipGram(vector_size=2, epochs=5, random_state=0).fit([["a", "b", "c"], ["b", "c", "d"]])
    empty = [h for h in m.history_ if h["pairs"] == 0]
    assert empty and all(np.isnan(h["objective"]) for h in empty)
    assert all(np.isfinite(h["objective"]) for h in m.history_ if h["pairs"])


def test_no_pairs_without_subsampling_names_the_window():
    with pytest.warns(UserWarning, match="no sentence has two words within window=5"):
        SkipGram(vector_size=2, epochs=1, sample=0, min_count=1, random_state=0).fit([["a"], ["b"]])
