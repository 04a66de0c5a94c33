"""The full-schedule report's recipe checks: each can fail, and the report says them only where
a net misses Table 6 by more than the target."""

import pytest

from deepres.data import augment as T
from deepres.experiments.recipe_checks import augment_check, expected_lr, lr_check, phase_ends
from deepres.report.recipe_checks import gap_section


def _record(lrs, tests=(), steps=400, test_error=0.2):
    rows = [{"step": s, "lr": lr, "train_error": 0.5 - s / 1000} for s, lr in lrs]
    rows += [{"step": s, "test_error": e} for s, e in tests]
    return {"rows": sorted(rows, key=lambda r: r["step"]), "steps": steps,
            "test_error": test_error, "train_error": 0.1}


def test_expected_lr_divides_after_each_bound():
    assert [expected_lr(s, 0.1, 0.1, [200, 300]) for s in (1, 200, 201, 300, 301)] == \
        pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001])


def test_lr_check_counts_and_names_the_first_step_off_schedule():
    good = [(100, 0.1), (200, 0.1), (300, 0.01), (400, 0.001)]
    assert lr_check(_record(good), 0.1, 0.1, [200, 300])["matching"] == 4
    late = [(100, 0.1), (200, 0.1), (300, 0.1), (400, 0.001)]  # the first division missed
    c = lr_check(_record(late), 0.1, 0.1, [200, 300])
    assert (c["matching"], c["logged"], c["first_wrong"]) == (3, 4, (300, 0.1))
    warm = [(100, 0.01), (200, 0.1), (300, 0.01), (400, 0.001)]  # ResNet-110's warm-up
    c = lr_check(_record(warm), 0.1, 0.1, [200, 300], warmup_lr=0.01)
    assert (c["matching"], c["logged"], c["warmup"]) == (3, 3, 1)


def test_phase_ends_take_the_last_test_before_each_bound_and_the_final_model():
    rec = _record([(s, 0.1) for s in range(50, 401, 50)],
                  tests=[(150, 0.5), (190, 0.4), (290, 0.3), (390, 0.25)])
    ends = phase_ends(rec, [200, 300])
    assert [(p["end"], p["test_step"], p["test_error"]) for p in ends] == \
        [(200, 190, 0.4), (300, 290, 0.3), (400, 400, 0.2)]
    assert ends[0]["train_error"] == pytest.approx(0.5 - (50 + 100 + 150 + 200) / 4 / 1000)


def test_augment_check_sees_the_paper_augmentation_and_catches_a_broken_one(monkeypatch):
    a = augment_check(draws=4000)
    assert (a["offsets_seen"], a["offsets"], a["padding_zero"]) == (81, 81, True)
    assert 0.46 < a["flipped"] < 0.54 and a["offset_min"] > 20
    monkeypatch.setattr(T, "cifar_train_augment", lambda x, g: T.pad_crop(x, g, 2))
    broken = augment_check(draws=4000)
    assert broken["offsets_seen"] == 25 and broken["flipped"] == 0.0


def test_gap_section_only_where_a_net_misses_the_target():
    checks = {"bounds": [200, 300], "lr": 0.1, "augment": augment_check(draws=500),
              "runs": {"resnet20-s0": {"lr": lr_check(_record([(100, 0.1)]), 0.1, 0.1,
                                                      [200, 300]),
                                       "phases": phase_ends(_record([(100, 0.1)]), [200, 300])}}}
    near = {"resnet20": [{"test_error": 0.0990, "train_error": 0.01}]}  # 8.75 + 1.15
    assert gap_section(checks, near) == []
    far = {"resnet20": [{"test_error": 0.1232, "train_error": 0.0141}]}
    text = "\n".join(gap_section(checks, far))
    assert "resnet20 12.32% against 8.75% (training error 1.41%)" in text
    assert "resnet20-s0 1 of 1" in text and "81 of 81 crop offsets" in text
    assert gap_section({}, far) == []
