"""Plot scripts, the HTML report and alerts: read-only SQL aggregates over the shared database.

Imports the kernel (``weibo_mh``) only; never the spider or the worker.
"""
