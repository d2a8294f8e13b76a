"""Run the Triton kernels on a CPU through Triton's interpreter (the tests, benchmark smoke runs).

`enable()` must run before triton is first imported: TRITON_INTERPRET is read at import.
"""

import os


def interpreting() -> bool:
    """Whether Triton runs its kernels through the interpreter (TRITON_INTERPRET=1)."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def enable() -> None:
    """Set TRITON_INTERPRET=1 and make the interpreter work with numpy >= 2.4 (once)."""
    os.environ["TRITON_INTERPRET"] = "1"
    import triton.runtime.interpreter as interp

    if getattr(interp, "_medsegmamba_patched", False):
        return
    original = interp._patch_lang_tensor

    def patch_lang_tensor(tensor, scope):
        # numpy >= 2.4 refuses int() of a 1-element 1-D array, which the interpreter does for loop bounds
        original(tensor, scope)
        scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.reshape(-1)[0]))

    interp._patch_lang_tensor = patch_lang_tensor
    interp._medsegmamba_patched = True
