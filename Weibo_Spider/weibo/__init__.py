"""weibo: the Scrapy project of weibo-mental-health (spider, parsing, local test site)."""
