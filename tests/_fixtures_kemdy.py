"""Helpers of the KEMDy builder's tests (``test_kemdy``, ``test_kemdy_annotations``, ``test_kemdy_bio``)."""

from __future__ import annotations

import datasets


def example_by_id(ds: datasets.Dataset, segment_id: str) -> dict:
    """The example of ``ds`` whose ``id`` is ``segment_id``."""
    return ds[ds["id"].index(segment_id)]
