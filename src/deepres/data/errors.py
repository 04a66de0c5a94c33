"""The error every data reader raises for a dataset that cannot be used as it is (a bottom
module: readers at every level raise it without importing each other)."""


class DatasetError(ValueError):
    """A dataset that cannot be used as it is; the message says what to change."""
