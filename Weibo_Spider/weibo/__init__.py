"""weibo: the Scrapy project of weibo-mental-health (spider, parsing, local test site).

Imports the kernel (``weibo_mh``) only; never the worker or the analysis, and never torch.
"""
