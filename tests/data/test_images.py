"""Bad and unusual image files: each one a test."""

import io

import numpy as np
import pytest
from PIL import Image

from deepres.cli import main
from deepres.data import BadImageError, DatasetError, decode_image, scan_dataset, scan_folder
from deepres.data.folder import check_index
from helpers import scan_bomb_jpeg


def _jpeg_bytes(size=(16, 12), color=(200, 30, 40)):
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def test_good_jpeg(tmp_path):
    p = tmp_path / "a.jpg"
    p.write_bytes(_jpeg_bytes())
    arr = decode_image(p)
    assert arr.shape == (12, 16, 3) and arr.dtype == np.uint8
    assert abs(int(arr[5, 5, 0]) - 200) < 6


@pytest.mark.parametrize("name,content,reason", [
    ("text.jpg", b"this is not an image\n" * 10, "not an image"),
    ("zero.jpg", b"", "empty file"),
])
def test_not_images(tmp_path, name, content, reason):
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(BadImageError, match=reason) as err:
        decode_image(p)
    assert err.value.path == str(p)


def test_truncated_jpeg_is_caught_by_full_decode(tmp_path):
    buf = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    p = tmp_path / "trunc.jpg"
    p.write_bytes(data[: len(data) * 3 // 4])
    # PIL's verify() does not notice; our full decode must.
    with Image.open(p) as im:
        im.verify()
    with pytest.raises(BadImageError, match="truncated"):
        decode_image(p)


def test_decompression_bomb(tmp_path):
    p = tmp_path / "bomb.png"
    Image.new("1", (12000, 8000)).save(p)  # 96 megapixels in a few kilobytes
    assert p.stat().st_size < 200_000
    with pytest.raises(BadImageError, match="decompression bomb"):
        decode_image(p)


def test_a_jpeg_with_too_many_scans_is_refused_before_decoding(tmp_path):
    """Issue 42: 1,000 repeated scans of a 4096x4096 image (99 KB) took 19.6 s to decode on a
    Zen 3; counted from the markers, it is refused in milliseconds, from a file as from bytes."""
    import time

    from deepres.data.images import decode_image_bytes, jpeg_scans

    bomb = scan_bomb_jpeg(4096, 1000)
    assert len(bomb) < 120_000 and jpeg_scans(bomb, 10**6) == 1006
    (tmp_path / "bomb.jpg").write_bytes(bomb)
    for decode, arg in ((decode_image, tmp_path / "bomb.jpg"), (decode_image_bytes, bomb)):
        t0 = time.perf_counter()
        with pytest.raises(BadImageError, match="more than 63 scans at 4096x4096"):
            decode(arg)
        assert time.perf_counter() - t0 < 1.0
    # the absolute cap holds for small images too, and counting stops early
    assert jpeg_scans(scan_bomb_jpeg(64, 10**4), stop_after=100) == 101
    with pytest.raises(BadImageError, match="more than 100 scans"):
        decode_image_bytes(scan_bomb_jpeg(64, 100))


def test_real_progressive_jpegs_and_markers_inside_metadata_pass(tmp_path):
    from deepres.data.images import decode_image_bytes, jpeg_scans

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (120, 90, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", progressive=True, quality=95)
    assert jpeg_scans(buf.getvalue()) == 10  # libjpeg's progressive script
    # 200 start-of-scan byte pairs inside a comment segment are not scans
    data = buf.getvalue()
    comment = b"\xff\xda" * 200
    fake = data[:2] + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + data[2:]
    assert jpeg_scans(fake) == 10
    assert decode_image_bytes(fake).shape == (120, 90, 3)
    assert jpeg_scans(_jpeg_bytes()) == 1 and jpeg_scans(b"\x89PNG") == 0


@pytest.mark.parametrize("fmt", ["GIF", "TIFF"])
def test_formats_off_the_allowlist(tmp_path, fmt):
    p = tmp_path / f"x.{fmt.lower()}.png"  # a misleading name does not help
    Image.new("RGB", (8, 8)).save(p, fmt)
    with pytest.raises(BadImageError, match=f"format {fmt} is not accepted"):
        decode_image(p)


@pytest.mark.parametrize("mode,fmt", [("L", "PNG"), ("P", "PNG"), ("RGBA", "PNG"),
                                      ("CMYK", "JPEG"), ("LA", "PNG"), ("RGB", "WEBP"),
                                      ("RGB", "BMP")])
def test_modes_become_rgb(tmp_path, mode, fmt):
    p = tmp_path / f"img.{fmt.lower()}"
    Image.new(mode, (10, 6)).save(p, fmt)
    arr = decode_image(p)
    assert arr.shape == (6, 10, 3) and arr.dtype == np.uint8


def test_rgba_transparent_over_white(tmp_path):
    p = tmp_path / "t.png"
    Image.new("RGBA", (4, 4), (0, 0, 0, 0)).save(p)
    assert (decode_image(p) == 255).all()


def test_16bit_is_scaled_not_clipped(tmp_path):
    p = tmp_path / "deep.png"
    values = np.array([[0, 32768, 65535, 1000]], dtype=np.uint16)
    Image.fromarray(values).save(p)
    with Image.open(p) as im:
        assert im.mode.startswith("I")
    arr = decode_image(p)
    assert arr.shape == (1, 4, 3)
    assert arr[0, :, 0].tolist() == [0, 128, 255, 4]  # clipping would give [0, 255, 255, 255]


def test_exif_orientation_applied(tmp_path):
    p = tmp_path / "rot.jpg"
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 10, 20))  # blue strip on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    img.save(p, "JPEG", exif=exif.tobytes(), quality=95)
    arr = decode_image(p)
    assert arr.shape == (40, 20, 3)  # portrait after rotation
    assert arr[2, 10, 2] > 200 and arr[2, 10, 0] < 60  # left strip is now on top


def _make_folder(root, classes=("cat", "dog"), per=3):
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(per):
            (root / c / f"{i}.jpg").write_bytes(_jpeg_bytes())


def test_hidden_folders_and_stray_files(tmp_path):
    _make_folder(tmp_path)
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "x.jpg").write_bytes(_jpeg_bytes())
    (tmp_path / "cat" / ".ipynb_checkpoints").mkdir()
    (tmp_path / "cat" / ".ipynb_checkpoints" / "y.jpg").write_bytes(_jpeg_bytes())
    (tmp_path / "cat" / "notes.txt").write_text("hello")
    (tmp_path / "dog" / "Thumbs.db").write_bytes(b"\0")
    idx = scan_folder(tmp_path)
    assert idx.classes == ["cat", "dog"]
    assert len(idx) == 6 and len(idx.ignored) == 2
    assert idx.counts() == {"cat": 3, "dog": 3}


def test_empty_class_and_no_classes(tmp_path):
    with pytest.raises(DatasetError, match="no class folders"):
        scan_folder(tmp_path)
    _make_folder(tmp_path)
    (tmp_path / "empty_cls").mkdir()
    with pytest.raises(DatasetError, match="empty_cls"):
        scan_folder(tmp_path)


def test_splits_must_share_classes(tmp_path):
    _make_folder(tmp_path / "train")
    _make_folder(tmp_path / "test", classes=("cat", "cow"))
    with pytest.raises(DatasetError, match="different classes"):
        scan_dataset(tmp_path)


def test_check_lists_every_bad_file_and_cli_exits_nonzero(tmp_path, capsys):
    _make_folder(tmp_path / "train")
    _make_folder(tmp_path / "val")
    (tmp_path / "train" / "cat" / "bad.jpg").write_bytes(b"nope")
    (tmp_path / "val" / "dog" / "empty.png").write_bytes(b"")
    splits = scan_dataset(tmp_path)
    assert set(splits) == {"train", "val"}
    assert [b.reason for b in check_index(splits["train"])] == ["not an image (unrecognised data)"]
    assert main(["data", "check", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "bad.jpg" in out and "empty.png" in out and "2 bad file(s)" in out
    assert "cat" in out and "train: 7 images" in out


def test_cli_check_clean_folder_and_missing_folder(tmp_path, capsys):
    _make_folder(tmp_path)
    assert main(["data", "check", str(tmp_path)]) == 0
    assert main(["data", "check", str(tmp_path / "nope")]) == 2
    assert "no such folder" in capsys.readouterr().err
