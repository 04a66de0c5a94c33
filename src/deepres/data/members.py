"""A sample's image that is not a file of its own (a member of a tar, a row of a Hugging Face
dataset): a ``str`` (so it goes wherever a sample's path goes, and messages name it) that
knows how to read its bytes and what identifies its content for the decode cache."""

from __future__ import annotations


class Member(str):
    """Base of the readers' member types (data/tarindex.py, data/hfdata.py)."""

    def read(self) -> bytes:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def identity(self) -> str:
        """What changes when the bytes may have changed (sizes, times, offsets)."""
        raise NotImplementedError  # pragma: no cover
