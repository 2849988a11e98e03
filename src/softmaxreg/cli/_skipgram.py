"""``softmaxreg skipgram``: word vectors from a text corpus, saved in the word2vec text format.

The corpus has one sentence per line, tokens separated by whitespace; it is
read from disk once per epoch (:class:`softmaxreg.io.LineSentences`), so it
need not fit in memory. The vectors are trained by :class:`softmaxreg.SkipGram`
(exact full softmax over the vocabulary) with a progress bar over the epochs
that shows the raw words per second, and written atomically to ``-o``.
"""

from __future__ import annotations

import os
import time

from ..io import LineSentences
from ..models import SkipGram
from ._progress import TrainingProgress, format_duration

__all__ = ["add_parser", "cmd_skipgram"]



def add_parser(sub, common, positive_int, positive_float) -> None:
    """Register the ``skipgram`` sub-command on ``sub`` (argparse's sub-parsers)."""
    p = sub.add_parser(
        "skipgram", help="train skip-gram word vectors (exact softmax)",
        description="Train skip-gram word vectors with the exact softmax over the whole vocabulary and "
                    "write them in the word2vec text format (what gensim's "
                    "KeyedVectors.load_word2vec_format reads). The corpus has one sentence per line, "
                    "tokens separated by whitespace.",
    )
    p.add_argument("corpus", help="text file, one sentence per line")
    p.add_argument("-o", "--output", required=True, metavar="VECTORS", help="word2vec text file to write")
    p.add_argument("--vector-size", type=positive_int, default=100, metavar="D", help="dimension (default 100)")
    p.add_argument("--window", type=positive_int, default=5, metavar="W", help="context window (default 5)")
    p.add_argument("--min-count", type=positive_int, default=1, metavar="N",
                   help="drop words seen fewer times (default 1)")
    p.add_argument("--epochs", type=positive_int, default=5, metavar="N", help="passes over the corpus (default 5)")
    p.add_argument("--batch-size", type=positive_int, default=256, metavar="N",
                   help="(center, context) pairs per step (default 256)")
    p.add_argument("--optimizer", choices=["adam", "sgd"], default="adam",
                   help="Adam on the batch's mean loss (default), or SGD on its summed loss as gensim")
    p.add_argument("--alpha", type=positive_float, metavar="RATE",
                   help="initial learning rate, decaying linearly to --min-alpha (default 0.025 for sgd, "
                        "0.003 for adam)")
    p.add_argument("--min-alpha", type=float, default=0.0001, metavar="RATE", help="final learning rate")
    p.add_argument("--sample", type=float, default=0.001, metavar="S",
                   help="frequent-word subsampling threshold, 0 for none (default 0.001)")
    p.add_argument("--lowercase", action="store_true", help="lower-case the corpus")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    common(p)
    p.set_defaults(func=cmd_skipgram)


def cmd_skipgram(args) -> int:
    out = args.output
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot write {out!r}: the folder {folder!r} does not exist")
    corpus = LineSentences(args.corpus, lowercase=args.lowercase)
    progress = TrainingProgress(
        total=args.epochs, unit="epoch", label="skipgram",
        enabled=None if not args.quiet else False, verbose=0 if args.quiet else args.verbose,
    )
    model = SkipGram(
        vector_size=args.vector_size, window=args.window, min_count=args.min_count, epochs=args.epochs,
        batch_size=args.batch_size, optimizer=args.optimizer,
        alpha=args.alpha, min_alpha=args.min_alpha, sample=args.sample,
        random_state=args.seed, callback=progress,
    )
    start = time.perf_counter()
    try:
        model.fit(corpus)
    finally:
        progress.close()
    secs = time.perf_counter() - start
    model.set_params(callback=None)
    model.save_word2vec_format(out)
    took = f"{secs:.2f} s" if secs < 60 else format_duration(secs)
    last = model.history_[-1]
    loss = (f"last epoch's loss {last['objective']:.4f} per pair" if last["pairs"] else
            ("the last epoch drew no pairs (a corpus this small needs a lower --sample, 0 for none)"
             if model.sample > 0 else "the last epoch drew no pairs (no sentence has two words in a window)"))
    print(f"trained {len(model.index_to_key_)} words x {model.vector_size} in {took}, {model.n_epochs_} epochs, "
          f"{model.words_per_second_:,.0f} words/s, {loss}", flush=True)
    print(f"saved the vectors to {out}", flush=True)
    return 0
