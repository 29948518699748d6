#!/usr/bin/env python3
"""Export one MultiHeadFlashAttention layer of a PyTorch checkpoint as an mhfa weights file.

    python tools/export_torch.py CHECKPOINT OUT.safetensors [--prefix P] [--n-heads N]

CHECKPOINT is what torch.save wrote: a state_dict, a dict holding one under "state_dict" or
"model", or (with --allow-pickle) a pickled nn.Module. --prefix names the layer's keys in it
("encoder.layers.0.attn."). The output holds exactly W_query.weight ... W_out.bias (float32,
prefix stripped) and the metadata mhfa.Layer.load and mhfa_module_create_from_file read:
{"format": "mhfa", "n_heads", "input_dim", "embed_dim", "bias"}.
"""
import argparse
import sys
from collections.abc import Mapping

PROJECTIONS = ("W_query", "W_key", "W_val", "W_out")


class ExportError(Exception):
    """What is wrong with the checkpoint, said for the user."""


def load_checkpoint(path, allow_pickle):
    """torch.load on the CPU; Python objects only with allow_pickle."""
    import torch
    try:
        return torch.load(path, map_location="cpu", weights_only=not allow_pickle)
    except FileNotFoundError:
        raise ExportError(f"{path}: no such file")
    except Exception as e:
        if allow_pickle:
            raise ExportError(f"{path}: torch.load failed: {e}")
        raise ExportError(f"{path}: torch.load(weights_only=True) failed ({type(e).__name__}); "
                          "if the file holds a pickled module you trust, pass --allow-pickle")


def find_state(obj, prefix):
    """(state_dict, the module at prefix or None) from what torch.load returned."""
    if hasattr(obj, "state_dict") and callable(obj.state_dict):
        try:
            sub = obj.get_submodule(prefix.rstrip(".")) if prefix else obj
        except AttributeError:
            sub = None
        return obj.state_dict(), sub
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            if key in obj and (isinstance(obj[key], Mapping) or hasattr(obj[key], "state_dict")):
                return find_state(obj[key], prefix)
        return obj, None
    raise ExportError(f"the checkpoint holds a {type(obj).__name__}, not a state_dict or module")


def candidate_prefixes(state):
    return sorted(k[:-len("W_query.weight")] for k in state if k.endswith("W_query.weight"))


def layer_tensors(state, prefix):
    """The layer's tensors, prefix stripped; ExportError naming what is missing."""
    names = [p + ".weight" for p in PROJECTIONS]
    biases = [p + ".bias" for p in PROJECTIONS]
    missing = [prefix + n for n in names if prefix + n not in state]
    if missing:
        found = candidate_prefixes(state)
        hint = (f"; layers found under the prefixes {', '.join(repr(p) for p in found)}"
                if found else "; the checkpoint has no key ending in W_query.weight")
        raise ExportError(f"missing {', '.join(missing)}{hint}")
    present = [n for n in biases if prefix + n in state]
    if present and len(present) != len(biases):
        absent = [prefix + n for n in biases if n not in present]
        raise ExportError(f"some biases but not all: missing {', '.join(absent)}")
    return {n: state[prefix + n] for n in names + present}


def check_shapes(tensors, n_heads):
    """(input_dim, embed_dim) after checking every shape against W_query's."""
    embed_dim, input_dim = tuple(tensors["W_query.weight"].shape)
    expected = {"W_query.weight": (embed_dim, input_dim), "W_key.weight": (embed_dim, input_dim),
                "W_val.weight": (embed_dim, input_dim), "W_out.weight": (embed_dim, embed_dim)}
    expected.update({p + ".bias": (embed_dim,) for p in PROJECTIONS})
    for name, tensor in tensors.items():
        if tuple(tensor.shape) != expected[name]:
            raise ExportError(f"{name} has shape {list(tensor.shape)}, expected "
                              f"{list(expected[name])} (from W_query.weight {[embed_dim, input_dim]})")
    if n_heads <= 0 or embed_dim % n_heads:
        raise ExportError(f"n_heads {n_heads} does not divide embed_dim {embed_dim}")
    return input_dim, embed_dim


def export(checkpoint, out, prefix="", n_heads=None, allow_pickle=False):
    """Write out from checkpoint; returns the metadata written."""
    from safetensors.torch import save_file
    import torch
    state, module = find_state(load_checkpoint(checkpoint, allow_pickle), prefix)
    if prefix and prefix + "W_query.weight" not in state and prefix + ".W_query.weight" in state:
        prefix += "."
    tensors = layer_tensors(state, prefix)
    if n_heads is None:
        n_heads = getattr(module, "n_heads", None)
        if n_heads is None:
            raise ExportError("--n-heads is required: a state_dict does not say how many heads "
                              "the layer has")
    input_dim, embed_dim = check_shapes(tensors, int(n_heads))
    metadata = {"format": "mhfa", "n_heads": str(int(n_heads)), "input_dim": str(input_dim),
                "embed_dim": str(embed_dim), "bias": "1" if "W_query.bias" in tensors else "0"}
    save_file({n: t.detach().to(torch.float32).contiguous() for n, t in tensors.items()}, out,
              metadata=metadata)
    return metadata


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="file written by torch.save")
    parser.add_argument("out", help="the safetensors file to write")
    parser.add_argument("--prefix", default="", help='the layer\'s keys, e.g. "encoder.layers.0.attn."')
    parser.add_argument("--n-heads", type=int, help="heads (required unless the module has n_heads)")
    parser.add_argument("--allow-pickle", action="store_true",
                        help="load Python objects too (a pickled module): only for trusted files")
    args = parser.parse_args(argv)
    try:
        meta = export(args.checkpoint, args.out, args.prefix, args.n_heads, args.allow_pickle)
    except ExportError as e:
        print(f"export_torch: {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}: n_heads {meta['n_heads']}, input_dim {meta['input_dim']}, "
          f"embed_dim {meta['embed_dim']}, bias {meta['bias']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
