"""The package's surface: version, devices, errors, finding the library."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mhfa

SOURCE = Path(__file__).resolve().parents[2]
N_HEADS, INPUT_DIM, EMBED_DIM = 2, 5, 6


def test_version_is_the_library_s():
    header = (SOURCE / "include" / "mhfa.h").read_text()
    expected = re.search(r'#define MHFA_VERSION_STRING "([^"]+)"', header).group(1)
    assert mhfa.__version__ == expected


def test_devices():
    found = mhfa.devices()
    assert found, "no OpenCL device"
    for spec, platform, device, kind in found:
        assert re.fullmatch(r"\d+:\d+", spec) and platform and device
        assert kind in ("GPU", "CPU", "accelerator", "custom", "default", "unknown")
    first = found[0]
    with mhfa.Context(first.spec) as ctx:
        assert ctx.device_name == first.device
    with mhfa.Context(first) as ctx:
        assert ctx.device_name == first.device


def test_unknown_device():
    with pytest.raises(mhfa.Error) as info:
        mhfa.Context("no-such-platform-xyz")
    assert info.value.status == "MHFA_ERROR_DEVICE_NOT_FOUND"
    assert "platform 0" in info.value.message  # it lists the devices there are


def test_error_carries_status_and_message(context):
    with pytest.raises(mhfa.Error) as info:
        mhfa.Layer(4, INPUT_DIM, EMBED_DIM, device=context)  # 6 % 4 != 0
    error = info.value
    assert isinstance(error, RuntimeError)
    assert error.status == "MHFA_ERROR_INVALID_SHAPE" and error.code == -2
    assert error.description == "invalid shape"
    assert error.message and error.message in str(error) and error.status in str(error)


@pytest.fixture(scope="module")
def layer(context):
    with mhfa.Layer(N_HEADS, INPUT_DIM, EMBED_DIM, device=context) as layer:
        yield layer


def shape_error(call, *args, **kwargs):
    with pytest.raises(mhfa.Error) as info:
        call(*args, **kwargs)
    assert info.value.message
    return info.value


def test_bad_input_shapes(layer):
    q = np.ones((2, 3, INPUT_DIM), np.float32)
    for bad in (np.ones((3, INPUT_DIM)), np.ones((1, 2, 3, INPUT_DIM)),
                np.ones((2, 3, INPUT_DIM + 1))):
        assert shape_error(layer, bad).status == "MHFA_ERROR_INVALID_SHAPE"
    assert "input_dim" in shape_error(layer, q, np.ones((2, 4, 3))).message
    assert "batch" in shape_error(layer, q, np.ones((1, 4, INPUT_DIM))).message
    assert shape_error(layer, q[:, :0]).status == "MHFA_ERROR_INVALID_ARGUMENT"


def test_bad_masks(layer):
    q = np.ones((2, 3, INPUT_DIM), np.float32)
    for bad in (np.zeros((2, 4), bool), np.zeros((2, 3, 2), bool), np.zeros((3, 3), bool),
                np.zeros((2, 3, 3, 3), bool), np.zeros(3, bool)):
        error = shape_error(layer, q, mask=bad)
        assert error.status == "MHFA_ERROR_INVALID_SHAPE", bad.shape
    assert shape_error(layer, q, mask=np.zeros((1, 1, 1, 1, 3), bool)).status \
        == "MHFA_ERROR_INVALID_SHAPE"
    assert "bool" in shape_error(layer, q, mask=np.zeros((2, 3))).message


def test_bad_projections(layer):
    w = np.ones((EMBED_DIM, INPUT_DIM), np.float32)
    b = np.ones(EMBED_DIM, np.float32)
    assert "W_out" in shape_error(layer.set_projection, "W_out", w, b).message
    assert shape_error(layer.set_projection, "W_query", w, b[:-1]).status \
        == "MHFA_ERROR_INVALID_SHAPE"
    error = shape_error(layer.set_projection, "W_query", w, None)  # the layer has a bias
    assert error.status == "MHFA_ERROR_INVALID_ARGUMENT"
    with pytest.raises(ValueError, match="W_query"):
        layer.set_projection("query", w, b)


def test_bad_config(context):
    assert shape_error(mhfa.Layer, 2, 0, 4, device=context).status == "MHFA_ERROR_INVALID_ARGUMENT"
    assert shape_error(mhfa.Layer, 2, 4, 4, attention_dropout=1.0, device=context).status \
        == "MHFA_ERROR_INVALID_ARGUMENT"
    assert shape_error(mhfa.Layer, 2, 2**40, 4, device=context).status \
        == "MHFA_ERROR_INVALID_ARGUMENT"


def run_python(code, env):
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)


def test_library_found_under_the_install_prefix(tmp_path):
    """The package installed under PREFIX/lib/python3/site-packages finds PREFIX/lib."""
    library = Path(mhfa._native.lib._name).resolve()
    site = tmp_path / "lib" / "python3" / "site-packages"
    shutil.copytree(Path(mhfa.__file__).parent, site / "mhfa")
    shutil.copy(library, tmp_path / "lib" / "libmhfa.so.0")
    env = {k: v for k, v in os.environ.items() if k not in ("MHFA_LIBRARY", "PYTHONPATH")}
    env["PYTHONPATH"] = str(site)
    code = "import mhfa; print(mhfa._native.lib._name, mhfa.__version__)"
    result = run_python(code, env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(tmp_path / "lib" / "libmhfa.so.0"), mhfa.__version__]
    env["MHFA_LIBRARY"] = str(tmp_path / "missing.so")
    result = run_python(code, env)
    assert result.returncode != 0 and "MHFA_LIBRARY" in result.stderr
