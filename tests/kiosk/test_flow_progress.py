"""Progress across the whole visit: parts, share done, minutes left; no count grows mid-way."""

from __future__ import annotations

from kiosk.flow import CHECKUP, QUESTION, Journey

# The check-up's answers: female (ADA then asks about diabetes in pregnancy), metric sizes.
ANSWERS = {"systolic": 120, "diastolic": 80, "height_cm": 165, "weight_kg": 60, "age": 40,
           "sex": "female"}


def test_the_check_up_counts_parts_and_minutes_and_never_grows() -> None:
    j = Journey()
    j.fire("start", 0)
    j.fire("accept", 0)
    j.go_anonymous(0)
    j.begin(list(CHECKUP), 0)
    seen = []
    for _ in range(100):
        if j.screen != QUESTION:
            break
        seen.append((j.instrument, j.progress(), j.visit_progress()))
        link = j.question
        j.answer(ANSWERS.get(link, 0 if j.instrument in ("phq2", "gad2") else False), 0)
    parts = [p for _iid, _q, (p, _n, _d, _m) in seen]
    assert parts == sorted(parts) and parts[0] == 1 and parts[-1] == len(CHECKUP)
    assert {n for _iid, _q, (_p, n, _d, _m) in seen} == {len(CHECKUP)}
    shares = [d for _iid, _q, (_p, _n, d, _m) in seen]
    assert shares == sorted(shares) and shares[0] == 0 and shares[-1] < 1
    minutes = [m for _iid, _q, (_p, _n, _d, m) in seen]
    assert minutes == sorted(minutes, reverse=True) and minutes[-1] == 1
    assert 4 <= minutes[0] <= 6  # "about 5 minutes", as the menu says
    ada = [q for iid, q, _v in seen if iid == "ada_risk"]
    assert "gestational_diabetes" in j.answers["ada_risk"]  # the conditional question came
    assert {total for _n, total in ada} == {6}, ada  # ... and the total said so from the start
    assert [n for n, _t in ada] == sorted(n for n, _t in ada)
