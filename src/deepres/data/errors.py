"""The error every data reader raises for a dataset that cannot be used as it is (a bottom
module: readers at every level raise it without importing each other)."""


class DatasetError(ValueError):
    """A dataset that cannot be used as it is; the message says what to change."""


# Class numbers name the classes when a dataset gives no names (shards without classes.json,
# an integer label column): 0..N-1 for the largest label N-1. Beyond this many classes a label
# is a mistake (ImageNet-21k has 21,841 classes), not a reason to build 10^12 names.
MAX_CLASSES = 1_000_000


def check_label(label: int, where: str) -> int:
    """``label`` if it is a class number deepres can hold, else a DatasetError naming
    ``where``."""
    if not 0 <= label < MAX_CLASSES:
        shown = str(label) if len(str(label)) <= 20 else str(label)[:20] + "..."
        raise DatasetError(f"{where}: the label {shown} is not a class number from 0 to "
                           f"{MAX_CLASSES - 1:,}; fix the label (or name the classes in "
                           "classes.json)")
    return label
