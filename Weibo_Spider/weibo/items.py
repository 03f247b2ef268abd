"""Items the spider yields. Ids arrive as keys (``u:123``, ``c:name``, ``n:nick``) and
leave PseudonymisePipeline as hashes; nicknames never reach the database."""

import scrapy


class TopicItem(scrapy.Item):
    word = scrapy.Field()
    rank = scrapy.Field()
    heat = scrapy.Field()
    category = scrapy.Field()
    seen_at = scrapy.Field()  # aware datetime (crawl time)


class PostItem(scrapy.Item):
    mid = scrapy.Field()
    author_key = scrapy.Field()   # removed by PseudonymisePipeline
    author_hash = scrapy.Field()
    author_raw = scrapy.Field()
    text = scrapy.Field()
    full_text = scrapy.Field()    # False: a search-page excerpt ("全文" link); keep a stored full text
    created_at = scrapy.Field()
    reposts = scrapy.Field()
    comments_count = scrapy.Field()
    likes = scrapy.Field()
    source = scrapy.Field()
    topics = scrapy.Field()       # hot-search words this post was found under
    scraped_at = scrapy.Field()
    url = scrapy.Field()


class CommentItem(scrapy.Item):
    id = scrapy.Field()
    mid = scrapy.Field()
    author_key = scrapy.Field()
    author_hash = scrapy.Field()
    author_raw = scrapy.Field()
    reply_to_nick = scrapy.Field()  # removed by PseudonymisePipeline
    reply_to_hash = scrapy.Field()
    text = scrapy.Field()
    likes = scrapy.Field()
    created_at = scrapy.Field()
    source = scrapy.Field()
    scraped_at = scrapy.Field()
    url = scrapy.Field()
