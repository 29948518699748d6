"""What a layer's config is, read from a safetensors file's JSON header."""
import json
import os

from ._native import FORMAT, IO, Error

MAX_HEADER = 100 * 1024 * 1024


def read_header(path):
    """The header as a dict (tensor name -> entry, "__metadata__" -> dict)."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            raw = f.read(8)
            if len(raw) < 8:
                raise Error(FORMAT, f"{path}: too short for a safetensors file")
            length = int.from_bytes(raw, "little")
            if length > min(size - 8, MAX_HEADER):
                raise Error(FORMAT, f"{path}: header length {length} does not fit the file")
            blob = f.read(length)
    except OSError as e:
        raise Error(IO, f"cannot read {path}: {e.strerror or e}") from e
    try:
        header = json.loads(blob)
    except ValueError as e:
        raise Error(FORMAT, f"{path}: the header is not JSON ({e})") from e
    if not isinstance(header, dict):
        raise Error(FORMAT, f"{path}: the header is not a JSON object")
    return header


def metadata_n_heads(header):
    """n_heads from __metadata__, or None."""
    value = (header.get("__metadata__") or {}).get("n_heads")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def layer_shape(path, header, prefix):
    """(input_dim, embed_dim, bias) from the tensors prefix + W_query.weight and .bias."""
    name = prefix + "W_query.weight"
    entry = header.get(name)
    if not isinstance(entry, dict):
        names = sorted(k for k in header if k != "__metadata__")
        shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        raise Error(FORMAT, f"{path}: no tensor {name!r} (the file has: {shown or 'none'})")
    shape = entry.get("shape")
    if not (isinstance(shape, list) and len(shape) == 2 and all(isinstance(n, int) for n in shape)):
        raise Error(FORMAT, f"{path}: {name} has shape {shape}, expected [embed_dim][input_dim]")
    return shape[1], shape[0], (prefix + "W_query.bias") in header
