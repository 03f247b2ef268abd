"""--from-db URL --labels PATTERN: the team's own labels (human score rows), on SQLite and MariaDB."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import joblib
import pytest
import sqlalchemy as sa

from llm_worker.scoring.backends import make_backend
from llm_worker.scoring.backends.base import ScoreInput
from llm_worker.training import db_labels, train
from weibo_mh import db
from weibo_mh.config import load_config

DATA = Path(__file__).parent / "data"

#: Project-written comments with (suicide_risk, positivity, mood_disorder, substance_use) labels.
LABELLED = [
    ("今天和朋友去公园散步，天气真好", (0, 8, 0, 0)),
    ("周末在家做了一桌菜，全家都说好吃", (0, 9, 0, 0)),
    ("考试终于过了，开心得跳起来", (0, 9, 0, 0)),
    ("新买的自行车骑起来很舒服", (0, 7, 0, 0)),
    ("最近工作有点累，但还能坚持", (1, 4, 2, 0)),
    ("这个月每天都睡不着，什么都提不起兴趣", (2, 2, 7, 0)),
    ("连续几周情绪低落，觉得自己一无是处", (3, 1, 8, 0)),
    ("医生说我是抑郁症，开了药在吃", (2, 3, 9, 0)),
    ("每天醒来都觉得没有希望，不想见任何人", (3, 1, 8, 0)),
    ("心情一直很差，吃不下饭，也不想动", (2, 2, 7, 0)),
    ("晚上喝了两杯啤酒，聊得很开心", (0, 8, 0, 3)),
    ("每天不喝一瓶白酒就睡不着", (2, 3, 4, 8)),
    ("心情不好就喝酒，越喝越多", (2, 2, 4, 7)),
    ("戒不掉烟，一天两包", (0, 4, 0, 7)),
    ("安眠药吃得越来越多，一次吃好几片", (3, 2, 5, 9)),
    ("喝到断片，第二天什么都不记得", (1, 3, 2, 8)),
    ("我真的不想活了，太痛苦了", (5, 0, 8, 0)),
    ("我已经写好遗书，准备好了绳子", (7, 0, 8, 0)),
    ("明天晚上就去跳楼，已经决定了", (9, 0, 7, 0)),
    ("攒够了安眠药，这周就吃掉", (9, 0, 7, 6)),
]


def seed(url: str, annotators: dict[str, int]) -> None:
    """Comments and human score rows; annotator name -> offset added to the base label (clipped)."""
    now = db.now()
    eng = db.make_engine(url)
    dims = ("suicide_risk", "positivity", "mood_disorder", "substance_use")
    with eng.begin() as conn:
        conn.execute(sa.insert(db.posts), [{"mid": "p1", "text": "话题帖", "first_scraped_at": now,
                                            "scraped_at": now}])
        conn.execute(sa.insert(db.comments), [
            {"id": f"c{i:02d}", "mid": "p1", "text": text, "first_scraped_at": now, "scraped_at": now}
            for i, (text, _) in enumerate(LABELLED)])
        rows = []
        for i, (_, labels) in enumerate(LABELLED):
            for d, v in zip(dims, labels, strict=True):
                for name, off in annotators.items():
                    rows.append({"comment_id": f"c{i:02d}", "dimension": d, "scorer": f"human:{name}",
                                 "value": max(0, min(10, v + off)), "rubric_version": "2026-11-a",
                                 "scored_at": now})
                # A machine scorer's row, which must never be read as a label.
                rows.append({"comment_id": f"c{i:02d}", "dimension": d, "scorer": "lexicon:v2", "value": 10,
                             "rubric_version": "2026-11-a", "scored_at": now})
        # An extended-rubric row and a human row on a comment of its own dimension only.
        rows.append({"comment_id": "c00", "dimension": "f40_f48", "scorer": "human:alice", "value": 5,
                     "rubric_version": "2026-11-a", "scored_at": now})
        conn.execute(sa.insert(db.scores), rows)
    eng.dispose()


def test_human_labels_are_combined_by_their_median(db_url):
    seed(db_url, {"alice": 0, "bob": 3, "carol": -1})
    labels = db_labels.read_labels(db_url, "human:*")
    assert labels.annotators == ["human:alice", "human:bob", "human:carol"]
    assert {d: labels.count(d) for d in labels.levels} == {
        "suicide_risk": 20, "positivity": 20, "mood_disorder": 20, "substance_use": 20}
    # alice = base, bob = base + 3, carol = base - 1: the median is alice's label.
    texts, levels = labels.pairs("suicide_risk")
    assert dict(zip(texts, levels, strict=True)) == {t: lab[0] for t, lab in LABELLED}
    assert "lexicon:v2" not in labels.annotators and len(labels.sha256) == 64
    # One annotator alone, by pattern.
    only_bob = db_labels.read_labels(db_url, "human:b?b")
    assert only_bob.annotators == ["human:bob"]
    assert only_bob.pairs("positivity")[1][0] == min(10, LABELLED[0][1][1] + 3)


def test_two_annotators_take_the_upper_middle():
    assert db_labels.combine([3, 6]) == 6
    assert db_labels.combine([2, 5, 9]) == 5
    assert db_labels.combine([4]) == 4


def test_only_human_scorers_and_a_clear_error_otherwise(sqlite_url):
    with pytest.raises(db_labels.LabelError, match="must start with 'human:'"):
        db_labels.like_pattern("lexicon:*")
    assert db_labels.like_pattern("human:a_b*") == "human:a\\_b%"
    with pytest.raises(db_labels.LabelError, match="no score rows"):
        db_labels.read_labels(sqlite_url, "human:*")
    code = train.main(["--task", "suicide", "--from-db", sqlite_url, "--labels", "*", "--out", "x.joblib"])
    assert code == 2


def test_train_from_db_gives_heads_for_mood_and_substance(sqlite_url, tmp_path):
    """Reading is tested on both databases above; training on what was read needs only one."""
    db_url = sqlite_url
    seed(db_url, {"alice": 0, "bob": 1})
    out = tmp_path / "team.joblib"
    code = train.main(["--task", "suicide", "--data", str(DATA / "sos_level.tsv"),
                       "--data", str(DATA / "sos_binary.tsv"), "--from-db", db_url,
                       "--labels", "human:*", "--out", str(out)])
    assert code == 0
    bundle = joblib.load(out)
    meta = bundle["meta"]
    assert set(bundle["heads"]) == {"mood_disorder", "substance_use"}
    assert meta["heads"]["mood_disorder"] == "trained on 20 human labels"
    assert meta["db_labels"]["annotators"] == ["human:alice", "human:bob"]
    assert meta["db_labels"]["source"] == f"{db.mask(db_url)} (labels human:*)"  # never a password
    b = make_backend("classifier", load_config(), model=str(out))
    src = b.sources()
    assert src["mood_disorder"].startswith("head trained on 20 human labels")
    assert src["substance_use"].startswith("head trained on 20 human labels")
    r = b.score_batch([ScoreInput("话题", "每天不喝一瓶白酒就睡不着，戒不掉"), ScoreInput("话题", "今天天气真好")])
    assert r[0].scores["substance_use"].value > r[1].scores["substance_use"].value
    b.close()


def test_without_labels_for_a_dimension_the_lexicon_scores_it_and_says_so(sqlite_url, tmp_path):
    now = db.now()
    eng = db.make_engine(sqlite_url)
    with eng.begin() as conn:
        conn.execute(sa.insert(db.posts), [{"mid": "p1", "text": "帖", "first_scraped_at": now, "scraped_at": now}])
        conn.execute(sa.insert(db.comments), [
            {"id": f"c{i}", "mid": "p1", "text": t, "first_scraped_at": now, "scraped_at": now}
            for i, (t, _) in enumerate(LABELLED)])
        conn.execute(sa.insert(db.scores), [
            {"comment_id": f"c{i}", "dimension": "suicide_risk", "scorer": "human:alice", "value": lab[0],
             "rubric_version": "2026-11-a", "scored_at": now + dt.timedelta(seconds=i)}
            for i, (_, lab) in enumerate(LABELLED)])
    eng.dispose()
    out = tmp_path / "team.joblib"
    assert train.main(["--task", "suicide", "--from-db", sqlite_url, "--out", str(out)]) == 0
    bundle = joblib.load(out)
    assert bundle["heads"] == {} and bundle["meta"]["heads"] == {"mood_disorder": "lexicon",
                                                                 "substance_use": "lexicon"}
    b = make_backend("classifier", load_config(), model=str(out))
    assert "no labels for this dimension" in b.sources()["mood_disorder"]
    assert b.sources()["suicide_risk"].startswith("trained model")
    b.close()
