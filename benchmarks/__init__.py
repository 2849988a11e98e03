"""Benchmarks of softmaxreg against the memory floor and its peers (scikit-learn, PyTorch, SciPy).

``python -m benchmarks`` (what ``make bench`` runs) runs every comparison of
issue 5 in its own process and writes the table to ``benchmarks/results.md``.
Every number is a ratio measured in one run against a floor or a peer timed in
the same process, interleaved, best of several repeats: absolute times on a
shared machine say little, ratios taken side by side say more.
"""
