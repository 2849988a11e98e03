r"""SkipGram: word vectors trained with the exact softmax over the whole vocabulary.

Skip-gram (Mikolov et al. 2013) predicts, from one word of a sentence (the
*center* :math:`w_i`), each word near it (a *context* :math:`w_o`). Every word
has two vectors: an input vector :math:`v_w` (the row of ``vectors_``, what
one calls "the word vector") and an output vector :math:`v'_w` (the row of
``output_vectors_``). The model is softmax regression whose features are the
center's input vector and whose classes are the words of the vocabulary:

.. math::

    p(w_o \mid w_i) = \frac{\exp(v'^{\top}_{w_o} v_{w_i})}
                           {\sum_{w=1}^{V} \exp(v'^{\top}_{w} v_{w_i})}
    = \mathrm{softmax}(W' v_{w_i})_{w_o},

and training maximizes :math:`\sum \log p(w_o \mid w_i)` over the (center,
context) pairs of the corpus, that is, minimizes the cross-entropy
:math:`\operatorname{lse}(W' v_{w_i}) - v'^{\top}_{w_o} v_{w_i}` of each pair.
Its gradients are the softmax layer's "prediction minus truth", ``p - e_o``:

.. math::

    \nabla_{v'_w} = (p_w - [w = w_o])\, v_{w_i}, \qquad
    \nabla_{v_{w_i}} = W'^{\top} (p - e_{w_o}).

The denominator runs over all :math:`V` words, so every pair costs about
:math:`6 V d` floating-point operations (logits, and both gradients) and
touches every output vector; gensim's negative sampling and hierarchical
softmax replace it by :math:`O(k\,d)` or :math:`O(d \log V)` approximations.
Here it is computed exactly, a minibatch of pairs at a time, by
:func:`softmaxreg.functional.linear_cross_entropy_grad`, which never holds
more than a block of rows by a block of words of logits. See docs/skipgram.md.
"""

from __future__ import annotations

import numbers
import os
import tempfile
import time
import warnings

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted


from softmaxreg.functional import linear_cross_entropy, linear_cross_entropy_grad
from softmaxreg.nn import Adam

from ._validation import Interval, Options, RandomStateLike, check_params

__all__ = ["SkipGram", "WordNotInVocabularyError"]

_DEFAULT_ALPHA = {"adam": 0.003, "sgd": 0.025}  # the optimizer's initial learning rate when alpha is None
_MAX_CHUNK_WORDS = 10000  # words read before their pairs are drawn (gensim's MAX_WORDS_IN_BATCH)
_SCORE_ROWS = 4096  # pairs scored per call in log_likelihood


class WordNotInVocabularyError(KeyError, ValueError):
    """A word that is not in the fitted vocabulary.

    It is a :class:`KeyError`, as gensim's ``KeyedVectors`` raises for a
    missing key, and a :class:`ValueError`, as the rest of softmaxreg raises
    for bad input, so either ``except`` clause catches it.

    >>> str(WordNotInVocabularyError("Word 'qq' is not in the vocabulary."))
    "Word 'qq' is not in the vocabulary."
    """

    def __str__(self):  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class SkipGram(BaseEstimator):
    r"""Skip-gram word vectors trained with the exact full softmax over the vocabulary.

    The model, its objective and its gradients are in the module docstring:
    :math:`p(w_o \mid w_i) = \mathrm{softmax}(W' v_{w_i})_{w_o}` over all
    :math:`V` words, trained by minimizing the summed cross-entropy of the
    (center, context) pairs.

    Pairs are drawn as gensim's ``Word2Vec(sg=1)`` draws them: words outside
    the vocabulary are dropped from each sentence, frequent words are dropped
    at random (``sample``), and for each remaining center word the window is
    shrunk at random to ``b`` in ``1..window`` (``shrink_windows``); every word
    at most ``b`` positions away in the same sentence is a context.

    Optimization: minibatches of ``batch_size`` consecutive pairs, the
    learning rate decaying linearly from ``alpha`` to ``min_alpha`` over the
    training words, as gensim does. ``optimizer="adam"`` (the default) uses
    :class:`softmaxreg.nn.Adam` on the batch's mean loss, with ``alpha``
    (0.003) as its step size; ``optimizer="sgd"`` steps on the summed (not
    averaged) loss of the batch, so that ``alpha`` (0.025) is gensim's step
    per pair and gensim's update is reproduced. Adam is the default because
    it gave the better word similarity on the Lee corpus: wordsim353
    Spearman 0.13 to 0.26 over three seeds, against -0.14 to -0.21 for SGD
    (and -0.14 to -0.23 for gensim's own negative sampling), with the same
    held-out likelihood (benchmarks/results.md). The reason is the scale of
    the steps: the input vectors start near zero and each gets a gradient
    only when its word is a center, so on a small corpus SGD's steps leave
    most of them close to their random start, while Adam's per-coordinate
    normalization moves rare and frequent words alike. Its moments make every
    step update all ``V`` input vectors, which costs little next to the
    :math:`6 V d` flops per pair of the softmax.

    Initialization and random stream
    --------------------------------
    One generator, ``numpy.random.default_rng(random_state)``, is used in this
    order: the input vectors, ``(rng.random((V, vector_size)) - 0.5) /
    vector_size`` (gensim's uniform range), then, chunk by chunk of the
    corpus, the subsampling draws (when ``sample > 0``) and the window
    shrinks (when ``shrink_windows``). Output vectors start at zero.

    Parameters
    ----------
    vector_size : int, default=100
        Dimension ``d`` of the word vectors.
    window : int, default=5
        Largest distance between a center and a context word.
    min_count : int, default=1
        Words seen fewer times are dropped from the vocabulary (gensim's
        default is 5; 1 keeps every word, as the command line's default).
    epochs : int, default=5
        Passes over the corpus.
    batch_size : int, default=256
        (center, context) pairs per SGD step. Every step updates all ``V``
        output vectors, so larger batches use the matrix products better but
        take fewer steps per epoch.
    alpha : float or None, default=None
        Initial learning rate: Adam's step size for "adam" (None: 0.003), the
        step per pair for "sgd" (None: 0.025, gensim's ``alpha``).
    min_alpha : float, default=0.0001
        Final learning rate, at the end of the last epoch; must be <= alpha.
    optimizer : {"adam", "sgd"}, default="adam"
        Adam on the batch's mean loss (betas 0.9, 0.999), or plain SGD on its
        summed loss (gensim's update).
    sample : float, default=0.001
        Frequent-word subsampling threshold, gensim's formula: a word making
        a fraction ``f`` of the in-vocabulary words is kept with probability
        ``min(1, (sqrt(f / sample) + 1) * sample / f)``; 0 keeps every word.
    shrink_windows : bool, default=True
        Draw each center's window size uniformly in ``1..window`` (gensim's
        default); False always uses ``window``.
    dtype : {"float32", "float64"}, default="float32"
        Precision of the vectors and of training (gensim uses float32).
    random_state : int, Generator or None, default=None
    callback : callable, default=None
        ``callback(info)`` after every epoch with ``iteration`` (the epoch,
        from 1), ``objective`` (mean cross-entropy of the epoch's pairs,
        each scored just before its step), ``elapsed`` (seconds),
        ``words`` (raw corpus words processed so far), ``words_per_second``
        and ``learning_rate``; returning True stops training.

    Attributes
    ----------
    vectors_ : ndarray of shape (n_words, vector_size)
        Input vectors :math:`v_w`, one row per word (gensim's ``wv.vectors``).
    output_vectors_ : ndarray of shape (n_words, vector_size)
        Output vectors :math:`v'_w`, the softmax layer's weight (gensim's
        ``syn1neg`` plays this role for negative sampling).
    vocabulary_ : dict of str to int
        Word to row index; rows are sorted by decreasing count, ties in order
        of first appearance.
    index_to_key_ : list of str
        The words, in row order.
    word_counts_ : ndarray of shape (n_words,)
        How many times each word occurs in the training corpus.
    corpus_word_count_ : int
        Words (tokens) in the corpus, including those below ``min_count``.
    n_epochs_ : int
        Epochs run (fewer than ``epochs`` only when the callback stopped).
    history_ : list of dict
        The callback's ``info`` of every epoch.
    words_per_second_ : float
        Raw corpus words trained per second, over all epochs.

    Raises
    ------
    ValueError
        Bad parameters (from the constraints table), an empty corpus, no
        word left after ``min_count``, or a diverging run (a non-finite
        loss: the step ``alpha`` times a batch's summed gradient is too large).
    TypeError
        A one-shot iterator as the corpus (it must be iterable once per
        epoch, as gensim requires), or a sentence that is not a list of str.
    WordNotInVocabularyError
        (a KeyError and ValueError) from the lookups, for an unknown word.

    Examples
    --------
    >>> corpus = [["the", "cat", "sat"], ["the", "dog", "sat"]] * 20
    >>> model = SkipGram(vector_size=8, window=2, epochs=3, sample=0, random_state=0).fit(corpus)
    >>> model.vectors_.shape, model.index_to_key_[0], int(model.word_counts_[0])
    ((4, 8), 'the', 40)
    >>> round(model.similarity("cat", "cat"), 6)
    1.0
    """

    _parameter_constraints = {
        "vector_size": Interval(1, None, integer=True),
        "window": Interval(1, None, integer=True),
        "min_count": Interval(1, None, integer=True),
        "epochs": Interval(1, None, integer=True),
        "batch_size": Interval(1, None, integer=True),
        "alpha": Interval(0, None, open_low=True, none_ok=True),
        "min_alpha": Interval(0, None),
        "optimizer": Options("adam", "sgd"),
        "sample": Interval(0, None),
        "shrink_windows": Options(True, False),
        "dtype": Options("float32", "float64"),
        "random_state": RandomStateLike(),
        "callback": Options(None, callable_ok=True),
    }

    def __init__(self, vector_size=100, window=5, min_count=1, epochs=5, batch_size=256, alpha=None,
                 min_alpha=0.0001, optimizer="adam", sample=0.001, shrink_windows=True, dtype="float32", random_state=None,
                 callback=None):
        self.vector_size = vector_size
        self.window = window
        self.min_count = min_count
        self.epochs = epochs
        self.batch_size = batch_size
        self.alpha = alpha
        self.min_alpha = min_alpha
        self.optimizer = optimizer
        self.sample = sample
        self.shrink_windows = shrink_windows
        self.dtype = dtype
        self.random_state = random_state
        self.callback = callback

    # -- fitting ------------------------------------------------------------------------

    def _check_params(self):
        check_params(self, self._parameter_constraints)
        alpha = _DEFAULT_ALPHA[self.optimizer] if self.alpha is None else self.alpha
        for name, value in (("alpha", alpha), ("min_alpha", self.min_alpha), ("sample", self.sample)):
            if not np.isfinite(value):
                raise ValueError(f"{name} must be finite, got {value!r}.")
        if self.min_alpha > alpha:
            raise ValueError(
                f"min_alpha ({self.min_alpha}) must not exceed alpha ({alpha}); the learning rate "
                "decays from alpha to min_alpha."
            )
        return alpha

    def fit(self, sentences, y=None):
        """Build the vocabulary from ``sentences`` and train the vectors.

        Parameters
        ----------
        sentences : iterable of list of str
            The corpus, one token list per sentence. It is iterated once for
            the vocabulary and once per epoch, so it must be re-iterable: a
            list, or an object whose ``__iter__`` starts over (such as
            :class:`softmaxreg.io.LineSentences` over a file); a generator is
            refused.
        y : None
            Ignored (scikit-learn's signature).

        Returns
        -------
        self
        """
        alpha = self._check_params()
        _check_reiterable(sentences)
        counts, n_tokens = _count_words(sentences)
        if n_tokens == 0:
            raise ValueError("the corpus is empty: sentences holds no word; give at least one non-empty "
                             "sentence (a list of str tokens).")
        words = [w for w, c in counts.items() if c >= self.min_count]
        if not words:
            top = max(counts, key=counts.get)
            raise ValueError(
                f"no word occurs at least min_count={self.min_count} times (the most frequent, {top!r}, "
                f"occurs {counts[top]} times); lower min_count or give a larger corpus."
            )
        # Decreasing count; sorted() is stable, so ties keep their order of first appearance.
        words = sorted(words, key=lambda w: -counts[w])
        dtype = np.dtype(self.dtype)
        rng = _generator(self.random_state)
        n_words, d = len(words), self.vector_size
        self.index_to_key_ = words
        self.vocabulary_ = {w: i for i, w in enumerate(words)}
        self.word_counts_ = np.array([counts[w] for w in words], dtype=np.int64)
        self.corpus_word_count_ = n_tokens
        self.vectors_ = ((rng.random((n_words, d)) - 0.5) / d).astype(dtype)
        self.output_vectors_ = np.zeros((n_words, d), dtype=dtype)
        self._train(sentences, rng, alpha)
        return self

    def _train(self, sentences, rng, alpha):
        keep = _keep_probabilities(self.word_counts_, self.sample)
        total = self.epochs * int(self.word_counts_.sum())  # in-vocabulary words: the decay's clock
        self.history_, self.n_epochs_ = [], 0
        start = time.perf_counter()
        done = 0  # in-vocabulary words consumed
        adam, reduction = None, "sum"
        if self.optimizer == "adam":
            grad_v, grad_out = np.zeros_like(self.vectors_), np.zeros_like(self.output_vectors_)
            adam = Adam([(self.vectors_, grad_v), (self.output_vectors_, grad_out)], lr=alpha)
            reduction = "mean"
        for epoch in range(self.epochs):
            loss_sum, n_pairs, lr = 0.0, 0, alpha
            for centers, contexts, clock in self._pair_batches(sentences, keep, rng, done):
                lr = alpha - (alpha - self.min_alpha) * min(1.0, clock / total)
                loss, grad_x, grad_w, _ = linear_cross_entropy_grad(
                    self.vectors_[centers], self.output_vectors_, contexts, reduction=reduction)
                if not np.isfinite(loss):
                    raise ValueError(
                        f"training diverged in epoch {epoch + 1} (the loss of a batch is {float(loss)}); "
                        f"lower alpha ({alpha}) or, for optimizer='sgd', batch_size ({self.batch_size}): "
                        "an SGD step moves the vectors by alpha times the batch's summed gradient.")
                if adam is None:
                    self.output_vectors_ -= np.asarray(lr * grad_w, dtype=self.output_vectors_.dtype)
                    np.add.at(self.vectors_, centers, (-lr * grad_x).astype(self.vectors_.dtype, copy=False))
                else:
                    grad_v[:] = 0
                    np.add.at(grad_v, centers, grad_x)
                    grad_out[:] = grad_w
                    adam.set_lr(lr)
                    adam.step()
                loss_sum += float(loss) * (centers.size if reduction == "mean" else 1)
                n_pairs += centers.size
            done += int(self.word_counts_.sum())
            elapsed = time.perf_counter() - start
            words = (epoch + 1) * self.corpus_word_count_
            info = {
                "iteration": epoch + 1, "objective": loss_sum / n_pairs if n_pairs else float("nan"),
                "elapsed": elapsed,
                "pairs": n_pairs, "words": words, "words_per_second": words / elapsed if elapsed > 0 else np.inf,
                "learning_rate": lr,
            }
            self.history_.append(info)
            self.n_epochs_ = epoch + 1
            if self.callback is not None and self.callback(dict(info)):
                break
        elapsed = time.perf_counter() - start
        words = self.n_epochs_ * self.corpus_word_count_
        self.words_per_second_ = words / elapsed if elapsed > 0 else float("inf")
        empty = [h["iteration"] for h in self.history_ if h["pairs"] == 0]
        if empty:
            why = (f"the corpus is too small for subsampling with sample={self.sample}; lower sample (0 "
                   "turns subsampling off) or use a larger corpus" if self.sample > 0 else
                   f"no sentence has two words within window={self.window}; give longer sentences")
            warnings.warn(f"epoch(s) {empty} drew no (center, context) pairs, so they trained nothing (their "
                          f"objective is NaN): {why}.", UserWarning, stacklevel=3)

    def _pair_batches(self, sentences, keep, rng, clock0):
        """Minibatches ``(centers, contexts, clock)`` of one epoch; ``clock`` counts the words consumed."""
        bs = self.batch_size
        held_c = held_o = np.empty(0, dtype=np.intp)
        held_clock = np.empty(0, dtype=np.int64)
        for ids, sid, consumed in self._chunks(sentences):
            pos_clock = clock0 + consumed - ids.size + np.arange(ids.size)
            if keep is not None:
                kept = rng.random(ids.size) < keep[ids]
                ids, sid, pos_clock = ids[kept], sid[kept], pos_clock[kept]
            ci, oi = _pairs(sid, self.window, rng if self.shrink_windows else None)
            held_c = np.concatenate([held_c, ids[ci]])
            held_o = np.concatenate([held_o, ids[oi]])
            held_clock = np.concatenate([held_clock, pos_clock[ci]])
            n_full = held_c.size // bs * bs
            for s in range(0, n_full, bs):
                yield held_c[s:s + bs], held_o[s:s + bs], int(held_clock[s])
            held_c, held_o, held_clock = held_c[n_full:], held_o[n_full:], held_clock[n_full:]
        if held_c.size:
            yield held_c, held_o, int(held_clock[0])

    def _chunks(self, sentences):
        """Chunks ``(ids, sentence ids, words consumed so far)`` of about _MAX_CHUNK_WORDS words."""
        index = self.vocabulary_
        ids, sid, n_sent, consumed = [], [], 0, 0
        for sentence in sentences:
            row = [index[w] for w in _tokens(sentence) if w in index]
            consumed += len(row)
            ids.extend(row)
            sid.extend([n_sent] * len(row))
            n_sent += 1
            if len(ids) >= _MAX_CHUNK_WORDS:
                yield np.asarray(ids, dtype=np.intp), np.asarray(sid, dtype=np.intp), consumed
                ids, sid = [], []
        if ids:
            yield np.asarray(ids, dtype=np.intp), np.asarray(sid, dtype=np.intp), consumed

    # -- scoring ------------------------------------------------------------------------

    def log_likelihood(self, sentences, *, reduction="mean"):
        r"""Exact log-likelihood of the (center, context) pairs of ``sentences``.

        .. math::

            \ell = \sum_{(i, o)} \log p(w_o \mid w_i)
            = \sum_{(i, o)} \bigl(v'^{\top}_{w_o} v_{w_i} - \operatorname{lse}(W' v_{w_i})\bigr),

        the model's own objective (negated), with the full softmax over the
        vocabulary. The pairs are drawn deterministically: words outside the
        vocabulary are dropped, nothing is subsampled and every window has
        its full size ``window``. Held-out text gives a perplexity,
        ``exp(-log_likelihood)``.

        Parameters
        ----------
        sentences : iterable of list of str
        reduction : {"mean", "sum"}, default="mean"
            Mean log-probability per pair, or the sum.

        Returns
        -------
        float

        Raises
        ------
        ValueError
            When ``sentences`` holds no pair of vocabulary words.

        Examples
        --------
        With (almost) no training the output vectors stay at zero, so each of
        the 3 words is equally likely: :math:`\log(1/3) = -1.0986`.

        >>> m = SkipGram(vector_size=4, window=1, epochs=1, alpha=1e-12, min_alpha=0, sample=0,
        ...                random_state=0)
        >>> m = m.fit([["a", "b", "c"]])
        >>> round(m.log_likelihood([["a", "b"]]), 4)
        -1.0986
        """
        check_is_fitted(self, "vectors_")
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}.")
        total, n_pairs = 0.0, 0
        for ids, sid, _ in self._chunks(sentences):
            ci, oi = _pairs(sid, self.window, None)
            for s in range(0, ci.size, _SCORE_ROWS):
                c, o = ids[ci[s:s + _SCORE_ROWS]], ids[oi[s:s + _SCORE_ROWS]]
                total += float(linear_cross_entropy(self.vectors_[c], self.output_vectors_, o, reduction="sum"))
            n_pairs += ci.size
        if n_pairs == 0:
            raise ValueError("sentences holds no (center, context) pair of vocabulary words to score; "
                             "give sentences with at least two known words.")
        return -total / n_pairs if reduction == "mean" else -total

    def score(self, sentences, y=None):
        """Mean log-likelihood per pair, :meth:`log_likelihood` (higher is better)."""
        return self.log_likelihood(sentences)

    # -- lookups ------------------------------------------------------------------------

    def _index(self, word):
        check_is_fitted(self, "vectors_")
        try:
            return self.vocabulary_[word]
        except (KeyError, TypeError):
            raise WordNotInVocabularyError(
                f"Word {word!r} is not in the vocabulary ({len(self.vocabulary_)} words seen at least "
                f"min_count={self.min_count} times in the training corpus)."
            ) from None

    def get_vector(self, word, norm=False):
        """The input vector of ``word``, ndarray of shape (vector_size,) (unit length with ``norm``)."""
        i = self._index(word)  # first: an unfitted model is a NotFittedError
        v = self.vectors_[i]
        return v / np.linalg.norm(v) if norm else v.copy()

    def __contains__(self, word):
        return word in getattr(self, "vocabulary_", {})

    def similarity(self, word1, word2):
        r"""Cosine similarity of two words' input vectors, :math:`u^\top v / (\lVert u\rVert \lVert v\rVert)`.

        Returns
        -------
        float

        Examples
        --------
        >>> m = SkipGram(vector_size=2, epochs=1, sample=0, random_state=0).fit([["a", "b"]])
        >>> m.vectors_[:] = [[1.0, 0.0], [1.0, 1.0]]
        >>> round(m.similarity("a", "b"), 6)   # cos 45 degrees
        0.707107
        """
        i, j = self._index(word1), self._index(word2)
        u, v = self.vectors_[i], self.vectors_[j]
        return float(np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v)))

    def most_similar(self, positive=None, negative=None, topn=10):
        r"""The ``topn`` words closest in cosine to a word, or to a sum of words (gensim's rule).

        The query is the mean of the unit input vectors of ``positive`` minus
        those of ``negative`` (so ``positive=["king", "woman"],
        negative=["man"]`` asks an analogy); the query words themselves are
        left out of the answer.

        Parameters
        ----------
        positive : str or list of str
        negative : str or list of str, optional
        topn : int, default=10

        Returns
        -------
        list of (str, float)
            Words and their cosine similarity to the query, most similar first.

        Examples
        --------
        >>> m = SkipGram(vector_size=2, epochs=1, sample=0, random_state=0).fit([["a", "b", "c"]])
        >>> m.vectors_[:] = [[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
        >>> [(w, round(s, 4)) for w, s in m.most_similar("a", topn=2)]
        [('b', 0.7071), ('c', 0.0)]
        """
        check_is_fitted(self, "vectors_")
        positive = [positive] if isinstance(positive, str) else list(positive or [])
        negative = [negative] if isinstance(negative, str) else list(negative or [])
        if not positive and not negative:
            raise ValueError("most_similar needs at least one word in positive or negative.")
        if not isinstance(topn, numbers.Integral) or isinstance(topn, bool) or topn < 1:
            raise ValueError(f"topn must be an integer >= 1, got {topn!r}.")
        rows = [self._index(w) for w in positive + negative]
        signs = np.array([1.0] * len(positive) + [-1.0] * len(negative))
        unit = _unit_rows(self.vectors_.astype(np.float64))
        query = (signs[:, None] * unit[rows]).mean(axis=0)
        norm = np.linalg.norm(query)
        if norm == 0:
            raise ValueError("the query vector is zero (the positive and negative words cancel out).")
        sims = unit @ (query / norm)
        sims[rows] = -np.inf
        k = min(topn, sims.size - len(set(rows)))
        if k <= 0:
            return []
        top = np.argpartition(-sims, k - 1)[:k]
        top = top[np.lexsort((top, -sims[top]))]
        return [(self.index_to_key_[i], float(sims[i])) for i in top]

    # -- saving -------------------------------------------------------------------------

    def save_word2vec_format(self, path):
        """Write the input vectors in the word2vec text format, atomically.

        The first line is ``n_words vector_size``, then one line per word:
        the word and its coordinates, separated by spaces, in row order. This
        is what gensim's ``KeyedVectors.load_word2vec_format(path)`` and the
        original word2vec tools read; the coordinates are written with enough
        digits to read back the float32 values exactly. The file is written
        to a temporary name beside ``path`` and renamed, so an interrupted
        call leaves no half-written file.

        Parameters
        ----------
        path : str or os.PathLike

        Raises
        ------
        ValueError
            When a word holds whitespace or is empty (the format could not be read back).
        """
        check_is_fitted(self, "vectors_")
        for w in self.index_to_key_:
            if not w or any(ch.isspace() for ch in w):
                raise ValueError(f"word {w!r} is empty or holds whitespace; the word2vec text format "
                                 "separates fields by spaces, so such a word cannot be written.")
        path = os.fspath(path)
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"cannot write {path!r}: the folder {folder!r} does not exist")
        vectors = self.vectors_.astype(np.float32)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".txt", dir=os.path.dirname(os.path.abspath(path)))
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
                fh.write(f"{vectors.shape[0]} {vectors.shape[1]}\n")
                for w, row in zip(self.index_to_key_, vectors):
                    fh.write(w + " " + " ".join(f"{x:.9g}" for x in row.tolist()) + "\n")
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


# -- corpus helpers -------------------------------------------------------------------------


def _generator(random_state):
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(2**31 - 1))
    return np.random.default_rng(random_state)


def _check_reiterable(sentences):
    if isinstance(sentences, (str, bytes)):
        raise TypeError("sentences must be an iterable of token lists, got a single string; "
                        "split it into sentences of tokens, e.g. [line.split() for line in text.splitlines()].")
    try:
        it = iter(sentences)
    except TypeError:
        raise TypeError(f"sentences must be an iterable of token lists, got {type(sentences).__name__}.") from None
    if it is sentences:
        raise TypeError("sentences is an iterator (a generator, a file object...), which can be read only "
                        "once, but training reads it once per epoch; pass a list, or an object whose "
                        "__iter__ starts over, such as softmaxreg.io.LineSentences(path).")


def _tokens(sentence):
    if isinstance(sentence, str):
        raise TypeError(f"each sentence must be a list of str tokens, got the string {sentence[:40]!r}; "
                        "split it first (e.g. line.split()).")
    try:
        tokens = list(sentence)
    except TypeError:
        raise TypeError(f"each sentence must be a list of str tokens, got {type(sentence).__name__}.") from None
    for t in tokens:
        if not isinstance(t, str):
            raise TypeError(f"tokens must be str, got {type(t).__name__} ({t!r}) in a sentence.")
    return tokens


def _count_words(sentences):
    """``({word: count} in order of first appearance, number of tokens)``."""
    counts = {}
    n = 0
    for sentence in sentences:
        for w in _tokens(sentence):
            counts[w] = counts.get(w, 0) + 1
            n += 1
    return counts, n


def _keep_probabilities(counts, sample):
    """gensim's probability of keeping each occurrence of a word; None when nothing is subsampled."""
    if sample == 0:
        return None
    threshold = sample * counts.sum()
    p = (np.sqrt(counts / threshold) + 1.0) * threshold / counts
    return np.minimum(p, 1.0)


def _pairs(sid, window, rng):
    """Positions ``(centers, contexts)`` of the skip-gram pairs of a chunk, in gensim's order.

    ``sid`` gives the sentence of every position; pairs never cross
    sentences. With ``rng``, each center's window is drawn in ``1..window``.
    Pairs come sorted by center, then context position.
    """
    n = sid.size
    reach = np.full(n, window) if rng is None else window - rng.integers(0, window, n)
    cs, os_ = [], []
    for off in range(1, min(window, n - 1) + 1):
        same = sid[off:] == sid[:-off]
        left = np.arange(n - off)  # pair (left, left + off) and its mirror
        fwd = same & (reach[:-off] >= off)
        bwd = same & (reach[off:] >= off)
        cs += [left[fwd], left[bwd] + off]
        os_ += [left[fwd] + off, left[bwd]]
    if not cs:
        return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp)
    c, o = np.concatenate(cs), np.concatenate(os_)
    order = np.lexsort((o, c))
    return c[order], o[order]


def _unit_rows(v):
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.where(norms > 0, norms, 1.0)
