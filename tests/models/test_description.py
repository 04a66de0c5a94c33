"""One description of a model (models/description.py): create_model takes it whole, a weights
file saves and restores it, a training config gives it, and its checks run once."""

import dataclasses

import pytest
import torch

from deepres import model_from_weights, save_weights
from deepres.models import create_model
from deepres.models.description import SAVED, ModelArgs
from deepres.train.config import ModelConfig, recipe


def test_create_model_takes_the_description_whole():
    args = ModelArgs("resnet50", num_classes=7, stride_in_1x1=True, conv_init="fan_in")
    torch.manual_seed(0)
    a = create_model(args)
    torch.manual_seed(0)
    b = create_model("resnet50", num_classes=7, stride_in_1x1=True, conv_init="fan_in")
    assert a.model_args == b.model_args == args.settled()
    assert a.model_args.shortcut == "B"  # the family's default, filled in
    for (k, v), (k2, v2) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(v, v2)


def test_a_weights_file_restores_the_description(tmp_path):
    model = create_model("wrn_16_4", num_classes=3, dropout=0.3)
    save_weights(model, tmp_path / "w.safetensors")
    back, _ = model_from_weights(tmp_path / "w.safetensors")
    saved = {k: getattr(model.model_args, k) for k in SAVED}
    assert {k: getattr(back.model_args, k) for k in SAVED} == saved
    assert back.model_args.name == "wrn_16_4" and back.model_options == model.model_options


def test_a_resized_classifier_is_in_the_description():
    model = create_model("resnet20")
    model.reset_classifier(4)
    assert model.model_args.num_classes == 4 and model.model_options["num_classes"] == 4


@pytest.mark.parametrize("bad, message", [
    (dict(shortcut="D"), "shortcut must be 'A', 'B' or 'C'"),
    (dict(name="plain20", shortcut="B"), "plain network"),
    (dict(stride_in_1x1=True), "bottleneck"),
    (dict(resnet_d=True), "ImageNet nets"),
    (dict(dropout=0.3), "wide/pre-activation"),
    (dict(num_classes=-1), "positive integer"),
    (dict(conv_init="xavier"), "conv_init"),
])
def test_each_check_is_one_clear_error(bad, message):
    args = dataclasses.replace(ModelArgs("resnet20"), **bad)
    with pytest.raises(ValueError, match=message):
        args.settled()
    with pytest.raises(ValueError, match=message):
        create_model(args)


@pytest.mark.parametrize("options, message", [
    ({"depth": 3}, "unknown option 'depth'"),
    ({"num_classes": True}, "num_classes' must be a int"),
    ({"dropout": "0.3"}, "dropout' must be a float"),
    ({"shortcut": "Z"}, "must be A, B or C"),
    ({"num_classes": 0}, "at least 1"),
])
def test_saved_options_are_checked_before_anything_is_built(options, message):
    with pytest.raises(ValueError, match=message):
        ModelArgs.from_saved("resnet20", options)


def test_a_training_config_gives_every_model_option_by_name():
    cfg = recipe("cifar-paper", "resnet56").model
    args = cfg.args(10)
    assert args == ModelArgs("resnet56", num_classes=10, conv_init="fan_in")
    # ModelConfig embeds the description rather than copying its fields (issue 41): every
    # model option is a training option but the class count (the data decides it), read by
    # name and saved flat in config.json; in_chans too (--in-chans 1: grayscale)
    assert [f.name for f in dataclasses.fields(ModelConfig)] == ["model_args", "init",
                                                                 "freeze_backbone"]
    options = {f.name for f in dataclasses.fields(ModelArgs)} - {"num_classes"}
    assert options <= set(cfg.flat()) and all(
        getattr(cfg, name) == getattr(cfg.model_args, name) for name in options)
    assert dataclasses.replace(cfg, shortcut="B").args(10).shortcut == "B"


def test_a_model_option_is_declared_on_modelargs_only():
    """create_model takes every ModelArgs field by name, and the builder passes each to the
    network by name: a new option is a field and its use in models/resnet.py."""
    import inspect

    from deepres.models.resnet import ResNet

    params = set(inspect.signature(ResNet).parameters)
    options = {f.name for f in dataclasses.fields(ModelArgs)} - {"name", "num_classes"}
    assert options <= params
    with pytest.raises(ValueError, match="unknown option.*depth.*known: num_classes"):
        create_model("resnet20", depth=3)
    with pytest.raises(ValueError, match="whole"):
        create_model(ModelArgs("resnet20"), num_classes=3)
