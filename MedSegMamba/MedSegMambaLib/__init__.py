"""Slicer-side helpers of the MedSegMamba module: the child-process runner and scene helpers."""
