"""Agreement arithmetic against hand-computed values and sklearn; the command's files."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from sklearn.metrics import cohen_kappa_score

from analysis import agreement
from analysis.agreement import weighted_kappa
from analysis.compare_scorers import weighted_kappa as report_kappa
from tests.console.seed import MACHINE
from weibo_mh import db, rollups


def test_quadratic_kappa_matches_sklearn() -> None:
    rng = np.random.default_rng(7)
    for _ in range(20):
        a = rng.integers(0, 11, 60)
        b = np.clip(a + rng.integers(-3, 4, 60), 0, 10)
        m = np.zeros((11, 11), dtype=int)
        np.add.at(m, (a, b), 1)
        want = cohen_kappa_score(a, b, weights="quadratic", labels=list(range(11)))
        assert weighted_kappa(m) == pytest.approx(want, abs=1e-12)
        assert report_kappa(m) == pytest.approx(want, abs=1e-12)


def test_ordinal_alpha_by_hand() -> None:
    # Units [1,1] [1,2] [2,3] [3,3]: o12 = o21 = o23 = o32 = 1, o11 = o33 = 2; n = (3, 2, 3), 8.
    # delta^2: (1,2) = (5 - 2.5)^2 = 6.25, (2,3) = 6.25, (1,3) = (8 - 3)^2 = 25.
    # D_o = 4 * 6.25 = 25; sum n_c n_k delta^2 = 2 (6 * 6.25 + 6 * 6.25 + 9 * 25) = 600.
    # alpha = 1 - (8 - 1) * 25 / 600 = 0.708333...
    assert agreement.krippendorff_alpha_ordinal([[1, 1], [1, 2], [2, 3], [3, 3]]) == \
        pytest.approx(1 - 7 * 25 / 600)
    # Three coders [0,0,1]: o00 = o01 = o10 = 1 (pairs / (m - 1)); n = (2, 1), 3.
    # D_o = 2 * 2.25 = 4.5; sum n_c n_k delta^2 = 2 * 2 * 1 * 2.25 = 9; alpha = 1 - 2 * 4.5 / 9 = 0.
    # A unit with one value is not pairable and changes nothing.
    assert agreement.krippendorff_alpha_ordinal([[0, 0, 1], [2]]) == pytest.approx(0.0)
    assert agreement.krippendorff_alpha_ordinal([[4, 4], [4, 4]]) != agreement.krippendorff_alpha_ordinal([[4, 4], [4, 4]])
    assert math.isnan(agreement.krippendorff_alpha_ordinal([[3]]))
    assert agreement.krippendorff_alpha_ordinal([[0, 0], [5, 5], [9, 9]]) == 1.0


def test_binary_f1_by_hand() -> None:
    ref = np.array([7, 8, 2, 6, 0, 9])
    pred = np.array([6, 3, 7, 9, 1, 9])
    # positives (>= 6): ref 7,8,6,9 ; pred 6,7,9,9 -> tp 3 (7/6, 6/9, 9/9), fp 1 (2/7), fn 1 (8/3)
    assert agreement.binary_f1(ref, pred) == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))
    m = np.zeros((11, 11), dtype=int)
    np.add.at(m, (ref, pred), 1)
    assert agreement.f1_from_matrix(m) == pytest.approx(agreement.binary_f1(ref, pred))


def _label(engine: sa.Engine, who: str, values: dict[str, int]) -> None:
    t = db.now()
    with engine.begin() as conn:
        rollups.write_scores(conn, [
            {"comment_id": cid, "dimension": "suicide_risk", "scorer": f"human:{who}", "value": v,
             "rubric_version": "2026-11-a", "truncated": False, "scored_at": t}
            for cid, v in values.items()])


def test_compute_and_the_command(seeded: sa.Engine, tmp_path: Path) -> None:
    # lexicon:v2 gave c00..c03 levels 0..3, c07 level 7, c08 level 8.
    _label(seeded, "anna", {"c00": 0, "c01": 2, "c02": 2, "c07": 7, "c08": 6})
    _label(seeded, "bo", {"c00": 0, "c01": 1, "c07": 5, "c08": 6, "c03": 3})
    with seeded.connect() as conn:
        ag = agreement.compute(conn)
    pairs = {(r.scorer_a, r.scorer_b): r for r in ag.pairs.itertuples()}
    assert set(pairs) == {("human:anna", "human:bo"), ("human:anna", MACHINE), ("human:bo", MACHINE)}
    hh = pairs[("human:anna", "human:bo")]
    assert hh.kind == "human-human" and hh.comments == 4  # c00, c01, c07, c08
    assert hh.exact == pytest.approx(0.5)
    # anna high: c07, c08; bo high: c08 -> tp 1, fn 1
    assert hh.f1_high_risk == pytest.approx(2 / 3)
    hm = pairs[("human:anna", MACHINE)]
    assert hm.comments == 5 and hm.kind == "human-machine"
    want = cohen_kappa_score([0, 2, 2, 7, 6], [0, 1, 2, 7, 8], weights="quadratic", labels=list(range(11)))
    assert hm.kappa_quadratic == pytest.approx(want)
    alpha = ag.alpha.set_index("dimension").loc["suicide_risk"]
    assert alpha.annotators == 2 and alpha.comments_double_coded == 4
    units = [[0, 0], [2, 1], [7, 5], [6, 6]]
    assert alpha.alpha_ordinal == pytest.approx(agreement.krippendorff_alpha_ordinal(units))
    rel = ag.reliability
    assert set(rel["scorer"]) == {MACHINE} and rel["pairs"].sum() == 10
    # c07 (confidence 0.70) and c08 (0.75) are in the 0.7 bin: exact for anna on c07 only of 4 pairs
    b7 = rel[np.isclose(rel["bin_low"], 0.7)].iloc[0]
    assert b7["pairs"] == 4 and b7["accuracy"] == pytest.approx(1 / 4)

    from analysis.agreement import main

    url = seeded.url.render_as_string(hide_password=False)
    assert main(["--db", url, "--out", str(tmp_path)]) == 0
    names = {p.name for p in tmp_path.iterdir()}
    assert {"agreement.md", "agreement_pairs.csv", "agreement_alpha.csv", "agreement_confusion.csv",
            "agreement_reliability.csv", "agreement_confusion.png", "agreement_reliability.png"} <= names
    md = (tmp_path / "agreement.md").read_text(encoding="utf-8")
    assert "`human:anna` | `human:bo` | 4 |" in md
    assert (tmp_path / "agreement_confusion.png").stat().st_size > 10_000


def test_vectorised_alpha_equals_the_loop() -> None:
    rng = np.random.default_rng(3)
    units, values, lists = [], [], []
    for u in range(60):
        m = int(rng.integers(1, 5))
        vals = [int(v) for v in np.clip(rng.integers(0, 11) + rng.integers(-2, 3, m), 0, 10)]
        lists.append(vals)
        units += [f"u{u}"] * m
        values += vals
    want = agreement.krippendorff_alpha_ordinal(lists)
    assert agreement.alpha_from_rows(np.array(units), np.array(values)) == pytest.approx(want)


def test_the_page_cache_follows_the_labels(seeded: sa.Engine) -> None:
    from analysis.console.agreement_cache import AgreementCache
    from analysis.console.auth import audit

    cache = AgreementCache(seeded)
    with seeded.connect() as conn:
        first = cache.get(conn)
        assert cache.get(conn) is first  # nothing changed: reused
    with seeded.begin() as conn:
        audit(conn, "rui", "alert_note", "alert:1")  # not a label: still reused
    with seeded.connect() as conn:
        assert cache.get(conn) is first
    _label(seeded, "anna", {"c00": 0})
    with seeded.begin() as conn:
        audit(conn, "anna", "label", "comment:c00", {"task": 1})
    cache.warm()
    for _ in range(100):  # the background thread computes the new figures
        with seeded.connect() as conn:
            key = cache.labels_key(conn)
        if cache._fresh(key) is not None:
            break
        time.sleep(0.05)
    with seeded.connect() as conn:
        again = cache.get(conn)
    assert again is not first and again.labels == 1
