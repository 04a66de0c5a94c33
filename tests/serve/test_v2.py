"""The Open Inference Protocol (KServe v2) beside /v1/predict: a real Triton HTTP client and plain
JSON with base64 images get deepres predict's top-1 class and probabilities for the same files."""

import base64
import json

import numpy as np
import pytest
from test_serve import _png, _request, server  # noqa: F401  (the fixture)

from deepres.cli import main


def _predict_probs(weights, files, capsys):
    capsys.readouterr()
    assert main(["predict", "--weights", str(weights), *map(str, files), "--json",
                 "--precision", "fp32", "--top-k", "3"]) == 0
    return {r["file"]: r["predictions"] for r in json.loads(capsys.readouterr().out)}


def _check(probs, want, classes):
    """Each row of probabilities against predict's top 3 for the same file."""
    for row, (_, preds) in zip(probs, want.items(), strict=True):
        top = np.argsort(-row)[:3]
        assert [classes[i] for i in top] == [p["class"] for p in preds]
        for i, p in zip(top, preds, strict=True):
            assert abs(row[i] - p["probability"]) < 2e-6
        assert abs(row.sum() - 1) < 1e-4


def _bytes_input(http, files):
    images = http.InferInput("image", [len(files)], "BYTES")
    images.set_data_from_numpy(np.array([f.read_bytes() for f in files], dtype=np.object_))
    return images


def test_a_triton_client_gets_predicts_answers(server, tmp_path, capsys):  # noqa: F811
    http = pytest.importorskip("tritonclient.http")
    base, _, weights = server
    files = [tmp_path / f"{i}.png" for i in range(3)]
    for i, f in enumerate(files):
        f.write_bytes(_png(i))
    want = _predict_probs(weights, files, capsys)
    client = http.InferenceServerClient(base.removeprefix("http://"))
    assert client.is_server_live() and client.is_server_ready()
    meta = client.get_model_metadata("resnet8")
    classes = meta["parameters"]["classes"]
    assert classes == ["class0", "class1", "class2"] and client.is_model_ready("resnet8")
    images = http.InferInput("image", [3], "BYTES")
    images.set_data_from_numpy(np.array([f.read_bytes() for f in files], dtype=np.object_))
    result = client.infer("resnet8", [images])  # binary extension, the client's default
    probs = result.as_numpy("probabilities")
    assert probs.shape == (3, 3) and probs.dtype == np.float32
    _check(probs, want, classes)
    with pytest.raises(Exception, match="no model 'resnet50'"):
        client.infer("resnet50", [images])
    # issue 43 item 4: server metadata, versioned paths, the classification extension,
    # unknown outputs, compact model metadata and JSON for every error
    assert client.get_server_metadata()["name"] == "deepres"
    again = client.infer("resnet8", [images], model_version="1").as_numpy("probabilities")
    assert np.array_equal(again, probs)
    ranked = client.infer("resnet8", [images], outputs=[http.InferRequestedOutput(
        "probabilities", binary_data=False, class_count=2)]).as_numpy("probabilities")
    assert ranked.shape == (3, 2)
    for row, want_row in zip(ranked, probs, strict=True):
        text = row[0].decode() if isinstance(row[0], bytes) else row[0]
        value, index, label = text.split(":")
        assert int(index) == int(np.argmax(want_row)) and label == classes[int(index)]
        assert abs(float(value) - want_row.max()) < 1e-5
    with pytest.raises(Exception, match="no output 'scores'"):
        client.infer("resnet8", [images], outputs=[http.InferRequestedOutput("scores")])
    with pytest.raises(Exception, match="no version '7'"):
        client.infer("resnet8", [images], model_version="7")
    raw = _request(base + "/v2/models/resnet8")[1]
    assert len(raw) < 2000  # was 62 KB: the per-pixel mean is at its own URL
    spec = json.loads(raw)["parameters"]["input_spec"]["input_mean"]
    assert spec["shape"] == [3, 32, 32]
    mean = json.loads(_request(base + spec["url"])[1])["input_mean"]
    assert np.array(mean).shape == (3, 32, 32)
    # FP32 pixels (what an exported ONNX file takes) give the PNGs' own answers
    from PIL import Image

    pixels = np.stack([np.asarray(Image.open(f).convert("RGB").resize((32, 32)))
                       for f in files]).transpose(0, 3, 1, 2)
    square = [tmp_path / f"sq{i}.png" for i in range(3)]
    for f, p in zip(square, pixels, strict=True):
        Image.fromarray(p.transpose(1, 2, 0)).save(f)
    by_file = client.infer("resnet8", [_bytes_input(http, square)]).as_numpy("probabilities")
    fp32 = http.InferInput("pixels", [3, 3, 32, 32], "FP32")
    fp32.set_data_from_numpy((pixels / 255.0).astype(np.float32))
    by_pixels = client.infer("resnet8", [fp32]).as_numpy("probabilities")
    assert np.abs(by_pixels - by_file).max() < 1e-6
    with pytest.raises(Exception, match="N x 3 x 32 x 32"):
        bad = http.InferInput("pixels", [1, 3, 8, 8], "FP32")
        bad.set_data_from_numpy(np.zeros((1, 3, 8, 8), np.float32))
        client.infer("resnet8", [bad])
    # one bad image in a batch: answered per image, with an errors output
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    mixed = client.infer("resnet8", [_bytes_input(http, [files[0], broken, files[1]])])
    rows, errors = mixed.as_numpy("probabilities"), mixed.as_numpy("errors")
    assert np.abs(rows[[0, 2]] - probs[[0, 1]]).max() < 1e-6 and not rows[1].any()
    text = [e.decode() if isinstance(e, bytes) else e for e in errors]
    assert [bool(e) for e in text] == [False, True, False] and "not an image" in text[1]
    for path in ("/v2/nothing", "/v1/nothing"):
        status, body, headers = _request(base + path)
        assert status == 404 and "error" in json.loads(body), body


def test_json_with_base64_images_and_clear_errors(server, tmp_path, capsys):  # noqa: F811
    base, _, weights = server
    f = tmp_path / "a.png"
    f.write_bytes(_png(5))
    want = _predict_probs(weights, [f], capsys)
    request = {"id": "r1", "inputs": [{"name": "image", "shape": [1], "datatype": "BYTES",
                                       "data": [base64.b64encode(f.read_bytes()).decode()]}]}
    status, body, _ = _request(base + "/v2/models/resnet8/infer", json.dumps(request).encode(),
                               {"Content-Type": "application/json"})
    assert status == 200, body
    out = json.loads(body)
    assert out["id"] == "r1" and out["outputs"][0]["shape"] == [1, 3]
    _check(np.array(out["outputs"][0]["data"], dtype=np.float32).reshape(1, 3), want,
           ["class0", "class1", "class2"])
    bad = [({"inputs": [{"name": "image", "shape": [1], "datatype": "INT8", "data": [1]}]},
            400, "must be BYTES (encoded images) or FP32"),
           ({"inputs": [{"name": "image", "shape": [1], "datatype": "FP32", "data": [1.0]}]},
            400, "shape is [N, 3, H, W]"),
           ({"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES",
                         "data": ["not base64!"]}]}, 400, "base64"),
           ({"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES",
                         "data": [base64.b64encode(b"not an image").decode()]}]}, 400, "image")]
    # issue 42: each of these was a 500 with a traceback, or (shape) a 200
    image = base64.b64encode(f.read_bytes()).decode()
    one = {"name": "image", "shape": [1], "datatype": "BYTES", "data": [image]}
    bad += [({"id": "\ud800", "inputs": [one]}, 400, "id is not valid text"),
            ({"inputs": [{**one, "parameters": [1]}]}, 400, "parameters must be an object")]
    bad += [({"inputs": [{**one, "shape": shape}]}, 400, "shape")
            for shape in ([5], [-7], [10**18, 10**18], "x", None, [], [1.0], [True], [0])]
    for req, code, message in bad:
        status, body, _ = _request(base + "/v2/models/resnet8/infer", json.dumps(req).encode(),
                                   {"Content-Type": "application/json"})
        assert status == code and message in json.loads(body)["error"], (req, body)
    nested = b'{"inputs": ' + b"[" * 90_000 + b"]" * 90_000 + b"}"
    for raw in (nested, b'{"inputs": [{"name": "x", "shape": [NaN], "datatype": "BYTES"}]}'):
        status, body, _ = _request(base + "/v2/models/resnet8/infer", raw,
                                   {"Content-Type": "application/json"})
        assert status == 400 and "error" in json.loads(body), body
    # v1: a JSON image name with a lone surrogate is answered, its name escaped
    v1 = {"images": [{"name": "\ud800.png", "b64": image}]}
    status, body, _ = _request(base + "/v1/predict", json.dumps(v1).encode(),
                               {"Content-Type": "application/json"})
    assert status == 200 and json.loads(body)["results"][0]["file"] == "\\ud800.png", body
    bad = []
    for req, code, message in bad:
        status, body, _ = _request(base + "/v2/models/resnet8/infer", json.dumps(req).encode(),
                                   {"Content-Type": "application/json"})
        assert status == code and message in json.loads(body)["error"], body
    assert _request(base + "/v2/models/other")[0] == 404
    assert _request(base + "/readyz")[0] == 200  # the server goes on


def test_several_files_one_bad_is_one_error_entry_and_json_base64(server, tmp_path, capsys):  # noqa: F811,E501
    base, _, weights = server
    f = tmp_path / "a.png"
    f.write_bytes(_png(7))
    want = _predict_probs(weights, [f], capsys)[str(f)]
    boundary = "zz"
    parts = []
    for name, data in (("a.png", f.read_bytes()), ("bad.png", b"not an image"),
                       ("b.png", f.read_bytes())):
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="f"; '
                     f'filename="{name}"\r\nContent-Type: image/png\r\n\r\n'.encode()
                     + data + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    status, out, _ = _request(base + "/v1/predict?top_k=3", body,
                              {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    results = json.loads(out)["results"]
    assert status == 200 and [r["file"] for r in results] == ["a.png", "bad.png", "b.png"]
    assert results[0]["predictions"] == results[2]["predictions"] == want
    assert results[1]["error"]["kind"] == "bad_image" and "predictions" not in results[1]
    only_bad = b"".join(parts[1:2]) + f"--{boundary}--\r\n".encode()
    two_bad = only_bad.replace(b"--zz--", b"") + only_bad
    status, out, _ = _request(base + "/v1/predict", two_bad,
                              {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert status == 400 and all("error" in r for r in json.loads(out)["results"])
    # JSON with base64 images, as strings or {"name", "b64"}
    doc = {"images": [base64.b64encode(f.read_bytes()).decode(),
                      {"name": "cat.png", "b64": base64.b64encode(f.read_bytes()).decode()}]}
    status, out, _ = _request(base + "/v1/predict?top_k=3", json.dumps(doc).encode(),
                              {"Content-Type": "application/json"})
    results = json.loads(out)["results"]
    assert status == 200 and [r["file"] for r in results] == ["image[0]", "cat.png"]
    assert results[0]["predictions"] == want
    status, out, _ = _request(base + "/v1/predict", b'{"images": ["%%%"]}',
                              {"Content-Type": "application/json"})
    assert status == 400 and "base64" in json.loads(out)["error"]["message"]
