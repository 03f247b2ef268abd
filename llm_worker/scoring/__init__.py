"""The scorers: backends (lexicon, classifier, transformers, OpenAI-compatible), the prompt,
the lexicons and the trained-model classes that the classifier backend loads.

Imported by the worker and by ``training``; imports only the kernel (``weibo_mh``).
"""
