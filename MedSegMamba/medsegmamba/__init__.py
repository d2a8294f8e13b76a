"""MedSegMamba: subcortical segmentation of T1 brain MRI with a 3D CNN-Mamba network."""

__version__ = "0.1.0"
