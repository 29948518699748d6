"""mhfa.Layer's forward against a float64 numpy evaluation of the layer."""
import numpy as np
import pytest

import mhfa
import mhfa_reference as ref

# One layer shape for most tests (the device compiles kernels per shape): odd sizes, head_dim 3.
N_HEADS, INPUT_DIM, EMBED_DIM = 2, 5, 6


def assert_close(out, expected):
    bound = 1e-5 * max(1.0, float(np.abs(expected).max()))
    error = float(np.abs(out.astype(np.float64) - expected).max())
    assert error <= bound, f"max |out - ref| = {error:.3g} > {bound:.3g}"


def make_layer(context, rng, store=False, bias=True, shape=(N_HEADS, INPUT_DIM, EMBED_DIM)):
    n_heads, input_dim, embed_dim = shape
    layer = mhfa.Layer(n_heads, input_dim, embed_dim, bias=bias, store_attn_weights=store,
                       device=context)
    weights = ref.random_weights(rng, input_dim, embed_dim, bias)
    for name in mhfa.PROJECTIONS:
        layer.set_projection(name, weights[name + ".weight"], weights.get(name + ".bias"))
    return layer, weights


def random_mask(rng, dims, dead_rows=True):
    mask = rng.random(dims) < 0.3
    if dead_rows and len(dims) > 2:
        mask.reshape(-1, dims[-1])[1::3] = True
    return mask


# name: (batch, n_query, graph_size or None for self-attention, mask dims or None)
CASES = {
    "self_nomask": (2, 7, None, None),
    "self_mask2": (3, 9, None, (3, 9)),
    "cross_nomask": (2, 5, 11, None),
    "cross_mask2_dead_batch": (2, 4, 6, (2, 6)),
    "cross_mask3": (2, 5, 11, (2, 5, 11)),
    "cross_mask3_bcast_batch": (3, 4, 10, (1, 4, 10)),
    "cross_mask4": (2, 6, 13, (2, N_HEADS, 6, 13)),
    "cross_mask4_bcast": (3, 4, 10, (3, 1, 4, 10)),
    "self_mask4_heads_only": (2, 11, None, (1, N_HEADS, 1, 11)),
    "decoder_step_mask2": (3, 1, 21, (3, 21)),
    "decoder_step_mask4": (2, 1, 15, (2, N_HEADS, 1, 15)),
}


@pytest.mark.parametrize("store", [False, True], ids=["flash", "manual"])
@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_forward_matches_reference(context, rng, case, store):
    batch, n_query, graph_size, mask_dims = case
    layer, weights = make_layer(context, rng, store)
    q = rng.standard_normal((batch, n_query, INPUT_DIM))
    h = None if graph_size is None else rng.standard_normal((batch, graph_size, INPUT_DIM))
    mask = None if mask_dims is None else random_mask(rng, mask_dims)
    if mask is not None and mask.ndim == 2 and batch > 1:
        mask[1] = True  # one batch entry whose every key is masked
    expected, _ = ref.forward(weights, N_HEADS, q, h, mask)
    out = layer(q, h, mask)
    assert out.dtype == np.float32 and out.shape == (batch, n_query, EMBED_DIM)
    assert_close(out, expected)


def test_fully_masked_rows_give_the_output_bias(context, rng):
    layer, weights = make_layer(context, rng)
    q = rng.standard_normal((2, 3, INPUT_DIM))
    out = layer(q, rng.standard_normal((2, 4, INPUT_DIM)), np.ones((2, 4), bool))
    np.testing.assert_allclose(out, np.broadcast_to(weights["W_out.bias"], out.shape), atol=1e-6)


def test_no_bias_and_other_head_size(context, rng):
    layer, weights = make_layer(context, rng, bias=False, shape=(3, 7, 48))
    assert not layer.bias
    q, h = rng.standard_normal((2, 5, 7)), rng.standard_normal((2, 9, 7))
    mask = random_mask(rng, (2, 5, 9))
    expected, _ = ref.forward(weights, 3, q, h, mask)
    assert_close(layer(q, h, mask), expected)
    assert layer.get_projection("W_key")[1] is None


def test_inputs_are_converted(context, rng):
    layer, weights = make_layer(context, rng)
    q = rng.standard_normal((2, 4, INPUT_DIM))
    expected, _ = ref.forward(weights, N_HEADS, q)
    assert_close(layer(q.tolist()), expected)  # nested lists, float64
    assert_close(layer(np.asfortranarray(q)), expected)  # not C-contiguous
    assert_close(layer(q.transpose(1, 0, 2).copy().transpose(1, 0, 2)), expected)
    mask = random_mask(rng, (2, 4))
    expected, _ = ref.forward(weights, N_HEADS, q, None, mask)
    assert_close(layer(q, mask=mask.astype(np.uint8)), expected)
    assert_close(layer(q, mask=mask.astype(np.int64) * 7), expected)


def test_last_attention(context, rng):
    layer, weights = make_layer(context, rng, store=True)
    q, h = rng.standard_normal((2, 5, INPUT_DIM)), rng.standard_normal((2, 11, INPUT_DIM))
    mask = random_mask(rng, (2, 5, 11))
    _, expected = ref.forward(weights, N_HEADS, q, h, mask)
    layer(q, h, mask)
    attn, last_mask = layer.last_attention
    assert attn.shape == (2, N_HEADS, 5, 11) and attn.dtype == np.float32
    np.testing.assert_allclose(attn, expected, rtol=0, atol=1e-5)
    assert last_mask.dtype == bool and np.array_equal(last_mask, mask)
    layer(q)
    attn, last_mask = layer.last_attention
    assert attn.shape == (2, N_HEADS, 5, 5) and last_mask is None


def test_last_attention_not_available(context, rng):
    layer, _ = make_layer(context, rng, store=False)
    layer(rng.standard_normal((1, 3, INPUT_DIM)))
    with pytest.raises(mhfa.Error) as info:
        layer.last_attention
    assert info.value.status == "MHFA_ERROR_NOT_AVAILABLE"
    assert "store_attn_weights" in info.value.message


def test_projections_round_trip(context, rng):
    layer, weights = make_layer(context, rng)
    for name in mhfa.PROJECTIONS:
        w, b = layer.get_projection(name)
        assert np.array_equal(w, weights[name + ".weight"])
        assert np.array_equal(b, weights[name + ".bias"])
    state = layer.state_dict()
    assert sorted(state) == sorted(weights)
    assert all(np.array_equal(state[k], weights[k]) for k in weights)


class FakeLinear:
    """What from_torch reads of an nn.Linear."""

    def __init__(self, weight, bias):
        self.weight, self.bias = weight, bias


def test_from_torch_reads_any_module_with_the_four_projections(context, rng):
    weights = ref.random_weights(rng, INPUT_DIM, EMBED_DIM)
    module = type("Module", (), {})()
    module.n_heads = N_HEADS
    for name in mhfa.PROJECTIONS:
        setattr(module, name, FakeLinear(weights[name + ".weight"], weights[name + ".bias"]))
    layer = mhfa.Layer.from_torch(module, device=context)
    assert (layer.n_heads, layer.input_dim, layer.embed_dim) == (N_HEADS, INPUT_DIM, EMBED_DIM)
    q = rng.standard_normal((2, 3, INPUT_DIM))
    assert_close(layer(q), ref.forward(weights, N_HEADS, q)[0])
    del module.W_val
    with pytest.raises(TypeError, match="W_val"):
        mhfa.Layer.from_torch(module, device=context)


def test_dropout_replays_by_seed(context, rng):
    layer = mhfa.Layer(N_HEADS, INPUT_DIM, EMBED_DIM, attention_dropout=0.5, device=context)
    q = rng.standard_normal((2, 6, INPUT_DIM))
    plain = layer(q)
    first = layer.train(7)(q)
    second = layer(q)
    assert layer.training and not np.array_equal(first, plain)
    assert not np.array_equal(first, second)
    assert np.array_equal(layer.train(7)(q), first)
    assert np.array_equal(layer.eval()(q), plain) and not layer.training


def test_close_and_with(context, rng):
    with mhfa.Layer(N_HEADS, INPUT_DIM, EMBED_DIM, device=context) as layer:
        layer(rng.standard_normal((1, 2, INPUT_DIM)))
    with pytest.raises(mhfa.Error, match="closed"):
        layer(rng.standard_normal((1, 2, INPUT_DIM)))
    layer.close()  # twice is fine


def test_layer_keeps_its_context_alive(rng):
    ctx = mhfa.Context()
    layer = mhfa.Layer(N_HEADS, INPUT_DIM, EMBED_DIM, device=ctx)
    ctx.close()  # deferred: the layer still uses it
    layer(rng.standard_normal((1, 2, INPUT_DIM)))
    layer.close()
    with pytest.raises(mhfa.Error, match="closed"):
        ctx.device_name


@pytest.mark.parametrize("dtype,tolerance", [("float16", 4e-3), ("bfloat16", 3e-2)])
def test_half_storage(context, rng, dtype, tolerance):
    weights = ref.random_weights(rng, INPUT_DIM, EMBED_DIM)
    layer = mhfa.Layer(N_HEADS, INPUT_DIM, EMBED_DIM, device=context, dtype=dtype)
    for name in mhfa.PROJECTIONS:
        layer.set_projection(name, weights[name + ".weight"], weights[name + ".bias"])
    assert layer.dtype == dtype
    weight, _ = layer.get_projection("W_key")
    assert np.array_equal(weight, ref.stored(weights["W_key.weight"], dtype).astype(np.float32))
    q, h = rng.standard_normal((2, 4, INPUT_DIM)), rng.standard_normal((2, 9, INPUT_DIM))
    mask = random_mask(rng, (2, 4, 9))
    expected = ref.forward(weights, N_HEADS, q, h, mask, dtype=dtype)[0]
    bound = tolerance * max(1.0, float(np.abs(expected).max()))
    error = float(np.abs(layer(q, h, mask).astype(np.float64) - expected).max())
    assert error <= bound, f"{dtype}: max |out - ref| = {error:.3g} > {bound:.3g}"


def test_dtype_names(context):
    assert mhfa.Layer(2, 4, 4, device=context, dtype=np.float16).dtype == "float16"
    with pytest.raises(mhfa.Error, match="dtype"):
        mhfa.Layer(2, 4, 4, device=context, dtype="int8")
