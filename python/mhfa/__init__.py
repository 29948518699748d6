"""mhfa: PyTorch's MultiHeadFlashAttention layer on any OpenCL device, from numpy.

    import mhfa
    layer = mhfa.Layer.from_torch(torch_module, device="pocl")
    out = layer(q, h, mask)          # float32 [batch][n_query][embed_dim]

The library is libmhfa.so: MHFA_LIBRARY (a path) if set, else the one installed under the same
prefix as this package, else the system's."""
from ._native import Error, fns as _fns, text as _text
from ._opencl import Device, devices
from .layer import PROJECTIONS, Context, Layer

__version__ = _text(_fns.mhfa_version_string())

__all__ = ["Context", "Device", "Error", "Layer", "PROJECTIONS", "devices", "__version__"]

Error.__module__ = __name__
