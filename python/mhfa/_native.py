"""Loading libmhfa, its function prototypes, and the Error raised on any failed call."""
import ctypes
import ctypes.util
import glob
import os

LIBRARY_NAME = "libmhfa.so.0"

STATUS_NAMES = {
    0: "MHFA_SUCCESS",
    -1: "MHFA_ERROR_INVALID_ARGUMENT",
    -2: "MHFA_ERROR_INVALID_SHAPE",
    -3: "MHFA_ERROR_DEVICE_NOT_FOUND",
    -4: "MHFA_ERROR_BUILD_FAILED",
    -5: "MHFA_ERROR_OPENCL",
    -6: "MHFA_ERROR_OUT_OF_MEMORY",
    -7: "MHFA_ERROR_IO",
    -8: "MHFA_ERROR_FORMAT",
    -9: "MHFA_ERROR_UNSUPPORTED",
    -10: "MHFA_ERROR_NOT_AVAILABLE",
}
STATUS_CODES = {name: code for code, name in STATUS_NAMES.items()}
SUCCESS = 0
INVALID_ARGUMENT = STATUS_CODES["MHFA_ERROR_INVALID_ARGUMENT"]
INVALID_SHAPE = STATUS_CODES["MHFA_ERROR_INVALID_SHAPE"]
IO = STATUS_CODES["MHFA_ERROR_IO"]
FORMAT = STATUS_CODES["MHFA_ERROR_FORMAT"]


# ---- finding the library ----

def _prefix_candidates():
    """libmhfa.so.0 in the prefixes above this package (it is installed beside the library)."""
    here = os.path.dirname(os.path.abspath(__file__))
    ancestors = []
    for _ in range(5):
        here = os.path.dirname(here)
        ancestors.append(here)
    found = []
    for top in ancestors:
        for pattern in (LIBRARY_NAME, "lib*/" + LIBRARY_NAME, "lib*/*/" + LIBRARY_NAME):
            found += sorted(glob.glob(os.path.join(glob.escape(top), pattern)))
    return found


def _load_library():
    """MHFA_LIBRARY, else the install prefix, else the system's search path."""
    explicit = os.environ.get("MHFA_LIBRARY")
    if explicit:
        try:
            return ctypes.CDLL(explicit)
        except OSError as e:
            raise ImportError(f"mhfa: cannot load MHFA_LIBRARY={explicit}: {e}") from e
    tried = []
    system = ctypes.util.find_library("mhfa")
    for candidate in _prefix_candidates() + ([system] if system else []) + [LIBRARY_NAME]:
        try:
            return ctypes.CDLL(candidate)
        except OSError as e:
            tried.append(f"{candidate} ({e})")
    raise ImportError("mhfa: libmhfa not found; set MHFA_LIBRARY to the path of libmhfa.so. "
                      "Tried: " + "; ".join(tried))


lib = _load_library()


# ---- types of include/mhfa.h ----

ATTENTION_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)


class Config(ctypes.Structure):
    """struct mhfa_config, field for field."""
    _fields_ = [
        ("n_heads", ctypes.c_int),
        ("input_dim", ctypes.c_int),
        ("embed_dim", ctypes.c_int),
        ("val_dim", ctypes.c_int),
        ("key_dim", ctypes.c_int),
        ("bias", ctypes.c_int),
        ("attention_dropout", ctypes.c_float),
        ("store_attn_weights", ctypes.c_int),
        ("attention_fn", ATTENTION_FN),
        ("attention_fn_data", ctypes.c_void_p),
        ("dtype", ctypes.c_int),
        ("allow_reduced_math", ctypes.c_int),
    ]


# enum mhfa_dtype, by the names numpy and torch give the types
DTYPES = {"float32": 0, "float16": 1, "bfloat16": 2}


class Mask(ctypes.Structure):
    """struct mhfa_mask."""
    _fields_ = [
        ("data", ctypes.POINTER(ctypes.c_ubyte)),
        ("ndim", ctypes.c_int),
        ("dims", ctypes.c_int * 4),
    ]


_p = ctypes.c_void_p
_int = ctypes.c_int
_str = ctypes.c_char_p
_floats = ctypes.POINTER(ctypes.c_float)
_bytes = ctypes.POINTER(ctypes.c_ubyte)
_ints = ctypes.POINTER(ctypes.c_int)

_PROTOTYPES = {
    "mhfa_version_string": (_str, []),
    "mhfa_status_string": (_str, [_int]),
    "mhfa_context_create": (_int, [_str, ctypes.POINTER(_p)]),
    "mhfa_context_destroy": (None, [_p]),
    "mhfa_context_device_name": (_str, [_p]),
    "mhfa_context_error_message": (_str, [_p]),
    "mhfa_last_create_error": (_str, []),
    "mhfa_config_default": (Config, [_int, _int, _int]),
    "mhfa_module_create": (_int, [_p, ctypes.POINTER(Config), ctypes.POINTER(_p)]),
    "mhfa_module_destroy": (None, [_p]),
    "mhfa_module_init_parameters": (_int, [_p, ctypes.c_uint64]),
    "mhfa_module_device_bytes": (_int, [_p, ctypes.POINTER(ctypes.c_size_t)]),
    "mhfa_module_get_config": (_int, [_p, ctypes.POINTER(Config)]),
    "mhfa_module_set_projection": (_int, [_p, _int, _floats, _floats]),
    "mhfa_module_get_projection": (_int, [_p, _int, _floats, _floats]),
    "mhfa_module_set_training": (_int, [_p, _int, ctypes.c_uint64]),
    "mhfa_forward": (_int, [_p, _int, _int, _int, _floats, _floats, ctypes.POINTER(Mask),
                            _floats]),
    "mhfa_module_last_attention": (_int, [_p, _ints, _floats, ctypes.c_size_t]),
    "mhfa_module_last_mask": (_int, [_p, _ints, _ints, _bytes, ctypes.c_size_t]),
    "mhfa_module_load": (_int, [_p, _str, _str]),
    "mhfa_module_save": (_int, [_p, _str, _str]),
    "mhfa_module_create_from_file": (_int, [_p, _str, _str, ctypes.POINTER(_p)]),
}


class _Missing:
    """Stands for a function this build of the library lacks; calling it raises Error."""

    def __init__(self, name):
        self.name = name

    def __call__(self, *args):
        raise Error(STATUS_CODES["MHFA_ERROR_UNSUPPORTED"],
                    f"{self.name} is not in this libmhfa ({lib._name})")


class _Functions:
    """The library's functions with their prototypes set, as attributes."""

    def __init__(self):
        for name, (restype, argtypes) in _PROTOTYPES.items():
            try:
                fn = getattr(lib, name)
            except AttributeError:
                setattr(self, name, _Missing(name))
                continue
            fn.restype, fn.argtypes = restype, argtypes
            setattr(self, name, fn)


fns = _Functions()


def text(raw):
    """A C string from the library as str ("" for NULL)."""
    return raw.decode("utf-8", "replace") if raw else ""


class Error(RuntimeError):
    """A failed mhfa call: .status is the status's name, .code its value, .message the reason."""

    def __init__(self, code, message=""):
        self.code = int(code)
        self.status = STATUS_NAMES.get(self.code, f"MHFA_STATUS_{self.code}")
        self.description = text(fns.mhfa_status_string(self.code))
        self.message = message
        summary = f"{self.status} ({self.description})"
        super().__init__(f"{summary}: {message}" if message else summary)


def check(status, context_handle):
    """Raise Error with the context's message unless status is MHFA_SUCCESS."""
    if status != SUCCESS:
        raise Error(status, text(fns.mhfa_context_error_message(context_handle)))
