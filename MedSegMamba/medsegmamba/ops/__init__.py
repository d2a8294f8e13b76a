"""Low-level operations: the Mamba S6 selective scan and its implementations."""

from .selective_scan import selective_scan, selective_scan_paths, selective_scan_ref

__all__ = ["selective_scan", "selective_scan_paths", "selective_scan_ref"]
