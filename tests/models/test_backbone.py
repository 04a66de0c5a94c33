"""ResNets as detection backbones (§4.3 used ResNet-101 in Faster R-CNN)."""

import torch
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.backbone_utils import BackboneWithFPN

from deepres import create_model


def test_forward_features_strides_and_channels():
    model = create_model("resnet18").eval()
    x = torch.randn(1, 3, 128, 160)
    feats = model.feature_maps(x)
    assert list(feats) == ["stem", "layer1", "layer2", "layer3", "layer4"]
    for info in model.feature_info:
        f = feats[info.name]
        assert f.shape[1] == info.channels
        assert (f.shape[2], f.shape[3]) == (128 // info.stride, 160 // info.stride)
    assert [i.stride for i in model.feature_info] == [4, 4, 8, 16, 32]
    with torch.no_grad():
        assert torch.allclose(model.forward_head(feats["layer4"]), model(x), atol=1e-6)
        # timm's vocabulary: the last map, the pooled features, the classifier.
        last = model.forward_features(x)
        assert torch.equal(last, feats["layer4"])
        assert model.forward_head(last, pre_logits=True).shape == (1, 512)
    assert model.get_classifier() is model.fc
    model.reset_classifier(7)
    assert model(x).shape == (1, 7) and model.model_options["num_classes"] == 7


def test_cifar_feature_info():
    model = create_model("resnet20")
    assert [(i.name, i.channels, i.stride) for i in model.feature_info] == [
        ("stem", 16, 1), ("layer1", 16, 1), ("layer2", 32, 2), ("layer3", 64, 4)]


def test_works_inside_torchvision_faster_rcnn():
    body = create_model("resnet18")
    stages = [i for i in body.feature_info if i.name.startswith("layer")]
    backbone = BackboneWithFPN(
        body,
        return_layers={i.name: str(k) for k, i in enumerate(stages)},
        in_channels_list=[i.channels for i in stages],
        out_channels=64,
    )
    detector = FasterRCNN(backbone, num_classes=3, min_size=128, max_size=160).eval()
    with torch.no_grad():
        out = detector([torch.rand(3, 120, 150)])
    assert set(out[0]) == {"boxes", "labels", "scores"}
    # Training mode gives losses that backpropagate into our backbone.
    detector.train()
    target = {"boxes": torch.tensor([[10.0, 20.0, 60.0, 80.0]]), "labels": torch.tensor([1])}
    losses = detector([torch.rand(3, 120, 150)], [target])
    sum(losses.values()).backward()
    assert body.layer2[0].conv1.weight.grad is not None


def test_children_run_in_registration_order():
    # Wrappers such as torchvision's IntermediateLayerGetter call children in this order.
    model = create_model("resnet18").eval()
    x = torch.randn(1, 3, 64, 64)
    out = x
    for name, child in model.named_children():
        if name == "avgpool":
            break
        out = child(out)
    with torch.no_grad():
        assert torch.allclose(model.forward_head(out), model(x))
