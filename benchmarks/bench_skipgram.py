"""Skip-gram on gensim's Lee corpus: softmaxreg's exact full softmax against gensim's negative sampling.

Both models train on ``lee_background.cor`` (300 news documents, about 60,000
words, shipped inside the gensim wheel under ``gensim/test/test_data``), one
document per sentence, tokenized by ``gensim.utils.simple_preprocess`` for
both, with the same vector size, window, min_count, epochs, frequent-word
subsampling (``sample=1e-3``), learning-rate decay (0.025 to 0.0001) and
threads (gensim's ``workers`` and our BLAS threads). gensim is ``Word2Vec(sg=1,
negative=5, hs=0)``; ours is ``SkipGram``, whose every step normalizes over the
whole vocabulary, trained with its default (Adam, learning rate 0.003 decaying to 0.0001) and once
more with ``optimizer="sgd"``, gensim's update and decay (0.025 to 0.0001).

Reported per model:

* the exact held-out log-likelihood per (center, context) pair on ``lee.cor``
  (the 50 held-out documents; full window, no subsampling, unknown words
  dropped), with the full softmax :math:`\\log p(w_o | w_i) = v'_{w_o} \\cdot
  v_{w_i} - \\operatorname{lse}_w(v'_w \\cdot v_{w_i})` over the vocabulary.
  For gensim, its negative-sampling output layer ``syn1neg`` is taken as the
  output vectors :math:`v'` of that same softmax (rows matched by word) and
  scored by the same code (``SkipGram.log_likelihood``). Negative sampling
  never trains a normalized distribution, so this is the likelihood its output
  layer implies, not the quantity it optimized; the uniform (``-log V``) and
  unigram (context frequency, ignoring the center) baselines frame both.
* Spearman correlations on wordsim353 and SimLex-999 (both shipped with gensim),
  through gensim's ``KeyedVectors.evaluate_word_pairs`` for both models (our
  vectors are wrapped in a KeyedVectors here, in the benchmark only), and the
  share of pairs skipped because a word is outside the vocabulary.
* raw corpus words per second of training (epochs x corpus words / training
  time, vocabulary building excluded for both).

Run it with ``python -m benchmarks.bench_skipgram`` (``--epochs``, ``--seeds``,
``--threads``); ``python -m benchmarks --only skipgram`` imports :func:`run`.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def _data_dir():
    import gensim

    return os.path.join(os.path.dirname(gensim.__file__), "test", "test_data")


def read_lee(name):
    """Token lists of one of gensim's Lee corpus files, one document per sentence."""
    from gensim.utils import simple_preprocess

    with open(os.path.join(_data_dir(), name), encoding="utf-8", errors="replace") as fh:
        return [t for t in (simple_preprocess(line) for line in fh) if t]


def _word_pairs(kv):
    """(wordsim353 Spearman, its OOV %, SimLex-999 Spearman, its OOV %) of a KeyedVectors."""
    import logging
    import warnings

    out = []
    logging.getLogger("gensim").setLevel(logging.ERROR)
    for name in ("wordsim353.tsv", "simlex999.txt"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, spearman, oov = kv.evaluate_word_pairs(os.path.join(_data_dir(), name))
        out += [float(spearman[0]), float(oov)]
    return out


def _scorer(ours, vectors, output_vectors):
    """A copy of ``ours`` holding other vectors, to score them with the same exact softmax."""
    from sklearn.base import clone

    m = clone(ours)
    for attr in ("vocabulary_", "index_to_key_", "word_counts_", "corpus_word_count_"):
        setattr(m, attr, getattr(ours, attr))
    m.vectors_, m.output_vectors_ = vectors, output_vectors
    return m


def run(vector_size=100, window=5, min_count=5, epochs=5, seeds=(0,), threads=1, batch_size=256, verbose=True):
    """Train both models per seed on Lee, score them; return one row per model and seed."""
    from gensim.models import KeyedVectors, Word2Vec
    from threadpoolctl import threadpool_limits

    from softmaxreg import SkipGram

    train, test = read_lee("lee_background.cor"), read_lee("lee.cor")
    n_words = sum(map(len, train))
    rows = []
    for seed in seeds:
        ours = SkipGram(vector_size=vector_size, window=window, min_count=min_count, epochs=epochs,
                        batch_size=batch_size, random_state=seed)
        with threadpool_limits(limits=threads, user_api="blas"):
            ours.fit(train)
        kv = KeyedVectors(vector_size)
        kv.add_vectors(ours.index_to_key_, ours.vectors_)
        V = len(ours.index_to_key_)
        sgd = SkipGram(**{**ours.get_params(), "optimizer": "sgd", "alpha": 0.025})
        with threadpool_limits(limits=threads, user_api="blas"):
            sgd.fit(train)
        kv_sgd = KeyedVectors(vector_size)
        kv_sgd.add_vectors(sgd.index_to_key_, sgd.vectors_)

        gs = Word2Vec(vector_size=vector_size, window=window, min_count=min_count, sg=1, hs=0, negative=5,
                      workers=threads, seed=seed, sample=1e-3, alpha=0.025, min_alpha=0.0001)
        gs.build_vocab(train)
        start = time.perf_counter()
        gs.train(train, total_examples=gs.corpus_count, epochs=epochs)
        gs_seconds = time.perf_counter() - start
        if set(gs.wv.index_to_key) != set(ours.index_to_key_):
            raise RuntimeError("gensim's vocabulary differs from ours; the scores would not be comparable")
        order = [gs.wv.key_to_index[w] for w in ours.index_to_key_]
        gs_scored = _scorer(ours, gs.wv.vectors[order], gs.syn1neg[order])

        # Baselines through the same scorer: zero logits (uniform), and logits log p(w) (unigram).
        ones = np.ones((V, 1), dtype=np.float32)
        uniform = _scorer(ours, ones, np.zeros((V, 1), dtype=np.float32)).log_likelihood(test)
        logp = np.log(ours.word_counts_ / ours.word_counts_.sum()).astype(np.float32)[:, None]
        unigram = _scorer(ours, ones, logp).log_likelihood(test)

        common = {"seed": seed, "vocabulary": V, "epochs": epochs, "corpus_words": n_words,
                  "uniform_ll": uniform, "unigram_ll": unigram, "threads": threads,
                  "vector_size": vector_size, "window": window, "min_count": min_count}
        rows.append({**common, "model": "softmaxreg SkipGram (exact full softmax, Adam, alpha 0.003)",
                     "held_out_ll": ours.log_likelihood(test), "words_per_s": ours.words_per_second_,
                     "train_s": epochs * n_words / ours.words_per_second_,
                     **dict(zip(("ws353", "ws353_oov", "simlex", "simlex_oov"), _word_pairs(kv)))})
        rows.append({**common, "model": "softmaxreg SkipGram, optimizer='sgd', alpha 0.025 (gensim's update)",
                     "held_out_ll": sgd.log_likelihood(test), "words_per_s": sgd.words_per_second_,
                     "train_s": epochs * n_words / sgd.words_per_second_,
                     **dict(zip(("ws353", "ws353_oov", "simlex", "simlex_oov"), _word_pairs(kv_sgd)))})
        rows.append({**common, "model": "gensim Word2Vec (sg=1, negative=5)",
                     "held_out_ll": gs_scored.log_likelihood(test), "words_per_s": epochs * n_words / gs_seconds,
                     "train_s": gs_seconds,
                     **dict(zip(("ws353", "ws353_oov", "simlex", "simlex_oov"), _word_pairs(gs.wv)))})
        if verbose:
            for r in rows[-3:]:
                print(f"seed {seed} {r['model']:<42} LL {r['held_out_ll']:.3f}  ws353 {r['ws353']:.3f}  "
                      f"simlex {r['simlex']:.3f}  {r['words_per_s']:,.0f} words/s", flush=True)
    return rows


def table(rows):
    """The Markdown table ``python -m benchmarks`` prints and writes for this comparison."""
    r0 = rows[0]
    lines = [
        f"Lee background corpus ({r0['corpus_words']:,} words), vocabulary {r0['vocabulary']:,} "
        f"(min_count {r0['min_count']}), vector size {r0['vector_size']}, window {r0['window']}, "
        f"{r0['epochs']} epochs, {r0['threads']} thread(s) each; held-out log-likelihood per pair on lee.cor "
        f"(uniform baseline {r0['uniform_ll']:.3f}, unigram baseline {r0['unigram_ll']:.3f} nats).",
        "",
        "| model | seed | held-out log-lik / pair | perplexity | wordsim353 Spearman (OOV %) "
        "| SimLex-999 Spearman (OOV %) | train s | words / s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['seed']} | {r['held_out_ll']:.3f} | {np.exp(-r['held_out_ll']):,.0f} "
            f"| {r['ws353']:.3f} ({r['ws353_oov']:.0f}) | {r['simlex']:.3f} ({r['simlex_oov']:.0f}) "
            f"| {r['train_s']:.1f} | {r['words_per_s']:,.0f} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--vector-size", type=int, default=100)
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--min-count", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seeds", default="0", help="comma-separated seeds")
    parser.add_argument("--threads", type=int, default=1, help="gensim workers and our BLAS threads")
    args = parser.parse_args(argv)
    rows = run(vector_size=args.vector_size, window=args.window, min_count=args.min_count, epochs=args.epochs,
               seeds=tuple(int(s) for s in args.seeds.split(",")), threads=args.threads,
               batch_size=args.batch_size)
    print(table(rows))


if __name__ == "__main__":
    main()
