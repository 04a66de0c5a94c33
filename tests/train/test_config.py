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
