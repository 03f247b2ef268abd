"""The scoring worker service: claim unscored comments, score them, write scores back.

The service itself lives at the top (``__main__``, ``worker``, ``queue``, ``heartbeat``,
``metrics``); the scorers in ``scoring/``; training and evaluation in ``training/``.
It imports the kernel (``weibo_mh``) and never the spider or the analysis.
"""
