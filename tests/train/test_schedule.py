from deepres.train.config import OptimConfig, recipe
from deepres.train.schedule import ScheduleState, after_eval, after_train_error, lr_at


def test_cifar_paper_recipe_matches_section_4_2():
    cfg = recipe("cifar-paper", "resnet20")
    o = cfg.optim
    assert (o.batch_size, o.lr, o.momentum, o.weight_decay, o.iterations) == (
        128, 0.1, 0.9, 1e-4, 64_000)
    assert cfg.data.holdout == 0  # the reported models see all 50k (--holdout 5000: 45k/5k)
    st = ScheduleState()
    assert lr_at(0, o, st) == 0.1 and lr_at(31_999, o, st) == 0.1
    assert abs(lr_at(32_000, o, st) - 0.01) < 1e-12 and abs(lr_at(47_999, o, st) - 0.01) < 1e-12
    assert abs(lr_at(48_000, o, st) - 0.001) < 1e-12
    assert o.warmup_lr is None


def test_resnet110_warmup_returns_to_0_1():
    o = recipe("cifar-paper", "resnet110").optim
    assert o.warmup_window == 100
    st = ScheduleState()
    assert lr_at(0, o, st) == 0.01 and lr_at(399, o, st) == 0.01
    for _ in range(200):
        assert not after_train_error(st, o, 0.85)
    assert lr_at(400, o, st) == 0.01
    # One lucky batch below 80% does not end it: the mean of the last 100 must be below.
    assert not after_train_error(st, o, 0.10)
    ended = [after_train_error(st, o, 0.75) for _ in range(100)]
    assert ended.index(True) > 0 and sum(ended) == 1
    assert lr_at(401, o, st) == 0.1  # back to 0.1, not stuck at 0.01
    assert lr_at(32_000, o, st) == 0.1 * 0.1


def test_warmup_window_survives_a_checkpoint():
    o = recipe("cifar-paper", "resnet110").optim
    st = ScheduleState()
    for _ in range(60):
        after_train_error(st, o, 0.7)
    restored = ScheduleState(**st.to_dict())
    assert [after_train_error(restored, o, 0.7) for _ in range(40)][-1]


def test_plateau_divides_by_ten():
    o = recipe("imagenet-paper", "resnet50").optim
    assert (o.batch_size, o.iterations, o.schedule) == (256, 600_000, "plateau")
    st = ScheduleState()
    after_eval(st, o, 0.5)
    for _ in range(o.patience - 1):
        assert not after_eval(st, o, 0.5)
    assert after_eval(st, o, 0.51)
    assert abs(lr_at(10, o, st) - 0.01) < 1e-12


def test_onecycle_shape():
    o = OptimConfig(lr=0.2, iterations=100, schedule="onecycle", warmup_fraction=0.2)
    st = ScheduleState()
    lrs = [lr_at(i, o, st) for i in range(100)]
    assert max(lrs) == 0.2 and lrs.index(0.2) == 19 and lrs[-1] < 0.01
