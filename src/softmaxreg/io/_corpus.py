"""Text corpora for word vectors: one sentence per line, tokens separated by whitespace."""

from __future__ import annotations

import os

__all__ = ["LineSentences"]


class LineSentences:
    """A text file read as sentences of tokens, again on every iteration (as gensim's ``LineSentence``).

    Each non-empty line is one sentence; its tokens are the line split on
    whitespace (``str.split()``), optionally lower-cased. The file is opened
    anew by every ``iter()``, so the object can be given to
    :meth:`softmaxreg.SkipGram.fit`, which reads the corpus once per epoch
    without holding it in memory.

    Parameters
    ----------
    path : str or os.PathLike
        A UTF-8 text file.
    lowercase : bool, default=False
    max_sentence_length : int or None, default=None
        Split longer lines into pieces of at most this many tokens.

    Examples
    --------
    >>> import tempfile, os
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = os.path.join(d, "c.txt")
    ...     _ = open(p, "w").write("the cat sat\\n\\nthe dog  sat\\n")
    ...     list(LineSentences(p))
    [['the', 'cat', 'sat'], ['the', 'dog', 'sat']]
    """

    def __init__(self, path, *, lowercase=False, max_sentence_length=None):
        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise FileNotFoundError(f"corpus file {self.path!r} does not exist (or is not a file).")
        if max_sentence_length is not None and (not isinstance(max_sentence_length, int)
                                                or isinstance(max_sentence_length, bool)
                                                or max_sentence_length < 1):
            raise ValueError(f"max_sentence_length must be an integer >= 1 or None, got {max_sentence_length!r}.")
        self.lowercase = lowercase
        self.max_sentence_length = max_sentence_length

    def __iter__(self):
        step = self.max_sentence_length
        with open(self.path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                tokens = (line.lower() if self.lowercase else line).split()
                if not tokens:
                    continue
                if step is None:
                    yield tokens
                else:
                    for s in range(0, len(tokens), step):
                        yield tokens[s:s + step]

    def __repr__(self):
        return f"LineSentences({self.path!r})"
