"""Gluon kernels run on the CPU, one program after another, on torch tensors: their slow twin.

Gluon has no interpreter (TRITON_INTERPRET runs triton.language only), so scan_gluon.py's kernels
could otherwise be run only on a GPU. `emulate(kernel)` gives a stand-in launched like the kernel,
`emulate(kernel)[grid](*args, num_warps=4, **constexprs)`. It runs the kernel's own Python body
once per program, with `gl` (and `tl`, in the @triton.jit helpers it calls) replaced by
whole-tensor torch operations on the CPU.

What it checks:
- the arithmetic;
- the addressing: every load and store of global memory is checked against the bounds of its
  tensor (a GPU reads past the end silently);
- shared memory's addressing: buffers follow Gluon's unswizzled layouts, so a buffer written
  through one view (`_reinterpret`) and read through another sees the bytes a GPU would. They
  start as NaN, so reading a row nobody wrote spoils the result instead of reading stale values.

What it does not check:
- layouts: each operation acts on the whole tensor, whichever threads hold its elements;
- synchronisation between a program's threads: operations run one after another, so a missing
  barrier goes unnoticed. (Triton's compiler puts barriers between conflicting shared-memory
  accesses itself: built without their explicit barriers, scan_gluon.py's kernels keep the same
  ones, benchmarks/results/2026-12-08-s27/.)

Those need the GPU tests (`pytest -m gpu`). It is slow (a Python call per operation), which suits
the small shapes of the tests.
"""

import functools
import inspect
import itertools
import math

import torch
import triton.language as tl
from triton.experimental.gluon import language as gl
from triton.runtime.jit import ConstexprFunction, JITFunction

# the program being run: its ids, the grid and the launch's warps (set by _Launch.__call__)
_program = {"pid": (0, 0, 0), "grid": (1, 1, 1), "num_warps": 4}


class EmulationError(RuntimeError):
    """A kernel did something a GPU would not catch: an access out of bounds, an unknown operation."""


def _v(x):
    """The torch value (or Python number) behind an emulated operand."""
    if isinstance(x, Tensor):
        return x.v
    if isinstance(x, Pointer):
        raise EmulationError("emulate: a pointer used as a value")
    return x


def _tensor(x, like=None):
    """x as a torch tensor (a Python number takes `like`'s dtype, as Triton's scalars do)."""
    x = _v(x)
    if isinstance(x, torch.Tensor):
        return x
    if like is not None and not isinstance(x, bool):
        return torch.tensor(x, dtype=like.dtype)
    return torch.tensor(x)


class Tensor:
    """A block of values: a torch tensor with Triton's operators."""

    __slots__ = ("v",)

    def __init__(self, v):
        self.v = v

    @property
    def shape(self):
        return list(self.v.shape)

    @property
    def dtype(self):
        return self.v.dtype

    def to(self, dtype, **_):
        return Tensor(self.v.to(dtype))

    def __getitem__(self, index):  # x[:, None]: expand_dims
        return Tensor(self.v[index])

    def __repr__(self):
        return f"Tensor({self.v!r})"


def _binary(op, reflected=False):
    def method(self, other):
        if isinstance(other, Pointer):
            return NotImplemented
        a, b = (other, self) if reflected else (self, other)
        return Tensor(op(_v(a), _v(b)))
    return method


def _int_or_float(int_op, float_op):
    """Triton's integer // and % truncate (C's); torch's floor."""
    def op(a, b):
        ints = all(not (isinstance(x, torch.Tensor) and x.is_floating_point()) and not isinstance(x, float)
                   for x in (a, b))
        return int_op(_tensor(a), _tensor(b)) if ints else float_op(a, b)
    return op


_floordiv = _int_or_float(lambda a, b: torch.div(a, b, rounding_mode="trunc"),
                          lambda a, b: torch.div(_tensor(a), _tensor(b), rounding_mode="floor"))
_mod = _int_or_float(torch.fmod, lambda a, b: torch.fmod(_tensor(a), _tensor(b)))

for _name, _op in (("add", lambda a, b: a + b), ("sub", lambda a, b: a - b), ("mul", lambda a, b: a * b),
                   ("truediv", lambda a, b: a / b), ("floordiv", _floordiv), ("mod", _mod),
                   ("and", lambda a, b: a & b), ("or", lambda a, b: a | b), ("xor", lambda a, b: a ^ b),
                   ("lshift", lambda a, b: a << b), ("rshift", lambda a, b: a >> b)):
    setattr(Tensor, f"__{_name}__", _binary(_op))
    setattr(Tensor, f"__r{_name}__", _binary(_op, reflected=True))
for _name, _op in (("lt", lambda a, b: a < b), ("le", lambda a, b: a <= b), ("gt", lambda a, b: a > b),
                   ("ge", lambda a, b: a >= b), ("eq", lambda a, b: a == b), ("ne", lambda a, b: a != b)):
    setattr(Tensor, f"__{_name}__", _binary(_op))
Tensor.__neg__ = lambda self: Tensor(-self.v)
Tensor.__invert__ = lambda self: Tensor(~self.v)
Tensor.__hash__ = None


class Pointer:
    """A block of addresses into one tensor: its flat storage from the tensor's first element,
    and element offsets (a number, or a torch tensor of them)."""

    __slots__ = ("buf", "off", "name")

    def __init__(self, buf, off, name):
        self.buf, self.off, self.name = buf, off, name

    @classmethod
    def of(cls, t: torch.Tensor, name: str) -> "Pointer":
        if t.device.type != "cpu":
            raise EmulationError(f"emulate: argument {name} is on {t.device}; the emulator runs on the CPU")
        size = t.untyped_storage().nbytes() // t.element_size() - t.storage_offset()
        return cls(torch.as_strided(t, (size,), (1,), t.storage_offset()), 0, name)

    def __add__(self, other):
        return Pointer(self.buf, self.off + _v(other), self.name)

    __radd__ = __add__

    def addresses(self, mask, what):
        """(offsets, mask) broadcast together; the unmasked offsets checked against the tensor."""
        off = _tensor(self.off).to(torch.int64)
        ok = torch.ones((), dtype=torch.bool) if mask is None else _tensor(mask).to(torch.bool)
        off, ok = torch.broadcast_tensors(off, ok)
        used = off[ok]
        if used.numel() and (used.min() < 0 or used.max() >= self.buf.numel()):
            raise EmulationError(f"emulate: {what} of {self.name} at offsets {used.min().item()}..{used.max().item()}, "
                                 f"outside its {self.buf.numel()} elements")
        return off, ok


def load(pointer, mask=None, other=None, **_):
    off, ok = pointer.addresses(mask, "load")
    if pointer.buf.numel():
        values = pointer.buf[torch.where(ok, off, 0)]
    else:  # every lane masked (checked above)
        values = torch.zeros(off.shape, dtype=pointer.buf.dtype)
    if mask is not None:
        # masked lanes without `other` are undefined on a GPU: NaN here, so a use of them shows
        fill = other if other is not None else (math.nan if values.is_floating_point() else 0)
        values = torch.where(ok, values, _tensor(fill, values).to(values.dtype))
    return Tensor(values)


def store(pointer, value, mask=None, **_):
    off, ok = pointer.addresses(mask, "store")
    off, value, ok = torch.broadcast_tensors(off, _tensor(value).to(pointer.buf.dtype), ok)
    pointer.buf[off[ok]] = value[ok]


def atomic_add(pointer, value, mask=None, **_):
    off, ok = pointer.addresses(mask, "atomic_add")
    off, value, ok = torch.broadcast_tensors(off, _tensor(value).to(pointer.buf.dtype), ok)
    pointer.buf.index_add_(0, off[ok], value[ok])


class Layout:
    """A layout as the kernel names it: layouts place elements on threads, which the emulator does
    not model, except a shared layout's `order` (fastest dimension first), which places bytes."""

    def __init__(self, kind, *args, **kwargs):
        self.kind, self.args, self.kwargs = kind, args, kwargs

    def order(self):
        if self.kind != "SwizzledSharedLayout":
            raise EmulationError(f"emulate: shared memory with a {self.kind} is not emulated")
        vec, per_phase, max_phase, order = (list(self.args) + [None] * 4)[:4]
        order = self.kwargs.get("order", order)
        if self.kwargs.get("max_phase", max_phase) != 1:
            raise EmulationError("emulate: swizzled shared memory (max_phase > 1) is not emulated")
        return list(order)


def _strides(shape, layout):
    """Element strides of an unswizzled shared buffer: the dimensions `layout.order` names
    (the trailing ones), fastest first, then any leading ones, outermost (a view of one rank more
    than its layout, whose `.index(i)` picks a row)."""
    order = layout.order()
    lead = len(shape) - len(order)
    if lead < 0 or sorted(order) != list(range(len(order))):
        raise EmulationError(f"emulate: shared layout order {order} for shape {list(shape)}")
    strides, step = [0] * len(shape), 1
    for d in [lead + o for o in order] + list(range(lead - 1, -1, -1)):
        strides[d], step = step, step * shape[d]
    return strides


class Shared:
    """A view of a shared-memory allocation: flat float storage, an offset and strides."""

    def __init__(self, buf, offset, shape, strides):
        self.buf, self.offset, self.shape, self.strides = buf, offset, list(shape), list(strides)
        last = offset + sum((n - 1) * s for n, s in zip(self.shape, self.strides))
        if offset < 0 or last >= buf.numel():
            raise EmulationError(f"emulate: shared view {self.shape} at {offset} outside its {buf.numel()} elements")

    def _view(self):
        return torch.as_strided(self.buf, self.shape, self.strides, self.offset)

    def index(self, i):
        i = int(_v(i))
        if not 0 <= i < self.shape[0]:
            raise EmulationError(f"emulate: shared row {i} of {self.shape[0]}")
        return Shared(self.buf, self.offset + i * self.strides[0], self.shape[1:], self.strides[1:])

    def load(self, layout=None):
        return Tensor(self._view().clone())

    def store(self, value):
        value = _tensor(value)
        if list(value.shape) != self.shape:
            raise EmulationError(f"emulate: storing a {list(value.shape)} block in a shared {self.shape}")
        self._view().copy_(value)

    def _reinterpret(self, dtype, shape, layout):
        if dtype != self.buf.dtype:
            raise EmulationError(f"emulate: shared memory of {self.buf.dtype} seen as {dtype}")
        return Shared(self.buf, self.offset, shape, _strides(shape, layout))


def allocate_shared_memory(dtype, shape, layout):
    fill = math.nan if dtype.is_floating_point else 0
    return Shared(torch.full((math.prod(shape),), fill, dtype=dtype), 0, shape, _strides(shape, layout))


def _like(a, b):
    """The tensor whose dtype a Python number beside it takes (Triton's scalars follow the block's)."""
    return _v(a) if isinstance(a, Tensor) else _v(b) if isinstance(b, Tensor) else None


def _both(torch_op, python_op):
    """An elementwise function of two operands that stays a Python number on Python numbers
    (loop bounds), as Triton folds them."""
    def op(a, b, *_, **__):
        like = _like(a, b)
        if like is None:
            return python_op(a, b)
        return Tensor(torch_op(_tensor(a, like), _tensor(b, like)))
    return op


def _unary(torch_op):
    def op(x, *_, **__):
        x = _tensor(x)
        return Tensor(torch_op(x if x.is_floating_point() else x.float()))
    return op


def _reduce(torch_op):
    def op(x, axis=None, keep_dims=False, **_):
        x = _tensor(x)
        if axis is None:
            return Tensor(torch_op(x.reshape(-1), 0))
        return Tensor(torch_op(x, axis, keepdim=keep_dims))
    return op


# inline PTX the kernels use, and its CPU equivalent
_ASM = {"ex2.approx": torch.exp2}


def _inline_asm_elementwise(asm, constraints, args, dtype, is_pure, pack, **_):
    for prefix, op in _ASM.items():
        if asm.lstrip().startswith(prefix):
            return Tensor(op(*[_tensor(a) for a in args]).to(dtype))
    raise EmulationError(f"emulate: no CPU equivalent of inline asm {asm!r}")


def _program_id(axis):
    return Tensor(torch.tensor(_program["pid"][axis], dtype=torch.int32))


def _num_programs(axis):
    return Tensor(torch.tensor(_program["grid"][axis], dtype=torch.int32))


def _where(condition, a, b):
    like = _like(a, b)
    return Tensor(torch.where(_tensor(condition).to(torch.bool), _tensor(a, like), _tensor(b, like)))


def _cdiv(a, b):
    return -(-a // b) if not isinstance(a, Tensor) and not isinstance(b, Tensor) else (a + b - 1) // b


def _namespace():
    """The `gl` (and `tl`) the emulated functions see: the operations scan_gluon.py's kernels (and
    the @triton.jit helpers they call) use. Another kernel may need more."""
    ns = {
        # types and constants
        "constexpr": lambda x: x, "float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
        "float64": torch.float64, "int1": torch.bool, "int8": torch.int8, "int16": torch.int16,
        "int32": torch.int32, "int64": torch.int64, "uint8": torch.uint8,
        # the program
        "program_id": _program_id, "num_programs": _num_programs, "num_warps": lambda: _program["num_warps"],
        "static_range": lambda *a, **_: range(*a),
        # gl.thread_barrier in Triton 3.6, gl.barrier since
        "thread_barrier": lambda: None, "barrier": lambda *a, **_: None,
        # memory
        "load": load, "store": store, "atomic_add": atomic_add, "allocate_shared_memory": allocate_shared_memory,
        # blocks
        "arange": lambda start, end, layout=None, **_: Tensor(torch.arange(start, end, dtype=torch.int32)),
        "zeros": lambda shape, dtype, layout=None, **_: Tensor(torch.zeros(list(shape), dtype=dtype)),
        "convert_layout": lambda x, layout=None, **_: x,
        "reshape": lambda x, shape, *_, **__: Tensor(_tensor(x).reshape(list(shape))),
        "permute": lambda x, dims, *_, **__: Tensor(_tensor(x).permute(list(dims))),
        "where": _where, "cdiv": _cdiv,
        "minimum": _both(torch.minimum, min), "maximum": _both(torch.maximum, max),
        "sum": _reduce(torch.sum), "exp": _unary(torch.exp), "log": _unary(torch.log),
        "inline_asm_elementwise": _inline_asm_elementwise,
    }
    for kind in ("BlockedLayout", "SliceLayout", "SwizzledSharedLayout"):
        ns[kind] = functools.partial(Layout, kind)
    return type("gl", (), {k: staticmethod(v) if callable(v) and not isinstance(v, type) else v
                           for k, v in ns.items()})


_GL = _namespace()
_LANG_MODULES = (gl, tl)
# id(JIT function) -> (it, its emulated Python function); id(a module's globals) -> (them, the emulated
# functions' globals). Each entry holds its key's object, so the id cannot be reused by another.
_stand_ins = {}
_module_globals = {}


def _builtin_names():
    """id -> name of the Gluon and Triton builtins a kernel may keep under its own name
    (`_barrier = gl.thread_barrier`)."""
    names = {}
    for module in _LANG_MODULES:
        for name in dir(module):
            if hasattr(_GL, name):
                names[id(getattr(module, name))] = name
    return names


_BUILTINS = _builtin_names()


def _stand_in_value(value):
    """What an emulated function sees for a value of its module's globals."""
    if any(value is module for module in _LANG_MODULES):
        return _GL
    if isinstance(value, ConstexprFunction):
        return value.fn
    if isinstance(value, JITFunction):
        return _stand_in(value)
    if isinstance(value, tl.constexpr):
        return value.value
    if id(value) in _BUILTINS and callable(value):
        return getattr(_GL, _BUILTINS[id(value)])
    return value


def _stand_in(jit_fn):
    """The Python function of a @gluon.jit or @triton.jit function, rebound to emulated globals."""
    key = id(jit_fn)
    if key not in _stand_ins:
        fn = jit_fn.fn
        module_key = id(fn.__globals__)
        fresh = module_key not in _module_globals
        env = _module_globals.setdefault(module_key, (fn.__globals__, {}))[1]
        stand_in = type(fn)(fn.__code__, env, fn.__name__, fn.__defaults__, fn.__closure__)
        stand_in.__kwdefaults__ = fn.__kwdefaults__
        _stand_ins[key] = (jit_fn, stand_in)
        if fresh:  # filled after the entry exists, so functions that call each other find one another
            env.update({name: _stand_in_value(value) for name, value in fn.__globals__.items()})
    return _stand_ins[key][1]


class _Launch:
    def __init__(self, kernel, grid):
        self.kernel, self.grid = kernel, grid

    def __call__(self, *args, num_warps=4, num_stages=None, num_ctas=1, maxnreg=None, **kwargs):
        signature = inspect.signature(self.kernel.fn)
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        values = {name: Pointer.of(v, name) if isinstance(v, torch.Tensor) else v
                  for name, v in bound.arguments.items()}
        grid = self.grid(values) if callable(self.grid) else self.grid
        grid = tuple(int(g) for g in grid) + (1,) * (3 - len(grid))
        fn = _stand_in(self.kernel)
        saved = dict(_program)
        try:
            for pid in itertools.product(*(range(g) for g in grid)):
                _program.update(pid=pid, grid=grid, num_warps=num_warps)
                fn(**values)
        finally:
            _program.update(saved)


class emulate:
    """`emulate(kernel)[grid](*args, num_warps=..., **constexprs)` runs a @gluon.jit kernel on the CPU."""

    def __init__(self, kernel):
        if not isinstance(kernel, JITFunction):
            raise TypeError(f"emulate: {kernel!r} is not a @gluon.jit or @triton.jit kernel")
        self.kernel = kernel

    def __getitem__(self, grid):
        return _Launch(self.kernel, grid)

    def __repr__(self):
        return f"emulate({self.kernel.fn.__name__})"


__all__ = ["emulate", "EmulationError"]
