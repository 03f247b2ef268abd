-- weibo-mental-health schema, MySQL 8 / MariaDB 10.6+ (InnoDB, utf8mb4).
-- GENERATED from weibo_mh/db.py: python -m weibo_mh.db ddl > sql/schema.sql
-- Do not edit by hand; tests/test_schema.py fails when this file drifts.
-- Prefer `python -m weibo_mh.db migrate --db URL`, which also records schema_version.

CREATE TABLE audit_log (
	id BIGINT NOT NULL AUTO_INCREMENT,
	at DATETIME NOT NULL,
	actor VARCHAR(64) NOT NULL COMMENT 'console user, or ''-'' before login',
	action VARCHAR(32) NOT NULL,
	target VARCHAR(191) NOT NULL DEFAULT '',
	detail TEXT,
	ip VARCHAR(64) NOT NULL DEFAULT '',
	hits INTEGER NOT NULL COMMENT 'requests this row stands for (refused anonymous requests: per address and minute)' DEFAULT '1',
	bucket VARCHAR(191) COMMENT 'action|address|minute of a counted row; NULL otherwise',
	PRIMARY KEY (id)
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_unicode_ci;

CREATE INDEX ix_audit_action ON audit_log (action);

CREATE INDEX ix_audit_actor ON audit_log (actor, at);

CREATE INDEX ix_audit_at ON audit_log (at);

CREATE INDEX ix_audit_ip ON audit_log (ip, at);

CREATE INDEX ix_audit_target ON audit_log (target, at);

CREATE UNIQUE INDEX uq_audit_bucket ON audit_log (bucket);

CREATE TABLE console_users (
	id BIGINT NOT NULL AUTO_INCREMENT,
	username VARCHAR(64) NOT NULL,
	`role` VARCHAR(16) NOT NULL,
	password_hash VARCHAR(255) NOT NULL COMMENT 'argon2id',
	disabled BOOL NOT NULL DEFAULT false,
	created_at DATETIME NOT NULL,
	last_login_at DATETIME,
	PRIMARY KEY (id),
	CONSTRAINT uq_console_users_username UNIQUE (username),
	CONSTRAINT ck_console_users_role CHECK (role IN ('annotator', 'responder', 'admin'))
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_unicode_ci;

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
	kind VARCHAR(10) NOT NULL COMMENT 'hot: the hot-topic crawl; watch: a watch round (migration 8)' DEFAULT 'hot',
	PRIMARY KEY (id),
	CONSTRAINT ck_crawl_runs_status CHECK (status IN ('running', 'ok', 'failed', 'login_required', 'rate_limited', 'timed_out', 'bad_cookie'))
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_unicode_ci;

CREATE INDEX ix_crawl_runs_kind ON crawl_runs (kind, id);

CREATE TABLE forgotten_authors (
	hash VARCHAR(64) NOT NULL COMMENT 'author_hash (HMAC of the user id), or the reply_to_hash of a nickname',
	kind VARCHAR(16) NOT NULL DEFAULT 'author',
	forgotten_at DATETIME NOT NULL,
	PRIMARY KEY (hash),
	CONSTRAINT ck_forgotten_kind CHECK (kind IN ('author', 'nickname'))
)ENGINE=InnoDB CHARSET=utf8mb4 COMMENT='never the raw id: only the salted hash (weibo_mh.protection.forget)' COLLATE utf8mb4_unicode_ci;

CREATE TABLE login_attempts (
	username VARCHAR(64) NOT NULL,
	ip VARCHAR(64) NOT NULL,
	failures INTEGER NOT NULL COMMENT 'attempts since the last success (or since the window passed)' DEFAULT '0',
	last_at DATETIME(6) NOT NULL COMMENT 'with microseconds: the login delay starts at 1 s',
	PRIMARY KEY (username, ip)
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_unicode_ci;

CREATE INDEX ix_login_attempts_last ON login_attempts (last_at);

CREATE TABLE notify_channels (
	channel VARCHAR(16) NOT NULL,
	lease_owner VARCHAR(128),
	lease_until DATETIME,
	failures INTEGER NOT NULL COMMENT 'failed sends in a row; the back-off grows with it' DEFAULT '0',
	retry_at DATETIME COMMENT 'after a failure: no send before this',
	last_error VARCHAR(500),
	PRIMARY KEY (channel)
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
	ip_location VARCHAR(64) COMMENT 'IP属地 as Weibo shows it (a province or country)',
	is_retweet BOOL NOT NULL COMMENT 'text and counts are the retweeter''s own' DEFAULT false,
	PRIMARY KEY (mid)
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_unicode_ci;

CREATE INDEX ix_posts_created ON posts (created_at);

CREATE TABLE region_rollups (
	scorer VARCHAR(128) NOT NULL,
	dimension VARCHAR(32) NOT NULL,
	day DATE NOT NULL COMMENT 'day of COALESCE(created_at, first_scraped_at)',
	location VARCHAR(64) NOT NULL COMMENT 'comments.ip_location as stored; '''' = none shown',
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
	PRIMARY KEY (scorer, dimension, day, location)
)ENGINE=InnoDB CHARSET=utf8mb4 COMMENT='scores per IP location and day (migration 6; analysis.regions reads them)' COLLATE utf8mb4_unicode_ci;

CREATE TABLE risk_scores (
	scorer VARCHAR(128) NOT NULL,
	value SMALLINT NOT NULL,
	comment_time DATETIME NOT NULL COMMENT 'COALESCE(created_at, first_scraped_at) of the comment',
	comment_id VARCHAR(32) NOT NULL,
	PRIMARY KEY (scorer, value, comment_time, comment_id)
)ENGINE=InnoDB CHARSET=utf8mb4 COMMENT='suicide-risk scores at level >= 4 in alert order (highest, newest first), so that an alert list reads its rows instead of joining every high score to its comment (migration 7; weibo_mh.rollups keeps it)' COLLATE utf8mb4_unicode_ci;

CREATE INDEX ix_risk_comment ON risk_scores (comment_id);

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

CREATE TABLE watched_posts (
	mid VARCHAR(32) NOT NULL COMMENT 'Weibo post id',
	bid VARCHAR(32) COMMENT 'the post''s base-62 id, as weibo.cn and weibo.com URLs show it',
	label VARCHAR(64) NOT NULL COMMENT 'the watch entry''s label ([watch])',
	origin VARCHAR(191) NOT NULL COMMENT 'post: a [watch] posts entry; keyword:<kw>: found by a keyword watch' DEFAULT 'post',
	added_at DATETIME NOT NULL,
	newest_comment_id VARCHAR(32) COMMENT 'the newest comment id stored, where a round stops',
	newest_comment_at DATETIME COMMENT 'that comment''s time',
	last_crawled_at DATETIME COMMENT 'end of the last round that read the post',
	last_run_id BIGINT COMMENT 'crawl_runs.id of that round',
	active BOOL NOT NULL COMMENT 'false: no longer in the config (kept for the console''s history)' DEFAULT true,
	PRIMARY KEY (mid)
)ENGINE=InnoDB CHARSET=utf8mb4 COMMENT='posts the watch rounds read (migration 8; weibo.store keeps it)' COLLATE utf8mb4_unicode_ci;

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
	ip_location VARCHAR(64) COMMENT 'IP属地 as Weibo shows it (a province or country)',
	is_hot BOOL NOT NULL COMMENT 'listed among the post''s hot (most-liked) comments' DEFAULT false,
	root_id VARCHAR(32) COMMENT 'weibo.com source: the first-level comment of this thread',
	reply_to_id VARCHAR(32) COMMENT 'weibo.com source: the comment this one answers',
	priority SMALLINT NOT NULL COMMENT '1: a watched post''s comment, claimed before the backlog (migration 8)' DEFAULT '0',
	PRIMARY KEY (id),
	CONSTRAINT ck_comments_score_status CHECK (score_status IN ('pending', 'claimed', 'done', 'failed')),
	CONSTRAINT fk_comments_post FOREIGN KEY(mid) REFERENCES posts (mid)
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_unicode_ci;

CREATE INDEX ix_comments_created ON comments (created_at);

CREATE INDEX ix_comments_first_scraped ON comments (first_scraped_at);

CREATE INDEX ix_comments_mid ON comments (mid);

CREATE INDEX ix_comments_priority_queue ON comments (priority, score_status);

CREATE INDEX ix_comments_queue ON comments (score_status, lease_until);

CREATE TABLE console_sessions (
	id BIGINT NOT NULL AUTO_INCREMENT,
	token_hash VARCHAR(64) NOT NULL COMMENT 'sha256 of the token in the cookie',
	user_id BIGINT NOT NULL,
	created_at DATETIME NOT NULL,
	last_seen_at DATETIME NOT NULL,
	revoked_at DATETIME COMMENT 'NULL while the session is live',
	revoked_why VARCHAR(32) COMMENT 'logout, password, role, disabled, admin:<name>',
	ip VARCHAR(64) NOT NULL DEFAULT '',
	user_agent VARCHAR(191) NOT NULL DEFAULT '',
	PRIMARY KEY (id),
	CONSTRAINT uq_sessions_token UNIQUE (token_hash),
	CONSTRAINT fk_sessions_user FOREIGN KEY(user_id) REFERENCES console_users (id)
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_unicode_ci;

CREATE INDEX ix_sessions_live ON console_sessions (revoked_at, created_at);

CREATE INDEX ix_sessions_user ON console_sessions (user_id, revoked_at);

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
	category VARCHAR(64) COMMENT 'only when the hot-search list gives one',
	label VARCHAR(16) COMMENT 'the list''s badge (label_name: 热, 新, 沸, 爆 …)',
	seen_at DATETIME NOT NULL,
	PRIMARY KEY (id),
	CONSTRAINT uq_snap_run_topic UNIQUE (crawl_run_id, topic_id),
	CONSTRAINT fk_snap_run FOREIGN KEY(crawl_run_id) REFERENCES crawl_runs (id),
	CONSTRAINT fk_snap_topic FOREIGN KEY(topic_id) REFERENCES topics (id)
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_unicode_ci;

CREATE INDEX ix_snap_topic_seen ON topic_snapshots (topic_id, seen_at);

CREATE TABLE alerts (
	id BIGINT NOT NULL AUTO_INCREMENT,
	comment_id VARCHAR(32) NOT NULL,
	scorer VARCHAR(128) NOT NULL COMMENT 'the scorer whose level raised it',
	dimension VARCHAR(32) NOT NULL DEFAULT 'suicide_risk',
	level SMALLINT NOT NULL,
	author_hash VARCHAR(64) COMMENT 'copied from the comment, to count repeated risk',
	comment_time DATETIME NOT NULL COMMENT 'created_at, else first_scraped_at',
	repeat_count INTEGER NOT NULL COMMENT 'alerts from the same author_hash in the repeat window up to this one' DEFAULT '1',
	state VARCHAR(16) NOT NULL DEFAULT 'new',
	assignee VARCHAR(64),
	notes TEXT,
	created_at DATETIME NOT NULL,
	acknowledged_at DATETIME,
	acknowledged_by VARCHAR(64),
	closed_at DATETIME COMMENT 'when escalated, dismissed or resolved',
	closed_by VARCHAR(64),
	updated_at DATETIME NOT NULL,
	PRIMARY KEY (id),
	CONSTRAINT uq_alerts_comment UNIQUE (comment_id),
	CONSTRAINT ck_alerts_state CHECK (state IN ('new', 'acknowledged', 'escalated', 'dismissed', 'resolved')),
	CONSTRAINT fk_alerts_comment FOREIGN KEY(comment_id) REFERENCES comments (id)
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_unicode_ci;

CREATE INDEX ix_alerts_author_time ON alerts (author_hash, comment_time);

CREATE INDEX ix_alerts_state_level ON alerts (state, level, comment_time);

CREATE INDEX ix_alerts_state_repeat ON alerts (state, repeat_count, level, comment_time);

CREATE INDEX ix_alerts_state_time ON alerts (state, comment_time);

CREATE TABLE annotation_tasks (
	id BIGINT NOT NULL AUTO_INCREMENT,
	comment_id VARCHAR(32) NOT NULL,
	copy SMALLINT NOT NULL COMMENT '1: first coding; 2: the double-coded second one' DEFAULT '1',
	annotator VARCHAR(64) COMMENT 'NULL until an annotator takes the task',
	state VARCHAR(10) NOT NULL DEFAULT 'open',
	sample VARCHAR(64) NOT NULL COMMENT 'how the comment was chosen: stratified:<scorer>, random, ids' DEFAULT '',
	stratum SMALLINT COMMENT 'the sampling scorer''s level, if stratified',
	created_at DATETIME NOT NULL,
	taken_at DATETIME,
	done_at DATETIME,
	PRIMARY KEY (id),
	CONSTRAINT uq_tasks_comment_copy UNIQUE (comment_id, copy),
	CONSTRAINT ck_tasks_state CHECK (state IN ('open', 'done', 'skipped')),
	CONSTRAINT fk_tasks_comment FOREIGN KEY(comment_id) REFERENCES comments (id)
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_unicode_ci;

CREATE INDEX ix_tasks_annotator_state ON annotation_tasks (annotator, state, done_at);

CREATE INDEX ix_tasks_comment ON annotation_tasks (comment_id, annotator);

CREATE INDEX ix_tasks_open ON annotation_tasks (state, annotator);

CREATE TABLE scores (
	comment_id VARCHAR(32) NOT NULL,
	dimension VARCHAR(32) NOT NULL,
	scorer VARCHAR(128) NOT NULL COMMENT 'backend:model, e.g. lexicon:v2',
	value SMALLINT NOT NULL,
	confidence FLOAT,
	rationale TEXT,
	rubric_version VARCHAR(32) NOT NULL,
	truncated BOOL NOT NULL DEFAULT false,
	scored_at DATETIME NOT NULL,
	answer_mass FLOAT,
	answer_mass_gap FLOAT,
	uncertain BOOL,
	PRIMARY KEY (comment_id, dimension, scorer),
	CONSTRAINT ck_scores_value CHECK (value >= 0 AND value <= 10),
	CONSTRAINT fk_scores_comment FOREIGN KEY(comment_id) REFERENCES comments (id)
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_unicode_ci;

CREATE INDEX ix_scores_alerts ON scores (scorer, dimension, value);

CREATE INDEX ix_scores_level ON scores (scorer, dimension, value, comment_id);

CREATE TABLE notifications (
	id BIGINT NOT NULL AUTO_INCREMENT,
	alert_id BIGINT NOT NULL,
	channel VARCHAR(16) NOT NULL COMMENT 'webhook, email or command',
	state VARCHAR(16) NOT NULL DEFAULT 'pending',
	attempts INTEGER NOT NULL DEFAULT '0',
	last_error VARCHAR(500),
	created_at DATETIME NOT NULL,
	next_attempt_at DATETIME NOT NULL COMMENT 'not sent before this',
	sent_at DATETIME,
	digest VARCHAR(32) COMMENT 'id of the message that carried it; rows sent together (one digest) share it',
	PRIMARY KEY (id),
	CONSTRAINT uq_notifications_alert_channel UNIQUE (alert_id, channel),
	CONSTRAINT ck_notifications_state CHECK (state IN ('pending', 'sent', 'failed')),
	CONSTRAINT fk_notifications_alert FOREIGN KEY(alert_id) REFERENCES alerts (id)
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_unicode_ci;

CREATE INDEX ix_notifications_due ON notifications (channel, state, next_attempt_at);

CREATE INDEX ix_notifications_sent ON notifications (channel, sent_at);

INSERT INTO schema_version (version, applied_at, description) VALUES (12, NOW(), 'crawl_runs.status: bad_cookie (a cookie file that is missing, unreadable or malformed)');
