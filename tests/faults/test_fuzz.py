"""Property-based tests (Hypothesis) of every parser of untrusted input (issue 42 item 13):
request bodies (v1 JSON and multipart, v2 JSON and binary), image headers and JPEG markers,
shard members and labels, class-name lists, config files and ONNX/weights metadata.

Each property: only the parser's declared error (a one-line ValueError kind), never another
exception; over HTTP never a 500 and always a JSON error; each example within a deadline.
The default run draws a short budget per property (DEEPRES_FUZZ=ci); `test_fuzz_long` (slow)
runs this file again with DEEPRES_FUZZ=long (2,000 examples each)."""

import base64
import io
import json
import os
import subprocess
import sys
import tarfile

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

settings.register_profile("ci", max_examples=40, deadline=5000,
                          suppress_health_check=[HealthCheck.too_slow,
                                                 HealthCheck.function_scoped_fixture])
settings.register_profile("long", max_examples=2000, deadline=5000,
                          suppress_health_check=[HealthCheck.too_slow,
                                                 HealthCheck.function_scoped_fixture])
settings.load_profile(os.environ.get("DEEPRES_FUZZ", "ci"))

# JSON documents of any shape, with the strings that broke parsers before: lone surrogates,
# huge and negative numbers, NaN.
SCALARS = (st.none() | st.booleans() | st.integers(-10**20, 10**20)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12)
           | st.sampled_from(["\ud800", "BYTES", "FP32", "image", "", "0", "-1"]))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8) | st.sampled_from(
                        ["inputs", "images", "name", "b64", "data", "datatype", "shape",
                         "parameters", "binary_data_size", "id"]), inner, max_size=4),
                    max_leaves=20)


def _png(size=(8, 8)):
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, (10, 20, 30)).save(buf, "PNG")
    return buf.getvalue()


def _jpeg(progressive=False):
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 200, 30)).save(buf, "JPEG", progressive=progressive)
    return buf.getvalue()


def _mutated(seed_bytes):
    """Bytes near a valid file: flips, cuts and splices of it, or noise."""
    return st.one_of(
        st.binary(max_size=600),
        st.tuples(st.sampled_from(seed_bytes), st.lists(st.tuples(
            st.integers(0, 2000), st.integers(0, 255)), max_size=8), st.integers(0, 2000)).map(
            lambda t: _flip(*t)))


def _flip(data, edits, cut):
    b = bytearray(data)
    for at, value in edits:
        if b:
            b[at % len(b)] = value
    return bytes(b[:max(cut, 2)]) if cut < len(b) else bytes(b)


IMAGE_SEEDS = [_png(), _jpeg(), _jpeg(progressive=True)]


# ---- images: headers, markers and full decodes --------------------------------------------

@given(_mutated(IMAGE_SEEDS))
def test_image_headers_and_decodes_fail_only_as_bad_images(data):
    from deepres.data.images import BadImageError, decode_image_bytes, image_size, jpeg_scans

    assert 0 <= jpeg_scans(data, stop_after=50) <= 51
    size = image_size(io.BytesIO(data))
    assert size is None or (len(size) == 2 and min(size) >= 0)
    try:
        pixels = decode_image_bytes(data)
    except BadImageError as exc:
        assert str(exc).startswith("upload: ") and "\n" not in str(exc)
    else:
        assert pixels.ndim == 3 and pixels.shape[2] == 3


# ---- request bodies -----------------------------------------------------------------------

@given(JSON)
def test_v1_json_bodies_fail_only_as_value_errors(doc):
    from deepres.serve.app import _json_uploads

    try:
        body = json.dumps(doc).encode()
    except ValueError:
        return
    try:
        uploads = _json_uploads(body)
    except ValueError:
        return
    assert all(isinstance(n, str) and isinstance(b, bytes) for n, b in uploads)


@given(JSON, st.binary(max_size=40), st.none() | st.text(max_size=6))
def test_v2_bodies_fail_only_as_value_errors(doc, tail, header_length):
    from deepres.serve.v2 import parse_infer

    try:
        head = json.dumps(doc).encode()
    except ValueError:
        return
    try:
        header, images = parse_infer(head + tail, header_length)
    except ValueError as exc:
        assert "\n" not in str(exc)[:300]
        return
    assert isinstance(header, dict) and all(isinstance(b, bytes) for b in images)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    pytest.importorskip("starlette")
    pytest.importorskip("httpx")
    from starlette.testclient import TestClient

    from deepres.serve.asgi import create_app
    from deepres.serve.config import ServeConfig
    from helpers import make_weights

    w = make_weights(tmp_path_factory.mktemp("fuzz") / "w.safetensors", size=32)
    with TestClient(create_app(ServeConfig(weights=str(w), precision="fp32",
                                           max_bytes=200_000, timeout_s=10.0))) as c:
        yield c


CONTENT_TYPES = st.sampled_from([
    "application/json", "image/png", "multipart/form-data; boundary=XyZ",
    "multipart/form-data", "multipart/form-data; boundary=", "text/plain", ""])


def _multipart_body(parts):
    return b"".join(b"--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"" + n
                    + b"\"\r\n\r\n" + d + b"\r\n" for n, d in parts) + b"--XyZ--\r\n"


BODIES = st.one_of(
    JSON.map(lambda d: json.dumps(d, allow_nan=True).encode()),
    _mutated(IMAGE_SEEDS),
    st.lists(st.tuples(st.binary(max_size=12).filter(lambda b: b'"' not in b),
                       _mutated(IMAGE_SEEDS)), max_size=3).map(_multipart_body),
    st.builds(lambda imgs: json.dumps({"images": [
        {"name": "x", "b64": base64.b64encode(i).decode()} for i in imgs]}).encode(),
        st.lists(_mutated(IMAGE_SEEDS), max_size=3)))


@given(body=BODIES, kind=CONTENT_TYPES, top_k=st.sampled_from(["5", "0", "²", "99", "x"]))
def test_v1_predict_never_answers_500(client, body, kind, top_k):
    r = client.post(f"/v1/predict?top_k={top_k}", content=body,
                    headers={"content-type": kind} if kind else {})
    assert r.status_code in (200, 400, 413), r.text
    answer = r.json()  # an error, or per-file results (several files, none readable: 400)
    assert r.status_code == 200 or "error" in answer or all("error" in x for x in
                                                             answer["results"])


V2_BODIES = st.one_of(
    JSON.map(lambda d: json.dumps(d, allow_nan=True).encode()),
    st.builds(lambda shape, imgs, extra: json.dumps({
        "inputs": [{"name": "image", "datatype": "BYTES", "shape": shape,
                    "data": [base64.b64encode(i).decode() for i in imgs], **extra}]}).encode(),
        st.lists(st.integers(-3, 10**19), max_size=3) | JSON, st.lists(
            _mutated(IMAGE_SEEDS), max_size=3), st.dictionaries(
            st.sampled_from(["parameters", "id"]), JSON, max_size=2)))


@given(body=V2_BODIES, binary_length=st.none() | st.integers(-5, 400).map(str))
def test_v2_infer_never_answers_500(client, body, binary_length):
    name = client.get("/v1/model").json()["model"]
    headers = {"content-type": "application/json"}
    if binary_length is not None:
        headers["inference-header-content-length"] = binary_length
    r = client.post(f"/v2/models/{name}/infer", content=body, headers=headers)
    assert r.status_code in (200, 400, 413), r.text
    assert r.status_code == 200 or isinstance(r.json()["error"], str)


# ---- shards: members and labels -----------------------------------------------------------

MEMBER_NAMES = st.sampled_from(["a.jpg", "a.cls", "b.png", "b.cls", "c.jpg", "a.json",
                                "d/e.jpg", "d/e.cls", ".cls", "x"])
LABELS = st.sampled_from([b"0", b"1", b"-1", b"1000000000000", b"9" * 30, b"", b" 2 ",
                          b"\xff", b"\xd9\xa3", b"1.5"])


@given(st.lists(st.tuples(MEMBER_NAMES, LABELS | st.sampled_from(IMAGE_SEEDS)), max_size=6))
def test_shards_fail_only_as_dataset_errors(tmp_path_factory, members):
    from deepres.data import DatasetError, load_data

    folder = tmp_path_factory.mktemp("shard")
    with tarfile.open(folder / "train-000000.tar", "w") as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    try:
        d = load_data(str(folder))
    except DatasetError as exc:
        assert "\n" not in str(exc)
        return
    assert len(d.classes) <= 1_000_000


# ---- class names, config files, weights metadata ------------------------------------------

@given(JSON | st.text(max_size=30), st.none() | st.integers(1, 5))
def test_class_name_lists_fail_only_as_weights_errors(value, outputs):
    from deepres.models.card import read_class_names
    from deepres.models.errors import WeightsError

    raw = value if isinstance(value, str) else json.dumps(value)
    try:
        names = read_class_names({"class_names": raw}, "f.safetensors", outputs)
    except WeightsError as exc:
        assert str(exc).startswith("f.safetensors: ")
        return
    assert names and all(isinstance(n, str) for n in names)


@given(JSON | st.text(max_size=40))
def test_config_files_fail_only_as_the_callers_error(tmp_path_factory, value):
    from deepres.train.runs import read_config

    path = tmp_path_factory.mktemp("cfg") / "config.json"
    path.write_text(value if isinstance(value, str) else json.dumps(value),
                    errors="surrogatepass")

    class Refused(Exception):
        pass

    try:
        read_config(path, Refused)
    except Refused as exc:
        assert str(path) in str(exc) or "config" in str(exc)


METADATA_KEYS = st.sampled_from(["model", "model_options", "class_names", "input_mean",
                                 "input_std", "input_size", "test_resize", "interpolation",
                                 "tag", "input_range", "input_channels"])


@given(st.dictionaries(METADATA_KEYS, JSON.map(json.dumps) | st.text(max_size=20), max_size=6),
       st.none() | st.integers(1, 10))
def test_weights_and_onnx_metadata_fail_only_as_value_errors(meta, outputs):
    from deepres.models.card import read_card

    try:
        card = read_card(meta, "m.onnx", outputs)
    except ValueError as exc:  # WeightsError and InputSpecError are ValueErrors
        assert str(exc).startswith("m.onnx") and "\n" not in str(exc)
        return
    assert card.origin == "m.onnx"


@pytest.mark.slow
def test_fuzz_long():
    """Every property above with 2,000 examples (about 10 minutes on 2 cores)."""
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", __file__, "-k", "not long",
                           "-p", "no:cacheprovider"], env={**os.environ, "DEEPRES_FUZZ": "long"},
                          capture_output=True, text=True, timeout=3600)
    assert done.returncode == 0, done.stdout[-3000:]


def test_the_openapi_document_names_every_route(client):
    """Issue 42 item 14: the server serves its API; every route and method is in it."""
    from starlette.routing import Route

    doc = client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    app = client.app
    for route in app.routes:
        if isinstance(route, Route):
            for method in route.methods - {"HEAD"}:
                assert method.lower() in doc["paths"].get(route.path, {}), (route.path, method)
    assert set(doc["paths"]) <= {r.path for r in app.routes}
