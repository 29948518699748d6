"""CPU peers of mhfa for tools/bench_torch.py: the same PyTorch module run by other CPU runtimes.

Peers (--peers takes these names or a part of one: "openvino" picks both OpenVINO rows, "compile"
torch-compile):
  torch-eager       PyTorch eager (the torch_ms measurement of bench_torch.py, not timed again)
  torch-compile     torch.compile of the module (inductor)
  openvino-f32      OpenVINO: convert_model of the module, CPU, LATENCY hint, f32 inference
  openvino-default  the same with the plugin's default inference precision (bf16 on CPUs with it)
  ort               ONNX Runtime: torch.onnx.export of the module, all graph optimisations
Each peer function takes the module (positional tensor arguments), the inputs (name -> CPU tensor)
and the thread count, and returns (call, precision): call() runs one forward on those inputs.
err64 is against tools/check_float64.py's float64 evaluation: max |out - ref| / max(1, max |ref|).
"""
import logging
import os
import pathlib
import sys
import tempfile
import warnings

import torch
import torch.nn as nn

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import check_float64  # noqa: E402  (reference: the layer in float64)

# The exporters' notices (deprecations, optional packages) would bury the progress lines.
for _name in ("torch.onnx", "torch.utils.cpp_extension"):
    logging.getLogger(_name).setLevel(logging.ERROR)

NAMES = ("torch-eager", "torch-compile", "openvino-f32", "openvino-default", "ort")


def select(spec):
    """The peer names a --peers value asks for, in NAMES order; ValueError on an unknown one.

    A word picks the peers it names or that it starts or ends: "openvino", "compile"."""
    if spec in ("", "all"):
        return list(NAMES)
    if spec == "none":
        return []
    wanted = [w.strip() for w in spec.split(",") if w.strip()]

    def picks(word, name):
        return word in (name, name.split("-")[0], name.split("-")[-1])

    for w in wanted:
        if not any(picks(w, n) for n in NAMES):
            raise ValueError(f"unknown peer '{w}' (peers: {', '.join(NAMES)})")
    return [n for n in NAMES if any(picks(w, n) for w in wanted)]


class Positional(nn.Module):
    """module(q, h, mask) with only the tensors that exist as arguments, for the exporters."""

    def __init__(self, module, has_h, has_mask):
        super().__init__()
        self.module, self.has_h, self.has_mask = module, has_h, has_mask

    def forward(self, *xs):
        xs = list(xs)
        q = xs.pop(0)
        h = xs.pop(0) if self.has_h else None
        mask = xs.pop(0) if self.has_mask else None
        return self.module(q, h, mask)


def peer_compile(model, inputs, threads):
    torch.compiler.reset()  # a fresh compile per case, not a recompile of the last one
    compiled = torch.compile(model)
    args = tuple(inputs.values())
    return (lambda: compiled(*args)), "f32"


def peer_openvino(model, inputs, threads, precision=None):
    import openvino as ov

    ov_model = ov.convert_model(model, example_input=tuple(inputs.values()))
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads}
    if precision:
        config["INFERENCE_PRECISION_HINT"] = precision
    compiled = ov.Core().compile_model(ov_model, "CPU", config)
    request = compiled.create_infer_request()
    arrays = [x.numpy() for x in inputs.values()]

    def call():
        request.infer(arrays, share_inputs=True)
        return request.get_output_tensor(0).data

    return call, compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()


def peer_openvino_f32(model, inputs, threads):
    return peer_openvino(model, inputs, threads, "f32")


def peer_ort(model, inputs, threads):
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "mhfa.onnx")
        torch.onnx.export(model, tuple(inputs.values()), path, input_names=list(inputs),
                          output_names=["out"], dynamo=True, verbose=False)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    feeds = {name: x.numpy() for name, x in inputs.items()}
    return (lambda: session.run(None, feeds)[0]), "f32"


PEERS = {"torch-compile": peer_compile, "openvino-f32": peer_openvino_f32,
         "openvino-default": peer_openvino, "ort": peer_ort}


def error64(out, ref):
    out = torch.as_tensor(out).double().cpu()
    return (out - ref).abs().max().item() / max(1.0, ref.abs().max().item())


def reference(hdr, data, device=None):
    """The float64 evaluation (check_float64.py), on the CPU."""
    device = device or torch.device("cpu")
    return check_float64.reference(hdr, data, device).cpu()


def run(names, case, module, data, ref, eager, timer, threads):
    """One dict per peer: name, precision, ms, err64, status ("ok" or "error"), error.

    eager: (ms, output) of PyTorch eager, measured by the caller; timer(call): median ms."""
    model = Positional(module, data["h"] is not None, data["mask"] is not None)
    inputs = {k: data[k] for k in ("q", "h", "mask") if data[k] is not None}
    rows = []
    for name in names:
        row = {"name": name, "precision": "f32", "ms": None, "err64": None, "status": "ok",
               "error": ""}
        print(f"[bench_peers] {case}: {name}", file=sys.stderr, flush=True)
        try:
            with torch.no_grad():
                if name == "torch-eager":
                    row["ms"], out = eager
                else:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        call, row["precision"] = PEERS[name](model, inputs, threads)
                    out = torch.as_tensor(call()).clone()  # first call: compiles where lazy
                    row["ms"] = timer(call)
            row["err64"] = error64(out, ref)
        except Exception as e:  # noqa: BLE001  (reported in the table and the JSON)
            print(f"[bench_peers] {case}: {name} failed: {type(e).__name__}: {e}", file=sys.stderr)
            row.update(status="error", ms=None, precision=None,
                       error=f"{type(e).__name__}: {e}".splitlines()[0][:300])
        rows.append(row)
    return rows
