"""Video readers behind one interface: decord (default) or PyAV, chosen by `vision.backend`, and a folder of
JPEG frames (LingoQA gives each segment as 5 frames, not as a video file) read with Pillow whatever the backend.

    with open_video(path, backend="decord") as reader:
        frames = reader.get_frames([0, 4, 8])   # uint8 [T, H, W, 3]

Readers are always closed when the block ends (decord leaks memory when readers pile up).
Every failure (missing, zero-byte, corrupt, too short) is a `VideoError` naming the file.
"""

import contextlib
import os
from pathlib import Path
from typing import Iterator, List, Sequence, Union

import numpy as np

BACKENDS = ("decord", "pyav")
FRAME_SUFFIXES = (".jpg", ".jpeg")
# A frame folder has no rate of its own. LingoQA's 5 frames span a 4 s segment at 1 frame per second; the rate
# only sets the timestamps the model is told (Qwen3-VL's prompt text, Qwen2.5-VL's seconds per temporal patch).
FRAME_FOLDER_FPS = 1.0


class VideoError(Exception):
    """A video that cannot be used; the message always names the file."""


class _NotSkippable(Exception):
    """The stream is not one whose unneeded pictures we can leave undecoded; decode it sequentially."""


def frame_files(folder: Union[str, Path]) -> List[Path]:
    """The JPEG frames of a segment folder in order (numeric names in numeric order: 2.jpg before 10.jpg)."""
    files = [p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in FRAME_SUFFIXES]
    return sorted(files, key=lambda p: (0, int(p.stem), "") if p.stem.isdigit() else (1, 0, p.name))


def check_video_file(path: Union[str, Path]) -> None:
    """Cheap checks before any decoder touches the file (or the frame folder)."""
    p = Path(path)
    if p.is_dir():
        if not frame_files(p):
            raise VideoError(f"{p}: folder holds no JPEG frames (*.jpg, *.jpeg)")
        return
    if not p.is_file():
        raise VideoError(f"{p}: video file not found")
    if p.stat().st_size == 0:
        raise VideoError(f"{p}: video file is empty (0 bytes)")


class _DecordReader:
    def __init__(self, path: str) -> None:
        import decord

        self.path = path
        try:
            self._vr = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
        except Exception as exc:  # decord raises its own DECORDError / RuntimeError
            raise VideoError(f"{path}: cannot open video with decord ({exc})") from None
        self.num_frames = len(self._vr)
        self.fps = float(self._vr.get_avg_fps())
        if self.num_frames <= 0:
            raise VideoError(f"{path}: video has no frames")

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        _check_indices(self.path, indices, self.num_frames)
        try:
            return self._vr.get_batch(list(indices)).asnumpy()
        except Exception as exc:
            raise VideoError(f"{self.path}: decoding failed ({exc})") from None

    def close(self) -> None:
        self._vr = None


class _PyAVReader:
    """Sequential decode of the first video stream; frames are kept only if requested."""

    def __init__(self, path: str) -> None:
        import av

        self.path = path
        try:
            self._container = av.open(path)
        except Exception as exc:
            raise VideoError(f"{path}: cannot open video with PyAV ({exc})") from None
        streams = self._container.streams.video
        if not streams:
            self._container.close()
            raise VideoError(f"{path}: no video stream")
        stream = streams[0]
        self.fps = float(stream.average_rate or stream.guessed_rate or 0.0)
        # stream.frames comes from the container header; some muxers leave it 0, then count by decoding.
        self.num_frames = int(stream.frames or 0)
        if self.num_frames <= 0:
            self.num_frames = sum(1 for _ in self._decode())
        if self.num_frames <= 0:
            self.close()
            raise VideoError(f"{path}: video has no frames")

    def _decode(self) -> Iterator:
        self._container.seek(0)
        try:
            yield from self._container.decode(video=0)
        except Exception as exc:
            raise VideoError(f"{self.path}: decoding failed ({exc})") from None

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        _check_indices(self.path, indices, self.num_frames)
        try:
            frames = self._decode_needed(indices)
        except _NotSkippable:
            frames = None
        except Exception as exc:
            raise VideoError(f"{self.path}: decoding failed ({exc})") from None
        return frames if frames is not None else self._decode_sequential(indices)

    def _decode_sequential(self, indices: Sequence[int]) -> np.ndarray:
        """Every frame from the first up to the last wanted one: right for any stream, and slow."""
        wanted = sorted(set(int(i) for i in indices))
        out = {}
        pos = 0
        last = wanted[-1]
        for i, frame in enumerate(self._decode()):
            if i == wanted[pos]:
                out[i] = frame.to_ndarray(format="rgb24")
                pos += 1
                if pos == len(wanted):
                    break
            if i >= last:
                break
        if len(out) != len(wanted):
            raise VideoError(
                f"{self.path}: decoded {len(out)} of {len(wanted)} requested frames "
                f"(header says {self.num_frames} frames; file truncated?)"
            )
        return np.stack([out[int(i)] for i in indices])

    def _decode_needed(self, indices: Sequence[int]) -> np.ndarray:
        """The same frames as _decode_sequential, decoding only what they need (H.264 only).

        Frame i is the packet with the i-th smallest timestamp. Groups of pictures (keyframe to keyframe, in
        decode order) holding no wanted frame are never fed to the decoder, a group is left after its last wanted
        packet once its frames are out, and inside a group the decoder skips pictures no other picture refers to
        (skip_frame NONREF) unless they are wanted. Skipped pictures cannot change the ones decoded, so the pixels
        are the sequential decode's; anything this cannot vouch for (no timestamps, a header frame count that
        differs from the packets, an open group whose pictures reach back over a skipped keyframe, a missing
        frame) raises _NotSkippable and the caller decodes sequentially.
        """
        stream = self._container.streams.video[0]
        if stream.codec_context.name != "h264":
            raise _NotSkippable
        self._container.seek(0)
        packets = [p for p in self._container.demux(stream) if p.size > 0]
        pts = [p.pts for p in packets]
        if (not packets or None in pts or len(set(pts)) != len(pts) or len(pts) != self.num_frames
                or not packets[0].is_keyframe):
            raise _NotSkippable
        order = sorted(pts)
        wanted = {order[int(i)] for i in indices}
        group, g = [], -1
        for p in packets:
            g += bool(p.is_keyframe)
            group.append(g)
        codec = stream.codec_context
        codec.flush_buffers()
        try:
            return self._decode_wanted(packets, group, wanted, order, indices, codec)
        finally:  # whatever happened, the sequential decode that may follow sees every picture
            codec.skip_frame = "DEFAULT"
            codec.flush_buffers()

    def _decode_wanted(self, packets: list, group: List[int], wanted: set, order: List[int],
                       indices: Sequence[int], codec) -> np.ndarray:
        last_wanted = {group[j]: j for j, p in enumerate(packets) if p.pts in wanted}
        out: dict = {}
        fed = set()  # wanted timestamps already sent to the decoder
        jumped, floor = False, None

        def keep(frames) -> None:
            for f in frames:
                if floor is not None and f.pts < floor:  # a picture from before the keyframe we jumped to
                    raise _NotSkippable
                if f.pts in wanted and f.pts not in out:
                    out[f.pts] = f.to_ndarray(format="rgb24")

        for j, p in enumerate(packets):
            if len(out) == len(wanted):
                break
            if not (fed - out.keys()) and j > last_wanted.get(group[j], -1):
                jumped = True  # nothing wanted here or later in this group, nothing owed by the decoder
                continue
            if jumped:  # a fresh start at this group's keyframe, as after a seek
                if not p.is_keyframe:
                    raise _NotSkippable
                codec.flush_buffers()
                floor, jumped = p.pts, False
            codec.skip_frame = "DEFAULT" if p.pts in wanted else "NONREF"
            if p.pts in wanted:
                fed.add(p.pts)
            keep(codec.decode(p))
        if len(out) < len(wanted):
            codec.skip_frame = "DEFAULT"
            keep(codec.decode(None))
        if len(out) < len(wanted):
            raise _NotSkippable
        return np.stack([out[order[int(i)]] for i in indices])

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None


class _FrameFolderReader:
    """A segment given as a folder of JPEG frames, one frame per file; every frame must have the same size."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._files = frame_files(path)
        self.num_frames = len(self._files)
        self.fps = FRAME_FOLDER_FPS

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        _check_indices(self.path, indices, self.num_frames)
        frames = []
        for i in indices:
            f = self._files[int(i)]
            try:
                with Image.open(f) as img:
                    frames.append(np.asarray(img.convert("RGB")))
            except (OSError, UnidentifiedImageError) as exc:
                raise VideoError(f"{f}: cannot read the frame ({exc})") from None
        shapes = {fr.shape for fr in frames}
        if len(shapes) > 1:
            raise VideoError(f"{self.path}: frames differ in size {sorted(shapes)}; a segment's frames must match")
        return np.stack(frames)

    def close(self) -> None:
        self._files = []


def _check_indices(path: str, indices: Sequence[int], num_frames: int) -> None:
    if len(indices) == 0:
        raise VideoError(f"{path}: no frames requested")
    bad = [int(i) for i in indices if not 0 <= int(i) < num_frames]
    if bad:
        raise VideoError(f"{path}: frame indices {bad[:5]} outside the video's {num_frames} frames")


@contextlib.contextmanager
def open_video(path: Union[str, Path], backend: str = "decord") -> Iterator[Union[_DecordReader, _PyAVReader]]:
    """Open `path` with the chosen backend (a folder of JPEG frames with Pillow); closed when the block ends."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown video backend {backend!r}; choose one of {BACKENDS}")
    check_video_file(path)
    if Path(path).is_dir():
        reader = _FrameFolderReader(os.fspath(path))
    else:
        reader = _DecordReader(os.fspath(path)) if backend == "decord" else _PyAVReader(os.fspath(path))
    try:
        yield reader
    finally:
        reader.close()


def read_frames(path: Union[str, Path], indices: List[int], backend: str = "decord") -> np.ndarray:
    with open_video(path, backend) as reader:
        return reader.get_frames(indices)
