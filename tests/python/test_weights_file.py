"""Safetensors weights files: save, load, create from the file's metadata."""
import numpy as np
import pytest

import mhfa
import mhfa_reference as ref

N_HEADS, INPUT_DIM, EMBED_DIM = 2, 5, 6


@pytest.fixture
def layer(context, rng):
    layer = mhfa.Layer(N_HEADS, INPUT_DIM, EMBED_DIM, device=context)
    weights = ref.random_weights(rng, INPUT_DIM, EMBED_DIM)
    for name in mhfa.PROJECTIONS:
        layer.set_projection(name, weights[name + ".weight"], weights[name + ".bias"])
    yield layer
    layer.close()


def assert_same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sorted(sa) == sorted(sb)
    for key in sa:
        assert np.array_equal(sa[key], sb[key]), key


@pytest.mark.parametrize("prefix", ["", "encoder.layers.0.attn."])
def test_save_then_load(context, rng, layer, tmp_path, prefix):
    path = tmp_path / "layer.safetensors"
    layer.save(path, prefix=prefix)
    loaded = mhfa.Layer.load(path, prefix=prefix, device=context)
    assert (loaded.n_heads, loaded.input_dim, loaded.embed_dim, loaded.bias) \
        == (N_HEADS, INPUT_DIM, EMBED_DIM, True)
    assert_same_weights(layer, loaded)
    q = rng.standard_normal((2, 3, INPUT_DIM))
    assert np.array_equal(loaded(q), layer(q))
    header = mhfa._safetensors.read_header(str(path))
    assert header["__metadata__"]["format"] == "mhfa"
    assert header["__metadata__"]["n_heads"] == str(N_HEADS)


def test_load_with_options_and_into_a_layer(context, rng, layer, tmp_path):
    path = tmp_path / "layer.safetensors"
    layer.save(path)
    stored = mhfa.Layer.load(path, device=context, store_attn_weights=True)
    assert stored.store_attn_weights and stored.n_heads == N_HEADS
    assert_same_weights(layer, stored)
    other = mhfa.Layer(N_HEADS, INPUT_DIM, EMBED_DIM, device=context)
    other.load_weights(path)
    assert_same_weights(layer, other)


def test_file_without_metadata_needs_n_heads(context, rng, tmp_path):
    weights = ref.random_weights(rng, INPUT_DIM, EMBED_DIM, bias=False)
    tensors = {"enc.0." + k: v for k, v in weights.items()}
    tensors["enc.0.other.weight"] = np.ones(3, np.float32)  # ignored
    path = tmp_path / "sd.safetensors"
    ref.write_safetensors(path, tensors)
    with pytest.raises(mhfa.Error) as info:
        mhfa.Layer.load(path, prefix="enc.0.", device=context)
    assert info.value.status == "MHFA_ERROR_FORMAT" and "n_heads" in info.value.message
    layer = mhfa.Layer.load(path, prefix="enc.0.", n_heads=N_HEADS, device=context)
    assert not layer.bias and layer.n_heads == N_HEADS
    for name in mhfa.PROJECTIONS:
        assert np.array_equal(layer.get_projection(name)[0], weights[name + ".weight"])


@pytest.mark.parametrize("dtype", ["F64", "F16"])
def test_other_dtypes_are_converted(context, rng, tmp_path, dtype):
    weights = ref.random_weights(rng, INPUT_DIM, EMBED_DIM)
    path = tmp_path / "sd.safetensors"
    ref.write_safetensors(path, weights, {"n_heads": str(N_HEADS)}, dtype)
    layer = mhfa.Layer.load(path, device=context)
    numpy_type = {"F64": np.float64, "F16": np.float16}[dtype]
    for key, value in layer.state_dict().items():
        assert np.array_equal(value, weights[key].astype(numpy_type).astype(np.float32)), key


def test_missing_file(context, tmp_path):
    for call in (lambda: mhfa.Layer.load(tmp_path / "none.safetensors", device=context),
                 lambda: mhfa.Layer.load(tmp_path / "none.safetensors", n_heads=2,
                                         device=context)):
        with pytest.raises(mhfa.Error) as info:
            call()
        assert info.value.status == "MHFA_ERROR_IO" and "none.safetensors" in info.value.message


def test_wrong_file(context, layer, tmp_path):
    path = tmp_path / "layer.safetensors"
    layer.save(path, prefix="a.")
    with pytest.raises(mhfa.Error) as info:
        mhfa.Layer.load(path, prefix="b.", device=context)
    assert info.value.status == "MHFA_ERROR_FORMAT" and "b.W_query.weight" in info.value.message
    small = mhfa.Layer(N_HEADS, INPUT_DIM, 4, device=context)
    with pytest.raises(mhfa.Error) as info:
        small.load_weights(path, prefix="a.")
    assert info.value.status == "MHFA_ERROR_FORMAT" and "W_query" in info.value.message
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\xff" * 64)
    with pytest.raises(mhfa.Error) as info:
        layer.load_weights(garbage)
    assert info.value.status == "MHFA_ERROR_FORMAT"
