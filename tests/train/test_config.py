"""The recipes' choices that depend on the model."""

from deepres.train.config import recipe


def test_the_cifar_warm_up_goes_exactly_to_cifar_nets_of_depth_110_or_more():
    # §4.2: ResNet-110 (and deeper) warm up at 0.01. The depth comes from the model table,
    # never from the digits of a name (wrn_16_8's "168", resnext50_32x4d's "50324").
    from deepres import list_models
    from deepres.models.names import resolve

    for name in list_models():
        spec = resolve(name)
        want = spec.family == "cifar" and spec.depth >= 110
        assert (recipe("cifar-paper", name).optim.warmup_lr == 0.01) == want, name
    assert recipe("cifar-paper", "wrn_16_8").optim.warmup_lr is None
    assert recipe("cifar-paper", "resnext50_32x4d").optim.warmup_lr is None
    assert recipe("cifar-paper", "resnet110").optim.warmup_lr == 0.01


def test_a_warm_up_of_fixed_length_ignores_the_training_error():
    from dataclasses import replace

    from deepres.train.schedule import ScheduleState, after_train_error, lr_at

    o = replace(recipe("cifar-paper", "resnet20").optim, warmup_lr=0.01, warmup_steps=400)
    s = ScheduleState()
    assert not after_train_error(s, o, 0.0)  # a low error does not end it
    assert [lr_at(k, o, s) for k in (0, 399, 400, 31_999, 32_000)] == [0.01, 0.01, 0.1, 0.1,
                                                                      0.1 * 0.1]
    # Without a length, the §4.2 rule: until the training error drops below 80%.
    o110 = recipe("cifar-paper", "resnet110").optim
    assert o110.warmup_steps is None and lr_at(5_000, o110, ScheduleState()) == 0.01


def test_the_resume_policy_names_only_real_flags():
    from deepres.train.policy import RESUME_POLICY, may_change_on_resume
    from deepres.train_command import TRAIN_FLAGS

    assert set(RESUME_POLICY) <= set(TRAIN_FLAGS)
    assert {"lr", "momentum"} <= may_change_on_resume(True) - may_change_on_resume(False)
    assert {"device", "precision", "iterations"} <= may_change_on_resume(False)
    assert "batch_size" not in may_change_on_resume(True)  # fixed for the run's lifetime
