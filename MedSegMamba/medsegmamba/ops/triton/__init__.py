"""Private Triton kernels of the ops (imported lazily: triton is optional)."""
