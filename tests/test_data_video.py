import numpy as np
import pytest

from cosmos_exp.data.video import VideoError, open_video, read_frames
from tests._data_fixtures import make_synthetic


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    root = tmp_path_factory.mktemp("vid")
    cfg, _ = make_synthetic(root, num_train=1, num_eval=0)
    return next((root / "train" / "videos").iterdir())


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_reader_reports_frames_and_fps(clip, backend):
    with open_video(clip, backend) as r:
        assert r.num_frames == 16
        assert r.fps == pytest.approx(8.0)
        frames = r.get_frames([0, 5, 15])
    assert frames.shape == (3, 96, 160, 3) and frames.dtype == np.uint8


def test_backends_decode_the_same_pixels(clip):
    idx = [0, 3, 8, 15, 3]
    a, b = read_frames(clip, idx, "decord"), read_frames(clip, idx, "pyav")
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 2  # same decoder family, same colour conversion
    assert (a[1] == a[4]).all()  # repeated index gives the same frame, order kept


def test_pyav_reader_is_closed_after_block(clip):
    with open_video(clip, "pyav") as r:
        pass
    assert r._container is None


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_missing_empty_corrupt_videos_name_the_file(tmp_path, backend):
    missing = tmp_path / "nope.mp4"
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 200)
    for path, words in ((missing, "not found"), (empty, "empty"), (corrupt, "cannot open")):
        with pytest.raises(VideoError) as err:
            with open_video(path, backend) as r:
                r.get_frames([0])
        assert str(path) in str(err.value) and words in str(err.value)


def test_out_of_range_indices_and_unknown_backend(clip):
    with open_video(clip) as r, pytest.raises(VideoError, match="outside"):
        r.get_frames([16])
    with pytest.raises(ValueError, match="unknown video backend"):
        with open_video(clip, "opencv"):
            pass
