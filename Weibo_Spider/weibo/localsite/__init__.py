"""A local stand-in for weibo.cn, for tests, benchmarks and the demo (no real Weibo traffic).

``LocalSite(corpus, scenario=...)`` serves pages rendered from a corpus dict
(format in ``corpus.py``); ``python -m weibo.localsite`` runs it on a port.
"""

from weibo.localsite.corpus import (
    TREE_HOLE_MID,
    Corpus,
    expected_counts,
    scale_corpus,
    small_corpus,
    watch_corpus,
)
from weibo.localsite.server import SCENARIOS, LocalSite

__all__ = ["SCENARIOS", "TREE_HOLE_MID", "Corpus", "LocalSite", "expected_counts", "scale_corpus",
           "small_corpus", "watch_corpus"]
