"""The models' option values, without torch (the command line reads them to build its flags)."""

SHORTCUTS = ("A", "B", "C")  # §4.1's shortcut options
# How convolution weights are initialised: the paper's reference (fan_in) or torchvision's.
CONV_INITS = ("fan_in", "fan_out")
