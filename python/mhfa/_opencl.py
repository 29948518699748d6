"""The OpenCL devices there are, listed through the ICD loader (libOpenCL.so.1)."""
import collections
import ctypes
import ctypes.util

Device = collections.namedtuple("Device", "spec platform device type")

CL_SUCCESS = 0
CL_PLATFORM_NAME = 0x0902
CL_DEVICE_TYPE_ALL = 0xFFFFFFFF
CL_DEVICE_TYPE = 0x1000
CL_DEVICE_NAME = 0x102B
DEVICE_TYPES = ((4, "GPU"), (2, "CPU"), (8, "accelerator"), (16, "custom"), (1, "default"))

_cl = None


def _opencl():
    """The ICD loader, with prototypes for the four calls used here."""
    global _cl
    if _cl is None:
        name = "libOpenCL.so.1"
        try:
            cl = ctypes.CDLL(name)
        except OSError:
            cl = ctypes.CDLL(ctypes.util.find_library("OpenCL") or name)
        u32, p, size = ctypes.c_uint32, ctypes.c_void_p, ctypes.c_size_t
        cl.clGetPlatformIDs.argtypes = [u32, ctypes.POINTER(p), ctypes.POINTER(u32)]
        cl.clGetDeviceIDs.argtypes = [p, ctypes.c_uint64, u32, ctypes.POINTER(p),
                                      ctypes.POINTER(u32)]
        cl.clGetPlatformInfo.argtypes = [p, u32, size, p, ctypes.POINTER(size)]
        cl.clGetDeviceInfo.argtypes = [p, u32, size, p, ctypes.POINTER(size)]
        for fn in (cl.clGetPlatformIDs, cl.clGetDeviceIDs, cl.clGetPlatformInfo,
                   cl.clGetDeviceInfo):
            fn.restype = ctypes.c_int32
        _cl = cl
    return _cl


def _ids(query, *args):
    """The handles a clGet*IDs call lists ([] when it fails or finds none)."""
    count = ctypes.c_uint32(0)
    if query(*args, 0, None, ctypes.byref(count)) != CL_SUCCESS or count.value == 0:
        return []
    ids = (ctypes.c_void_p * count.value)()
    if query(*args, count.value, ids, ctypes.byref(count)) != CL_SUCCESS:
        return []
    return list(ids[:count.value])


def _info_text(query, handle, param):
    """A string property of a platform or device."""
    size = ctypes.c_size_t(0)
    if query(handle, param, 0, None, ctypes.byref(size)) != CL_SUCCESS or size.value == 0:
        return ""
    buf = ctypes.create_string_buffer(size.value)
    if query(handle, param, size.value, buf, None) != CL_SUCCESS:
        return ""
    return buf.value.decode("utf-8", "replace").strip()


def _device_type(cl, device):
    bits = ctypes.c_uint64(0)
    if cl.clGetDeviceInfo(device, CL_DEVICE_TYPE, 8, ctypes.byref(bits), None) != CL_SUCCESS:
        return "unknown"
    return next((name for bit, name in DEVICE_TYPES if bits.value & bit), "unknown")


def devices():
    """[(spec, platform, device, type), ...]: spec "P:D" selects that device in mhfa."""
    try:
        cl = _opencl()
    except OSError:
        return []
    found = []
    for p, platform in enumerate(_ids(cl.clGetPlatformIDs)):
        platform_name = _info_text(cl.clGetPlatformInfo, platform, CL_PLATFORM_NAME)
        for d, device in enumerate(_ids(cl.clGetDeviceIDs, platform, CL_DEVICE_TYPE_ALL)):
            found.append(Device(f"{p}:{d}", platform_name,
                                _info_text(cl.clGetDeviceInfo, device, CL_DEVICE_NAME),
                                _device_type(cl, device)))
    return found
