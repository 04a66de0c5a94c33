"""Hostile and damaged ONNX files (issue 42 item 9): each one line and exit 2 on every engine,
before an engine sees it, instead of an engine's traceback; a model that answers NaN is
refused, never shown as ``nan%`` or served."""

import copy

import numpy as np
import pytest
from PIL import Image

from deepres.cli import main
from helpers import make_weights

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("openvino")


def _variants(m):
    """Name -> a damaged copy of the good model proto ``m``."""
    from onnx import helper, numpy_helper

    out = {}
    out["future_ir"] = f = copy.deepcopy(m)
    f.ir_version = 99
    out["future_opset"] = f = copy.deepcopy(m)
    f.opset_import[0].version = 99
    out["custom_op"] = f = copy.deepcopy(m)
    f.graph.node[0].op_type, f.graph.node[0].domain = "MyOp", "com.evil"
    f.opset_import.append(helper.make_opsetid("com.evil", 1))
    out["inflated"] = f = copy.deepcopy(m)
    f.graph.initializer[0].dims[0] = 10**9
    out["external"] = f = copy.deepcopy(m)
    t = f.graph.initializer[0]
    t.ClearField("raw_data")
    t.data_location = onnx.TensorProto.EXTERNAL
    e = t.external_data.add()
    e.key, e.value = "location", "../../etc/passwd"
    out["nan"] = f = copy.deepcopy(m)
    name = f.graph.output[0].name
    f.graph.initializer.append(numpy_helper.from_array(np.array([np.nan], np.float32), "nanc"))
    for node in f.graph.node:
        node.output[:] = ["pre_nan" if o == name else o for o in node.output]
    f.graph.node.append(helper.make_node("Mul", ["pre_nan", "nanc"], [name]))
    return out


EXPECTED = {"future_ir": "made for ONNX IR version 99", "future_opset": "uses ONNX opset 99",
            "custom_op": "custom operator(s) com.evil:MyOp",
            "inflated": "declares the shape [1000000000, 3, 3, 3]",
            "external": "outside the file's folder",
            "nan": "output is not finite (NaN or infinity) for 1 of 1"}


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad_onnx")
    good = tmp / "good.onnx"
    assert main(["export", "--weights", str(make_weights(tmp / "w.safetensors", size=32)),
                 "--format", "onnx", str(good)]) == 0
    for name, proto in _variants(onnx.load(str(good))).items():
        onnx.save(proto, str(tmp / f"{name}.onnx"))
    Image.new("RGB", (40, 40), (10, 200, 30)).save(tmp / "img.png")
    return tmp


@pytest.mark.parametrize("engine", ["onnxruntime", "openvino"])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_bad_onnx_file_is_one_line_and_exit_2(bad_files, capsys, name, engine):
    code = main(["predict", "--weights", str(bad_files / f"{name}.onnx"), "--engine", engine,
                 str(bad_files / "img.png")])
    out, err = capsys.readouterr()
    assert code == 2 and EXPECTED[name] in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and "nan%" not in out


def test_serve_refuses_a_model_that_answers_nan_before_starting(bad_files):
    from deepres.loaded.engines import NonFiniteOutputError
    from deepres.serve.config import ServeConfig
    from deepres.serve.processes import check_weights

    assert "engine" in check_weights(ServeConfig(weights=str(bad_files / "good.onnx")))
    with pytest.raises(NonFiniteOutputError, match="nan.onnx: the model's output"):
        check_weights(ServeConfig(weights=str(bad_files / "nan.onnx")))
