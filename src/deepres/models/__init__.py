"""The ResNet family (He et al. 2015): blocks, networks, registry and weights."""

from .._lazy import exports

__getattr__, __dir__, __all__ = exports(__name__, {
    "BasicBlock": ".blocks",
    "Bottleneck": ".blocks",
    "PlainBasicBlock": ".blocks",
    "PlainBottleneck": ".blocks",
    "ZeroPadShortcut": ".blocks",
    "model_from_weights": ".loading",
    "ModelSpec": ".names",
    "create_model": ".registry",
    "list_models": ".names",
    "resolve": ".names",
    "FeatureInfo": ".resnet",
    "ResNet": ".resnet",
    "WeightsError": ".errors",
    "load_weights": ".transfer",
    "read_weights": ".weights",
    "save_weights": ".weights",
})
