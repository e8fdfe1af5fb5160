#!/usr/bin/python3
"""Writes tests/data/onnx/inspect_golden.json (and the small fixtures beside it): what the
ONNX Python package (python3-onnx 1.12, Debian) reports for a fixed set of models, so that the C++
test of `kiln inspect` (tests/onnx/inspect_test.cpp) compares against an independent reader without
running Python in CI.

Models: a deterministic sample of Debian's libonnx-testdata (every 20th model in sorted order, plus
ones that exercise special cases: initializers listed as inputs, sequence/optional types, symbolic
dims, If/Loop subgraphs, non-default domains) and the fixtures written here.

Run with Debian's interpreter, which has python3-onnx:   /usr/bin/python3 tests/onnx/make_inspect_golden.py
"""
import json
import os
import sys
import warnings

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

TESTDATA = "/usr/share/libonnx-testdata/data"
HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "..", "data", "onnx")

# Models that must be in the sample whatever the stride picks (paths relative to TESTDATA).
EXTRA = [
    "pytorch-converted/test_Linear/model.onnx",  # IR 3: initializers also listed as inputs
    "pytorch-converted/test_Conv2d/model.onnx",
    "pytorch-operator/test_operator_conv/model.onnx",
    "pytorch-operator/test_operator_non_float_params/model.onnx",
    "node/test_if/model.onnx",  # subgraphs in attributes
    "node/test_if_opt/model.onnx",  # optional types
    "node/test_loop11/model.onnx",
    "node/test_loop13_seq/model.onnx",  # sequence types
    "node/test_sequence_map_add_1_sequence_1_tensor/model.onnx",  # symbolic dims
    "simple/test_sequence_model8/model.onnx",
    "simple/test_strnorm_model_monday_casesensintive_lower/model.onnx",  # string tensors
    "node/test_cast_STRING_to_FLOAT/model.onnx",
    "node/test_layer_normalization_3d_axis_negative_3_epsilon_expanded/model.onnx",
    "node/test_cast_FLOAT_to_BFLOAT16/model.onnx",
    "node/test_castlike_FLOAT_to_FLOAT16_expanded/model.onnx",
    "node/test_gru_defaults/model.onnx",
    "node/test_lstm_with_peepholes/model.onnx",
    "node/test_adam/model.onnx",  # ai.onnx.preview.training domain
    "simple/test_gradient_of_add/model.onnx",
]

# Element type names, indexed by onnx.TensorProto.DataType (Kiln's names: NumPy's where one exists).
ELEM_NAMES = ["undefined", "float32", "uint8", "int8", "uint16", "int16", "int32", "int64",
              "string", "bool", "float16", "float64", "uint32", "uint64", "complex64",
              "complex128", "bfloat16"]
ELEM_SIZES = {"float32": 4, "uint8": 1, "int8": 1, "uint16": 2, "int16": 2, "int32": 4,
              "int64": 8, "bool": 1, "float16": 2, "float64": 8, "uint32": 4, "uint64": 8,
              "complex64": 8, "complex128": 16, "bfloat16": 2}


def elem_name(t):
    return ELEM_NAMES[t] if 0 <= t < len(ELEM_NAMES) else "unknown(%d)" % t


def type_string(tp):
    which = tp.WhichOneof("value")
    if which == "tensor_type":
        return elem_name(tp.tensor_type.elem_type)
    if which == "sparse_tensor_type":
        return "sparse_tensor(%s)" % elem_name(tp.sparse_tensor_type.elem_type)
    if which == "sequence_type":
        return "seq(%s)" % type_string(tp.sequence_type.elem_type)
    if which == "optional_type":
        return "optional(%s)" % type_string(tp.optional_type.elem_type)
    if which == "map_type":
        return "map(%s, %s)" % (elem_name(tp.map_type.key_type), type_string(tp.map_type.value_type))
    return "unknown"


def shape_of(tp):
    which = tp.WhichOneof("value")
    if which not in ("tensor_type", "sparse_tensor_type"):
        return None
    t = getattr(tp, which)
    if not t.HasField("shape"):
        return None
    dims = []
    for d in t.shape.dim:
        kind = d.WhichOneof("value")
        dims.append(d.dim_value if kind == "dim_value" else
                    d.dim_param if kind == "dim_param" and d.dim_param else None)
    return dims


def value(v):
    return {"name": v.name, "type": type_string(v.type) if v.HasField("type") else "unknown",
            "shape": shape_of(v.type) if v.HasField("type") else None}


def count_ops(graph, ops):
    for n in graph.node:
        key = n.op_type if n.domain in ("", "ai.onnx") else "%s:%s" % (n.domain, n.op_type)
        ops[key] = ops.get(key, 0) + 1
        for a in n.attribute:
            if a.HasField("g"):
                count_ops(a.g, ops)
            for g in a.graphs:
                count_ops(g, ops)


def tensor_bytes(t, numel):
    if t.data_type == TensorProto.STRING:
        return sum(len(s) for s in t.string_data)
    return numel * ELEM_SIZES.get(elem_name(t.data_type), 0)


def summarise(path, rel):
    m = onnx.load(path, load_external_data=False)
    g = m.graph
    inits = {t.name for t in g.initializer} | {t.values.name for t in g.sparse_initializer}
    ops = {}
    count_ops(g, ops)
    params = nbytes = 0
    ext = []
    for t in g.initializer:
        numel = int(np.prod(t.dims, dtype=np.int64))
        params += numel
        nbytes += tensor_bytes(t, numel)
        if t.data_location == TensorProto.EXTERNAL:
            loc = next((e.value for e in t.external_data if e.key == "location"), "(no location given)")
            if loc not in ext:
                ext.append(loc)
    for t in g.sparse_initializer:
        numel = int(np.prod(t.dims, dtype=np.int64))
        params += numel
        nbytes += tensor_bytes(t.values, numel)
    return {
        "model": rel,
        "file_bytes": os.path.getsize(path),
        "ir_version": m.ir_version,
        "opset_import": [{"domain": o.domain, "version": o.version} for o in m.opset_import],
        "producer": {"name": m.producer_name, "version": m.producer_version},
        "graph": g.name,
        "inputs": [value(v) for v in g.input if v.name not in inits],
        "outputs": [value(v) for v in g.output],
        "ops": ops,
        "nodes": sum(ops.values()),
        "initializers": len(g.initializer) + len(g.sparse_initializer),
        "parameters": params,
        "parameter_bytes": nbytes,
        "external_data_files": ext,
    }


def write_fixtures():
    """Small models for cases libonnx-testdata lacks: symbolic dims, external data, metadata, a
    model the checker rejects, a garbage file; and three .npy files from NumPy."""
    rng = np.random.default_rng(0)
    # mlp_dynamic.onnx: x (batch, 8) -> Gemm -> Relu -> Gemm -> Softmax -> probs (batch, 3).
    w1 = numpy_helper.from_array(rng.standard_normal((4, 8)).astype(np.float32), "fc1.weight")
    b1 = numpy_helper.from_array(np.zeros(4, np.float32), "fc1.bias")
    w2 = numpy_helper.from_array(rng.standard_normal((3, 4)).astype(np.float32), "fc2.weight")
    b2 = numpy_helper.from_array(np.zeros(3, np.float32), "fc2.bias")
    nodes = [
        helper.make_node("Gemm", ["x", "fc1.weight", "fc1.bias"], ["h"], transB=1),
        helper.make_node("Relu", ["h"], ["a"]),
        helper.make_node("Gemm", ["a", "fc2.weight", "fc2.bias"], ["logits"], transB=1),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 3]),
         helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", None])],
        [w1, b1, w2, b2])
    model = helper.make_model(graph, producer_name="kiln-fixture", producer_version="1",
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, {"source": "tests/onnx/make_inspect_golden.py"})
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, os.path.join(OUT_DIR, "mlp_dynamic.onnx"))

    # external_data.onnx + external_data.bin: ids (batch, sequence) int64 -> Gather(embedding).
    emb = numpy_helper.from_array(rng.standard_normal((16, 4)).astype(np.float32), "embedding.weight")
    graph = helper.make_graph(
        [helper.make_node("Gather", ["embedding.weight", "ids"], ["vectors"], axis=0)], "embed",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "sequence"])],
        [helper.make_tensor_value_info("vectors", TensorProto.FLOAT, ["batch", "sequence", 4])],
        [emb])
    model = helper.make_model(graph, producer_name="kiln-fixture", producer_version="1",
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    bin_path = os.path.join(OUT_DIR, "external_data.bin")
    if os.path.exists(bin_path):
        os.remove(bin_path)  # onnx.save appends to an existing data file
    onnx.external_data_helper.convert_model_to_external_data(
        model, all_tensors_to_one_file=True, location="external_data.bin", size_threshold=0)
    onnx.save(model, os.path.join(OUT_DIR, "external_data.onnx"))
    onnx.checker.check_model(os.path.join(OUT_DIR, "external_data.onnx"))

    # invalid_graph.onnx: parses, but a node reads a value nothing produces; --check must say so.
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "missing"], ["y"])], "broken",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    model = helper.make_model(graph, producer_name="kiln-fixture",
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, os.path.join(OUT_DIR, "invalid_graph.onnx"))

    # .npy files written by NumPy, for the test .npy reader/writer in tests/onnx/ort_runner.cpp.
    np.save(os.path.join(OUT_DIR, "f32_2x3.npy"), np.arange(6, dtype=np.float32).reshape(2, 3) / 4)
    np.save(os.path.join(OUT_DIR, "i64_scalar.npy"), np.array(-7, dtype=np.int64))
    np.save(os.path.join(OUT_DIR, "bool_3.npy"), np.array([True, False, True]))

    # garbage.onnx: 512 random bytes, which `kiln inspect` must reject with exit code 1.
    garbage = rng.integers(0, 256, 512, dtype=np.uint8).tobytes()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # protobuf warns about the stray end-group tag
            onnx.load_model_from_string(garbage)
        sys.exit("make_inspect_golden.py: the random garbage parsed as a model; change the seed")
    except Exception:
        pass
    with open(os.path.join(OUT_DIR, "garbage.onnx"), "wb") as f:
        f.write(garbage)


def main():
    if not os.path.isdir(TESTDATA):
        sys.exit("make_inspect_golden.py: %s is missing (apt-get install libonnx-testdata)" % TESTDATA)
    os.makedirs(OUT_DIR, exist_ok=True)
    write_fixtures()
    every = sorted(os.path.relpath(os.path.join(d, "model.onnx"), TESTDATA)
                   for d, _, files in os.walk(TESTDATA) if "model.onnx" in files)
    picked = sorted(set(every[::20]) | set(EXTRA))
    models = [summarise(os.path.join(TESTDATA, rel), rel) for rel in picked]
    for name in ("mlp_dynamic.onnx", "external_data.onnx", "invalid_graph.onnx"):
        models.append(summarise(os.path.join(OUT_DIR, name), "fixture:" + name))
    golden = {
        "@generated": "by tests/onnx/make_inspect_golden.py; do not edit",
        "onnx_version": onnx.__version__,
        "testdata_dir": TESTDATA,
        "testdata_models": len(every),
        "models": models,
    }
    with open(os.path.join(OUT_DIR, "inspect_golden.json"), "w") as f:
        json.dump(golden, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print("wrote %d models to %s" % (len(models), os.path.join(OUT_DIR, "inspect_golden.json")))


if __name__ == "__main__":
    main()
