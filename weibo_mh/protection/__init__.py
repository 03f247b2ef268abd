"""Data protection you can run: retention (``retention``) and deletion requests (``forget``).

They live in the kernel, beside ``weibo_mh.rollups``, because they only delete and empty rows
of the shared database, every score through ``weibo_mh.rollups`` so the aggregates stay
exact; a timer runs them with nothing but the kernel installed (no pandas, Scrapy or torch).
The de-identified research export reads the database like the report does and so lives
beside it, in ``analysis.export``.
"""
