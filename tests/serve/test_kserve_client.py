"""KServe's own REST client (kserve.InferenceRESTClient, protocol v2) against `deepres serve`
(slow suite). KServe pins packages that clash with the dev environment (protobuf, pandas,
psutil), so the test installs it into a virtual environment of its own, from the package
registry, and skips where it cannot be installed."""

import json
import subprocess
import textwrap
import venv

import numpy as np
import pytest
from test_serve import _png, server  # noqa: F401  (the fixture)

pytestmark = pytest.mark.slow

CLIENT = textwrap.dedent('''
    import asyncio, base64, json, sys
    import numpy as np
    from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig

    async def main(base, pixels, files):
        c = InferenceRESTClient(RESTConfig(protocol="v2", retries=1, timeout=60))
        out = {"live": await c.is_server_live(base), "ready": await c.is_server_ready(base),
               "model_ready": await c.is_model_ready(base, "resnet8")}
        raw = [open(f, "rb").read() for f in files]
        for mode in ("binary", "base64", "pixels"):
            if mode == "pixels":
                x = np.load(pixels).astype(np.float32)
                tensor = InferInput("pixels", list(x.shape), "FP32")
                tensor.set_data_from_numpy(x, binary_data=False)
            else:
                tensor = InferInput("image", [len(raw)], "BYTES")
                data = raw if mode == "binary" else [base64.b64encode(r).decode() for r in raw]
                tensor.set_data_from_numpy(np.array(data, dtype=np.object_),
                                           binary_data=mode == "binary")
            res = await c.infer(base, InferRequest("resnet8", [tensor]), model_name="resnet8")
            out[mode] = {o.name: o.as_numpy().tolist() for o in res.outputs}
        try:
            await c.infer(base, InferRequest("resnet50", [tensor]), model_name="resnet50")
            out["unknown"] = "answered"
        except Exception as exc:
            out["unknown"] = str(exc)
        print(json.dumps(out))

    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3:]))
''')


@pytest.fixture(scope="session")
def kserve_python(tmp_path_factory):
    env = tmp_path_factory.mktemp("kserve-venv")
    venv.create(env, with_pip=True)
    python = env / "bin" / "python"
    done = subprocess.run([str(python), "-m", "pip", "install", "-q", "kserve>=0.12"],
                          capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        pytest.skip(f"kserve does not install here: {done.stderr.strip()[-300:]}")
    return python


def test_kserve_rest_client_gets_predicts_answers(server, kserve_python, tmp_path,  # noqa: F811
                                                 capsys):
    from test_v2 import _predict_probs

    base, _, weights = server
    files = [tmp_path / f"{i}.png" for i in range(3)]
    for i, f in enumerate(files):
        f.write_bytes(_png(i))
    want = _predict_probs(weights, files, capsys)
    from PIL import Image

    pixels = np.stack([np.asarray(Image.open(f).convert("RGB").resize((32, 32)))
                       for f in files]).transpose(0, 3, 1, 2) / 255.0
    np.save(tmp_path / "pixels.npy", pixels)
    square = [tmp_path / f"sq{i}.png" for i in range(3)]
    for f, p in zip(square, pixels, strict=True):
        Image.fromarray(np.round(p * 255).astype(np.uint8).transpose(1, 2, 0)).save(f)
    (tmp_path / "client.py").write_text(CLIENT)
    done = subprocess.run([str(kserve_python), str(tmp_path / "client.py"), base,
                           str(tmp_path / "pixels.npy"), *map(str, files)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["live"] and out["ready"] and out["model_ready"]
    for mode in ("binary", "base64"):
        probs = np.array(out[mode]["probabilities"])
        for row, preds in zip(probs, want.values(), strict=True):
            top = [p["class"] for p in preds]
            assert [f"class{i}" for i in np.argsort(-row)[:3]] == top
            assert abs(row.max() - preds[0]["probability"]) < 2e-6
    by_square = _predict_probs(weights, square, capsys)
    for row, preds in zip(np.array(out["pixels"]["probabilities"]), by_square.values(),
                          strict=True):
        assert abs(row.max() - preds[0]["probability"]) < 1e-5
    assert "no model 'resnet50'" in out["unknown"]
