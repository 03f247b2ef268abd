"""The shared kernel: the contract between the spider, the worker and the analysis.

Schema and migrations (``db``), configuration (``config``), the scales (``rubric``),
pseudonymisation (``privacy``), text hygiene (``sanitize``) and progress lines
(``progress``). Every service imports this package; it imports no service.
"""
