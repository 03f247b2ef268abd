"""Project commands: ``crawl`` replaces Scrapy's so that the exit status tells how the run ended."""
