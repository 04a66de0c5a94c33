"""The ResNet family (He et al. 2015): blocks, networks, registry and weights."""

from .blocks import BasicBlock, Bottleneck, PlainBasicBlock, PlainBottleneck, ZeroPadShortcut
from .loading import model_from_weights
from .registry import ModelSpec, create_model, list_models, resolve
from .resnet import FeatureInfo, ResNet
from .weights import WeightsError, load_weights, read_weights, save_weights

__all__ = [
    "BasicBlock", "Bottleneck", "FeatureInfo", "ModelSpec", "PlainBasicBlock", "PlainBottleneck",
    "ResNet", "WeightsError", "ZeroPadShortcut", "create_model", "list_models", "load_weights",
    "model_from_weights", "read_weights", "resolve", "save_weights",
]
