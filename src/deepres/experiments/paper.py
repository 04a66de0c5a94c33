"""The paper's reported numbers, as data (He et al. 2015, its tables). Errors in percent."""

from __future__ import annotations

# Table 1: multiply-adds (x 10^9) at 224x224.
TABLE1_GMACS = {"resnet18": 1.8, "resnet34": 3.6, "resnet50": 3.8, "resnet101": 7.6,
                "resnet152": 11.3}

# Table 2: ImageNet val top-1 error, 10-crop.
TABLE2_TOP1 = {"plain18": 27.94, "plain34": 28.54, "resnet18": 27.88, "resnet34": 25.03}

# Table 3: ImageNet val 10-crop (top-1, top-5).
TABLE3 = {"plain34": (28.54, 10.02), "resnet34-A": (25.03, 7.76), "resnet34-B": (24.52, 7.46),
          "resnet34-C": (24.19, 7.40), "resnet50": (22.85, 6.71), "resnet101": (21.75, 6.05),
          "resnet152": (21.43, 5.71)}

# Table 4: single model, multi-scale (top-1, top-5).
TABLE4 = {"resnet34-B": (21.84, 5.71), "resnet34-C": (21.53, 5.60), "resnet50": (20.74, 5.25),
          "resnet101": (19.87, 4.60), "resnet152": (19.38, 4.49)}

# Table 6: CIFAR-10 test error and parameters (millions), option A shortcuts.
TABLE6_ERROR = {"resnet20": 8.75, "resnet32": 7.51, "resnet44": 7.17, "resnet56": 6.97,
                "resnet110": 6.43, "resnet1202": 7.93}
TABLE6_PARAMS_M = {"resnet20": 0.27, "resnet32": 0.46, "resnet44": 0.66, "resnet56": 0.85,
                   "resnet110": 1.7, "resnet1202": 19.4}
TABLE6_RESNET110_MEAN_STD = (6.61, 0.16)
# Not the paper: the test errors akamaster/pytorch_resnet_cifar10 reports for its PyTorch
# training of these nets with the paper's recipe (its README), the reference most PyTorch users
# compare a CIFAR ResNet with; shown beside ours in the full-schedule report.
AKAMASTER_ERROR = {"resnet20": 8.27, "resnet32": 7.37, "resnet44": 6.90, "resnet56": 6.61,
                   "resnet110": 6.32}

# Figure 6 / Figure 1 (qualitative): deeper plain nets have higher training and test error;
# deeper residual nets have lower. Plain-110 is above 60% error (not shown in the paper).
FIGURE6_CLAIM = ("plain: deeper is worse (degradation); residual: deeper is better, up to 110 "
                 "layers")
# Figure 7 (qualitative): residual nets' layer responses are smaller than plain nets'; the
# deeper the residual net, the smaller its responses.
FIGURE7_CLAIM = ("ResNets respond less than plain nets; deeper ResNets respond less per layer")

# The follow-up paper (He et al. 2016, Identity Mappings in Deep Residual Networks), Table 3:
# CIFAR-10 test error of the original and the pre-activation units (the paper's own numbers
# for ResNet-110 and ResNet-164, the latter with bottleneck blocks).
PREACT_ERROR = {"resnet110": 6.61, "preact_resnet110": 6.37, "resnet164": 5.93,
                "preact_resnet164": 5.46}
PREACT_CLAIM = ("pre-activation units (BN and ReLU before each convolution, nothing after the "
                "addition) lower the test error of ResNet-110 and ResNet-164 on CIFAR-10")
