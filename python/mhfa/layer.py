"""Context (one OpenCL device) and Layer (one MultiHeadFlashAttention module)."""
import ctypes
import operator
import os

import numpy as np

from . import _safetensors
from ._opencl import Device
from ._native import (DTYPES, FORMAT, INVALID_ARGUMENT, INVALID_SHAPE, Config, Error, Mask, check,
                      fns, text)

PROJECTIONS = ("W_query", "W_key", "W_val", "W_out")
INT_MAX = 2**31 - 1


def _c_int(name, value, status=INVALID_ARGUMENT):
    """value as a C int, or Error when it is not an integer or does not fit."""
    try:
        value = operator.index(value)
    except TypeError:
        raise Error(INVALID_ARGUMENT,
                    f"{name} must be an integer, not {type(value).__name__}") from None
    if not -INT_MAX - 1 <= value <= INT_MAX:
        raise Error(status, f"{name} = {value} does not fit a C int")
    return value


def _floats(a):
    return None if a is None else a.ctypes.data_as(ctypes.POINTER(ctypes.c_float))


def _float_array(name, value, ndim):
    """value as a C-contiguous float32 array of ndim dimensions."""
    a = np.asarray(value, dtype=np.float32)
    if a.ndim != ndim:
        raise Error(INVALID_SHAPE, f"{name} has {a.ndim} dimension(s), expected {ndim}")
    for i, n in enumerate(a.shape):
        _c_int(f"{name}.shape[{i}]", n, INVALID_SHAPE)
    return np.ascontiguousarray(a)


def _mask_struct(mask):
    """(mhfa_mask, the uint8 array it points into) for a bool or integer mask, 1 = masked."""
    m = np.asarray(mask)
    if m.dtype == np.bool_:
        m = np.ascontiguousarray(m).view(np.uint8)
    elif np.issubdtype(m.dtype, np.integer):
        m = np.ascontiguousarray(m != 0).view(np.uint8)
    else:
        raise Error(INVALID_ARGUMENT, f"mask must be bool or integer (True = masked out), "
                                      f"not {m.dtype}")
    if not 1 <= m.ndim <= 4:
        raise Error(INVALID_SHAPE, f"mask has {m.ndim} dimensions, expected 2, 3 or 4")
    dims = [_c_int(f"mask.shape[{i}]", n, INVALID_SHAPE) for i, n in enumerate(m.shape)]
    struct = Mask(m.ctypes.data_as(ctypes.POINTER(ctypes.c_ubyte)), m.ndim,
                  (ctypes.c_int * 4)(*(dims + [0] * (4 - len(dims)))))
    return struct, m


def _projection_index(name):
    if name in PROJECTIONS:
        return PROJECTIONS.index(name)
    raise ValueError(f"projection {name!r}: expected one of {', '.join(PROJECTIONS)}")


def _dtype_code(value):
    """mhfa_dtype of "float32", "float16", "bfloat16", or a numpy or torch dtype of those."""
    name = str(value).replace("torch.", "")  # a name, or a torch dtype such as torch.bfloat16
    if name not in DTYPES and not isinstance(value, str):
        try:
            name = np.dtype(value).name  # np.float16, np.dtype("float32")
        except TypeError:
            pass
    if name not in DTYPES:
        raise Error(INVALID_ARGUMENT, f"dtype {value!r} is none of {', '.join(DTYPES)}")
    return DTYPES[name]


def _tensor_array(tensor):
    """A torch tensor (or anything numpy takes) as a float32 numpy array, without importing torch."""
    if hasattr(tensor, "detach"):
        tensor = tensor.detach().cpu().float().numpy()
    return np.ascontiguousarray(tensor, dtype=np.float32)


class Context:
    """One OpenCL device with its queue and compiled kernels; layers on it keep it alive.

    device: a spec "PLATFORM[:DEVICE]" or an entry of mhfa.devices(), or None for MHFA_DEVICE,
    else the first GPU, else the first device."""

    def __init__(self, device=None):
        if isinstance(device, Device):
            device = device.spec
        handle = ctypes.c_void_p()
        spec = None if device is None else os.fsencode(device)
        status = fns.mhfa_context_create(spec, ctypes.byref(handle))
        if status != 0:
            raise Error(status, text(fns.mhfa_last_create_error()))
        self._handle = handle
        self._layers = 0
        self._closing = False
        self._destroy = fns.mhfa_context_destroy

    @classmethod
    def of(cls, device):
        """device itself when it is a Context, else a new Context for that spec."""
        return device if isinstance(device, Context) else cls(device)

    @property
    def handle(self):
        if self._handle is None:
            raise Error(INVALID_ARGUMENT, "the context is closed")
        return self._handle

    @property
    def device_name(self):
        return text(fns.mhfa_context_device_name(self.handle))

    def close(self):
        """Destroy the context now, or once the last layer on it is closed."""
        self._closing = True
        if self._layers == 0 and self._handle is not None:
            self._destroy(self._handle)
            self._handle = None

    def _attach(self):
        self.handle
        self._layers += 1

    def _detach(self):
        self._layers -= 1
        if self._closing:
            self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_handle", None) is not None:
            self._destroy(self._handle)
            self._handle = None


class Layer:
    """MultiHeadFlashAttention on an OpenCL device; numpy float32 in and out.

    dtype: how the device stores weights and activations ("float32", "float16" or "bfloat16", or
    such a numpy or torch dtype); arithmetic is float32, inputs and outputs float32 arrays."""

    def __init__(self, n_heads, input_dim, embed_dim, bias=True, attention_dropout=0.0,
                 store_attn_weights=False, device=None, dtype="float32"):
        context = Context.of(device)
        cfg = fns.mhfa_config_default(_c_int("n_heads", n_heads), _c_int("input_dim", input_dim),
                                      _c_int("embed_dim", embed_dim))
        cfg.bias = 1 if bias else 0
        cfg.attention_dropout = float(attention_dropout)
        cfg.store_attn_weights = 1 if store_attn_weights else 0
        cfg.dtype = _dtype_code(dtype)
        handle = ctypes.c_void_p()
        check(fns.mhfa_module_create(context.handle, ctypes.byref(cfg), ctypes.byref(handle)),
              context.handle)
        self._attach(context, handle)

    def _attach(self, context, handle):
        """Take ownership of a module handle created on context."""
        context._attach()
        self._context, self._handle = context, handle
        self._destroy = fns.mhfa_module_destroy
        cfg = Config()
        self._check(fns.mhfa_module_get_config(handle, ctypes.byref(cfg)))
        self.n_heads, self.input_dim, self.embed_dim = cfg.n_heads, cfg.input_dim, cfg.embed_dim
        self.bias = bool(cfg.bias)
        self.attention_dropout = cfg.attention_dropout
        self.store_attn_weights = bool(cfg.store_attn_weights)
        self.dtype = next(name for name, code in DTYPES.items() if code == cfg.dtype)
        self.training = False

    # ---- other ways to make one ----

    @classmethod
    def from_torch(cls, module, device=None, attention_dropout=0.0, store_attn_weights=False,
                   dtype=None):
        """A layer holding the weights of a torch module with W_query, W_key, W_val, W_out;
        dtype None: the module's own (float16 and bfloat16 modules store half on the device)."""
        missing = [n for n in PROJECTIONS + ("n_heads",) if not hasattr(module, n)]
        if missing:
            raise TypeError(f"{type(module).__name__} has no {', '.join(missing)}")
        linears = [getattr(module, n) for n in PROJECTIONS]
        embed_dim, input_dim = _tensor_array(linears[0].weight).shape
        if dtype is None:
            dtype = getattr(linears[0].weight, "dtype", "float32")
            dtype = dtype if str(dtype).replace("torch.", "") in DTYPES else "float32"
        layer = cls(module.n_heads, input_dim, embed_dim, linears[0].bias is not None,
                    attention_dropout, store_attn_weights, device, dtype)
        try:
            for name, lin in zip(PROJECTIONS, linears):
                bias = None if lin.bias is None else _tensor_array(lin.bias)
                layer.set_projection(name, _tensor_array(lin.weight), bias)
        except BaseException:
            layer.close()
            raise
        return layer

    @classmethod
    def load(cls, path, prefix="", device=None, n_heads=None, **options):
        """A layer from a safetensors file; n_heads from its metadata unless given.

        options: attention_dropout, store_attn_weights, dtype."""
        path, prefix = os.fspath(path), prefix or ""
        context = Context.of(device)
        if n_heads is None and not options:
            return cls._create_from_file(context, path, prefix)
        header = _safetensors.read_header(path)
        input_dim, embed_dim, bias = _safetensors.layer_shape(path, header, prefix)
        if n_heads is None:
            n_heads = _safetensors.metadata_n_heads(header)
            if n_heads is None:
                raise Error(FORMAT, f"{path} has no n_heads in its metadata: "
                                    "pass n_heads to mhfa.Layer.load")
        layer = cls(n_heads, input_dim, embed_dim, bias, device=context, **options)
        try:
            layer.load_weights(path, prefix)
        except BaseException:
            layer.close()
            raise
        return layer

    @classmethod
    def _create_from_file(cls, context, path, prefix):
        handle = ctypes.c_void_p()
        status = fns.mhfa_module_create_from_file(context.handle, os.fsencode(path),
                                                  prefix.encode(), ctypes.byref(handle))
        if status == FORMAT:
            message = text(fns.mhfa_context_error_message(context.handle))
            if _no_n_heads(path):
                message += "; from Python, pass n_heads to mhfa.Layer.load"
            raise Error(status, message)
        check(status, context.handle)
        layer = cls.__new__(cls)
        layer._attach(context, handle)
        return layer

    # ---- weights ----

    def load_weights(self, path, prefix=""):
        """Read the four projections from a safetensors file (tensors prefix + W_query.weight...)."""
        self._check(fns.mhfa_module_load(self.handle, os.fsencode(os.fspath(path)),
                                         (prefix or "").encode()))

    def save(self, path, prefix=""):
        """Write the projections and the config as a safetensors file."""
        self._check(fns.mhfa_module_save(self.handle, os.fsencode(os.fspath(path)),
                                         (prefix or "").encode()))

    def _projection_shape(self, name):
        return (self.embed_dim, self.embed_dim if name == "W_out" else self.input_dim)

    def set_projection(self, name, weight, bias=None):
        """Set one projection: weight [out][in] as nn.Linear stores it, bias [out] or None."""
        index = _projection_index(name)
        w = _float_array(f"{name}.weight", weight, 2)
        if w.shape != self._projection_shape(name):
            raise Error(INVALID_SHAPE, f"{name}.weight has shape {w.shape}, "
                                       f"expected {self._projection_shape(name)}")
        b = None if bias is None else _float_array(f"{name}.bias", bias, 1)
        if b is not None and b.shape != (self.embed_dim,):
            raise Error(INVALID_SHAPE, f"{name}.bias has shape {b.shape}, "
                                       f"expected ({self.embed_dim},)")
        self._check(fns.mhfa_module_set_projection(self.handle, index, _floats(w), _floats(b)))

    def get_projection(self, name):
        """(weight, bias) of one projection; bias is None when the layer has none."""
        index = _projection_index(name)
        w = np.empty(self._projection_shape(name), np.float32)
        b = np.empty(self.embed_dim, np.float32) if self.bias else None
        self._check(fns.mhfa_module_get_projection(self.handle, index, _floats(w), _floats(b)))
        return w, b

    def state_dict(self):
        """{"W_query.weight": array, "W_query.bias": array, ...} as PyTorch names them."""
        result = {}
        for name in PROJECTIONS:
            w, b = self.get_projection(name)
            result[name + ".weight"] = w
            if b is not None:
                result[name + ".bias"] = b
        return result

    def init_parameters(self, seed=0):
        """Xavier-uniform weights drawn from seed, as at creation."""
        self._check(fns.mhfa_module_init_parameters(self.handle, int(seed)))

    # ---- modes ----

    def train(self, seed=0):
        """Training mode: dropout acts (when attention_dropout > 0), replayed by seed."""
        self._check(fns.mhfa_module_set_training(self.handle, 1, int(seed)))
        self.training = True
        return self

    def eval(self):
        """Evaluation mode: no dropout."""
        self._check(fns.mhfa_module_set_training(self.handle, 0, 0))
        self.training = False
        return self

    # ---- forward ----

    def forward(self, q, h=None, mask=None):
        """out [B][Nq][E] for q [B][Nq][D_in], h [B][Nk][D_in] (None: self-attention)."""
        q = self._input("q", q)
        batch, n_query = q.shape[0], q.shape[1]
        graph_size = n_query
        if h is not None:
            h = self._input("h", h)
            if h.shape[0] != batch:
                raise Error(INVALID_SHAPE, f"h has batch {h.shape[0]}, q has {batch}")
            graph_size = h.shape[1]
        mask_struct, _mask_bytes = (None, None) if mask is None else _mask_struct(mask)
        out = np.empty((batch, n_query, self.embed_dim), np.float32)
        status = fns.mhfa_forward(self.handle, batch, n_query, graph_size, _floats(q), _floats(h),
                                  None if mask_struct is None else ctypes.byref(mask_struct),
                                  _floats(out))
        self._check(status)
        return out

    __call__ = forward

    def _input(self, name, value):
        a = _float_array(name, value, 3)
        if a.shape[2] != self.input_dim:
            raise Error(INVALID_SHAPE, f"{name} has last dimension {a.shape[2]}, "
                                       f"the layer's input_dim is {self.input_dim}")
        return a

    @property
    def last_attention(self):
        """(weights [B][H][Nq][Nk], mask as given or None) of the last forward.

        Needs store_attn_weights=True (the manual path)."""
        dims = (ctypes.c_int * 4)()
        self._check(fns.mhfa_module_last_attention(self.handle, dims, None, 0))
        weights = np.empty(tuple(dims), np.float32)
        self._check(fns.mhfa_module_last_attention(self.handle, dims, _floats(weights),
                                                   weights.size))
        ndim, mask_dims = ctypes.c_int(0), (ctypes.c_int * 4)()
        self._check(fns.mhfa_module_last_mask(self.handle, ctypes.byref(ndim), mask_dims, None, 0))
        if ndim.value == 0:
            return weights, None
        mask = np.empty(tuple(mask_dims[:ndim.value]), np.uint8)
        self._check(fns.mhfa_module_last_mask(
            self.handle, ctypes.byref(ndim), mask_dims,
            mask.ctypes.data_as(ctypes.POINTER(ctypes.c_ubyte)), mask.size))
        return weights, mask.astype(bool)

    # ---- information and lifetime ----

    @property
    def context(self):
        return self._context

    @property
    def device_name(self):
        return self._context.device_name

    @property
    def device_bytes(self):
        """Bytes of device memory the module holds (weights and scratch)."""
        size = ctypes.c_size_t(0)
        self._check(fns.mhfa_module_device_bytes(self.handle, ctypes.byref(size)))
        return size.value

    @property
    def handle(self):
        if getattr(self, "_handle", None) is None:
            raise Error(INVALID_ARGUMENT, "the layer is closed")
        return self._handle

    def _check(self, status):
        check(status, self._context.handle)

    def close(self):
        """Free the module (and let go of its context)."""
        if getattr(self, "_handle", None) is not None:
            self._destroy(self._handle)
            self._handle = None
            self._context._detach()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()

    def __repr__(self):
        state = "closed" if getattr(self, "_handle", None) is None else self.device_name
        return (f"mhfa.Layer(n_heads={self.n_heads}, input_dim={self.input_dim}, "
                f"embed_dim={self.embed_dim}, bias={self.bias}, "
                f"store_attn_weights={self.store_attn_weights}, dtype={self.dtype!r}; {state})")


def _no_n_heads(path):
    """True when path is a readable safetensors file whose metadata lacks n_heads."""
    try:
        return _safetensors.metadata_n_heads(_safetensors.read_header(path)) is None
    except Error:
        return False
