-- weibo-mental-health schema, MySQL 8 / MariaDB 10.6+ (InnoDB, utf8mb4).
-- GENERATED from weibo_mh/db.py: python -m weibo_mh.db ddl > sql/schema.sql
-- Do not edit by hand; tests/test_schema.py fails when this file drifts.
-- Prefer `python -m weibo_mh.db migrate --db URL`, which also records schema_version.

CREATE TABLE crawl_runs (
	id BIGINT NOT NULL AUTO_INCREMENT,
	started_at DATETIME NOT NULL,
	finished_at DATETIME,
	status VARCHAR(20) NOT NULL DEFAULT 'running',
	host VARCHAR(255) NOT NULL DEFAULT '',
	topics INTEGER NOT NULL DEFAULT '0',
	posts_new INTEGER NOT NULL DEFAULT '0',
	posts_updated INTEGER NOT NULL DEFAULT '0',
	comments_new INTEGER NOT NULL DEFAULT '0',
	comments_updated INTEGER NOT NULL DEFAULT '0',
	pages INTEGER NOT NULL DEFAULT '0',
	dropped INTEGER NOT NULL DEFAULT '0',
	errors INTEGER NOT NULL DEFAULT '0',
	stats TEXT COMMENT 'JSON: dropped items by reason, malformed URLs, …',
	error TEXT,
	PRIMARY KEY (id),
	CONSTRAINT ck_crawl_runs_status CHECK (status IN ('running', 'ok', 'failed', 'login_required', 'rate_limited', 'timed_out'))
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_unicode_ci;

CREATE TABLE pair_rollups (
	scorer_a VARCHAR(128) NOT NULL COMMENT 'scorer_a < scorer_b',
	scorer_b VARCHAR(128) NOT NULL,
	dimension VARCHAR(32) NOT NULL,
	day DATE NOT NULL,
	a SMALLINT NOT NULL COMMENT 'scorer_a''s level',
	b SMALLINT NOT NULL COMMENT 'scorer_b''s level',
	n BIGINT NOT NULL COMMENT 'comments both scored, at these two levels (agreement charts)' DEFAULT '0',
	PRIMARY KEY (scorer_a, scorer_b, dimension, day, a, b)
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_bin;

CREATE TABLE posts (
	mid VARCHAR(32) NOT NULL COMMENT 'Weibo post id',
	author_hash VARCHAR(64) COMMENT 'HMAC-SHA256 of the user id under the secret salt',
	author_raw VARCHAR(32) COMMENT 'only with privacy.keep_raw_ids = true',
	text MEDIUMTEXT NOT NULL,
	created_at DATETIME,
	reposts INTEGER NOT NULL DEFAULT '0',
	comments_count INTEGER NOT NULL DEFAULT '0',
	likes INTEGER NOT NULL DEFAULT '0',
	source VARCHAR(255),
	first_scraped_at DATETIME NOT NULL,
	scraped_at DATETIME NOT NULL,
	PRIMARY KEY (mid)
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_unicode_ci;

CREATE INDEX ix_posts_created ON posts (created_at);

CREATE TABLE rollup_links (
	mid VARCHAR(32) NOT NULL,
	topic_id BIGINT NOT NULL,
	PRIMARY KEY (mid, topic_id)
)ENGINE=InnoDB CHARSET=utf8mb4 COMMENT='the post_topics links the rollups have attributed (weibo_mh.rollups)' COLLATE utf8mb4_unicode_ci;

CREATE TABLE rollup_state (
	name VARCHAR(32) NOT NULL,
	value DATETIME,
	PRIMARY KEY (name)
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_unicode_ci;

CREATE TABLE schema_version (
	version INTEGER NOT NULL,
	applied_at DATETIME NOT NULL,
	description VARCHAR(255) NOT NULL DEFAULT '',
	PRIMARY KEY (version)
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_unicode_ci;

CREATE TABLE score_rollups (
	scorer VARCHAR(128) NOT NULL COMMENT ''''' = comments collected (scored or not)',
	dimension VARCHAR(32) NOT NULL COMMENT ''''' = comments with at least one score of the scorer',
	day DATE NOT NULL COMMENT 'day of COALESCE(created_at, first_scraped_at)',
	topic_id BIGINT NOT NULL COMMENT '0 = all comments, each once',
	n BIGINT NOT NULL DEFAULT '0',
	total BIGINT NOT NULL DEFAULT '0',
	l0 BIGINT NOT NULL DEFAULT '0',
	l1 BIGINT NOT NULL DEFAULT '0',
	l2 BIGINT NOT NULL DEFAULT '0',
	l3 BIGINT NOT NULL DEFAULT '0',
	l4 BIGINT NOT NULL DEFAULT '0',
	l5 BIGINT NOT NULL DEFAULT '0',
	l6 BIGINT NOT NULL DEFAULT '0',
	l7 BIGINT NOT NULL DEFAULT '0',
	l8 BIGINT NOT NULL DEFAULT '0',
	l9 BIGINT NOT NULL DEFAULT '0',
	l10 BIGINT NOT NULL DEFAULT '0',
	PRIMARY KEY (scorer, dimension, day, topic_id)
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_bin;

CREATE TABLE topics (
	id BIGINT NOT NULL AUTO_INCREMENT,
	word VARCHAR(191) NOT NULL,
	first_seen DATETIME NOT NULL,
	last_seen DATETIME NOT NULL,
	PRIMARY KEY (id),
	CONSTRAINT uq_topics_word UNIQUE (word)
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_bin;

CREATE TABLE comments (
	id VARCHAR(32) NOT NULL COMMENT 'Weibo comment id',
	mid VARCHAR(32) NOT NULL,
	author_hash VARCHAR(64),
	author_raw VARCHAR(32) COMMENT 'only with privacy.keep_raw_ids = true',
	reply_to_hash VARCHAR(64) COMMENT 'HMAC of the replied-to user (nickname), if a reply',
	text MEDIUMTEXT NOT NULL,
	likes INTEGER NOT NULL DEFAULT '0',
	created_at DATETIME,
	source VARCHAR(255),
	first_scraped_at DATETIME NOT NULL,
	scraped_at DATETIME NOT NULL,
	score_status VARCHAR(10) NOT NULL DEFAULT 'pending',
	claimed_by VARCHAR(128),
	lease_until DATETIME,
	attempts INTEGER NOT NULL DEFAULT '0',
	last_error TEXT,
	last_output TEXT COMMENT 'raw model output of the last failure, truncated',
	scored_at DATETIME,
	PRIMARY KEY (id),
	CONSTRAINT ck_comments_score_status CHECK (score_status IN ('pending', 'claimed', 'done', 'failed')),
	CONSTRAINT fk_comments_post FOREIGN KEY(mid) REFERENCES posts (mid)
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_unicode_ci;

CREATE INDEX ix_comments_created ON comments (created_at);

CREATE INDEX ix_comments_first_scraped ON comments (first_scraped_at);

CREATE INDEX ix_comments_mid ON comments (mid);

CREATE INDEX ix_comments_queue ON comments (score_status, lease_until);

CREATE TABLE post_topics (
	mid VARCHAR(32) NOT NULL,
	topic_id BIGINT NOT NULL,
	first_seen DATETIME NOT NULL,
	PRIMARY KEY (mid, topic_id),
	CONSTRAINT fk_pt_post FOREIGN KEY(mid) REFERENCES posts (mid),
	CONSTRAINT fk_pt_topic FOREIGN KEY(topic_id) REFERENCES topics (id)
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_unicode_ci;

CREATE INDEX ix_pt_first_seen ON post_topics (first_seen);

CREATE INDEX ix_pt_topic ON post_topics (topic_id);

CREATE TABLE topic_snapshots (
	id BIGINT NOT NULL AUTO_INCREMENT,
	crawl_run_id BIGINT NOT NULL,
	topic_id BIGINT NOT NULL,
	`rank` INTEGER NOT NULL,
	heat BIGINT NOT NULL DEFAULT '0',
	category VARCHAR(64),
	seen_at DATETIME NOT NULL,
	PRIMARY KEY (id),
	CONSTRAINT uq_snap_run_topic UNIQUE (crawl_run_id, topic_id),
	CONSTRAINT fk_snap_run FOREIGN KEY(crawl_run_id) REFERENCES crawl_runs (id),
	CONSTRAINT fk_snap_topic FOREIGN KEY(topic_id) REFERENCES topics (id)
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_unicode_ci;

CREATE INDEX ix_snap_topic_seen ON topic_snapshots (topic_id, seen_at);

CREATE TABLE scores (
	comment_id VARCHAR(32) NOT NULL,
	dimension VARCHAR(32) NOT NULL,
	scorer VARCHAR(128) NOT NULL COMMENT 'backend:model, e.g. lexicon:v1',
	value SMALLINT NOT NULL,
	confidence FLOAT,
	rationale TEXT,
	rubric_version VARCHAR(32) NOT NULL,
	truncated BOOL NOT NULL DEFAULT false,
	scored_at DATETIME NOT NULL,
	PRIMARY KEY (comment_id, dimension, scorer),
	CONSTRAINT ck_scores_value CHECK (value >= 0 AND value <= 10),
	CONSTRAINT fk_scores_comment FOREIGN KEY(comment_id) REFERENCES comments (id)
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_unicode_ci;

CREATE INDEX ix_scores_alerts ON scores (scorer, dimension, value);

CREATE INDEX ix_scores_scorer_dim ON scores (scorer, dimension);

INSERT INTO schema_version (version, applied_at, description) VALUES (2, NOW(), 'daily score rollups, alert index');
