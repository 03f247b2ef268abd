"""Items the spider yields. Ids arrive as keys (``u:123``, ``c:name``, ``n:nick``) and
leave PseudonymisePipeline as hashes; nicknames never reach the database."""

import scrapy


class TopicItem(scrapy.Item):
    word = scrapy.Field()
    rank = scrapy.Field()
    heat = scrapy.Field()
    category = scrapy.Field()     # only when the list gives one
    label = scrapy.Field()        # the badge (label_name: 热, 新, 沸, 爆 …)
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
    ip_location = scrapy.Field()
    is_retweet = scrapy.Field()   # text and counts are the retweeter's own
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
    ip_location = scrapy.Field()
    is_hot = scrapy.Field()
    root_id = scrapy.Field()      # weibo.com source: the thread's first-level comment
    reply_to_id = scrapy.Field()  # weibo.com source: the comment answered
    image_only = scrapy.Field()   # a picture and no words: dropped as comment_image_only
    scraped_at = scrapy.Field()
    url = scrapy.Field()
