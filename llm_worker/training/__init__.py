"""Training and evaluation: datasets, ``train``, ``evaluate``, ``adapt`` and quality metrics.

Offline tools a researcher runs; the worker never imports them. They import ``scoring``
(to build the models and backends they train or measure) and the kernel.
"""
