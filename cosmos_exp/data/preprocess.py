"""Video (and still-image) preprocessing of the Qwen2.5-VL and Qwen3-VL families in plain torch.

The steps and their arithmetic follow the official Hugging Face video processors
(Qwen2VLVideoProcessor, used by Qwen2.5-VL, and Qwen3VLVideoProcessor) so the tensors are the same:

1. target size: `smart_resize` to multiples of patch_size * merge_size within the pixel bounds;
2. resize uint8 frames with antialiased bicubic interpolation (torchvision's CPU path is torch's
   native uint8 kernel; elsewhere float32 then clamp + round back to uint8);
3. rescale by 1/255 and normalise, fused as (x - mean * 255) / (std * 255) in float32;
4. pad the frame count to a multiple of temporal_patch_size by repeating the last frame;
5. flatten into patches ordered (t, h-block, w-block, h-in-merge, w-in-merge) with each patch laid
   out as (channel, time, row, col): `pixel_values_videos` [N, C*T*P*P] and `video_grid_thw` [1, 3].

Pixel bounds are per frame (`vision.min_pixels` / `max_pixels`, as cosmos-rl and qwen-vl-utils use
them); `vision.total_pixels` caps the whole clip the qwen-vl-utils way. For Qwen3-VL the official
processor bounds the whole clip (t * h * w); we hand it the per-frame bounds times the frame count,
which gives the same size whenever the frame count is a multiple of the temporal patch size.
"""

import math
from dataclasses import dataclass
from typing import Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

FAMILIES = ("qwen2_5_vl", "qwen3_vl")


@dataclass(frozen=True)
class VisionSpec:
    """The vision encoder's constants and the processor's normalisation, from the checkpoint's files."""

    family: str
    patch_size: int
    temporal_patch_size: int
    merge_size: int
    image_mean: Tuple[float, float, float]
    image_std: Tuple[float, float, float]
    rescale_factor: float = 1 / 255

    @property
    def factor(self) -> int:
        return self.patch_size * self.merge_size


def smart_resize_qwen2(height: int, width: int, factor: int, min_pixels: float, max_pixels: float) -> Tuple[int, int]:
    """Per-frame size rule of Qwen2-VL / Qwen2.5-VL."""
    if max(height, width) / min(height, width) > 200:
        raise ValueError(f"aspect ratio {max(height, width) / min(height, width):.1f} is above 200")
    h = round(height / factor) * factor
    w = round(width / factor) * factor
    if h * w > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h = max(factor, math.floor(height / beta / factor) * factor)
        w = max(factor, math.floor(width / beta / factor) * factor)
    elif h * w < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h = math.ceil(height * beta / factor) * factor
        w = math.ceil(width * beta / factor) * factor
    return h, w


def smart_resize_qwen3(
    num_frames: int, height: int, width: int, temporal_factor: int, factor: int, min_pixels: float, max_pixels: float
) -> Tuple[int, int]:
    """Whole-clip size rule of Qwen3-VL: the bounds apply to frames * height * width."""
    if num_frames < temporal_factor:
        raise ValueError(f"{num_frames} frames is fewer than the temporal patch size {temporal_factor}")
    if height < factor or width < factor:  # tiny frames are first scaled up to one patch block
        scale = max(factor / height, factor / width)
        height, width = int(height * scale), int(width * scale)
    if max(height, width) / min(height, width) > 200:
        raise ValueError(f"aspect ratio {max(height, width) / min(height, width):.1f} is above 200")
    h = round(height / factor) * factor
    w = round(width / factor) * factor
    t = round(num_frames / temporal_factor) * temporal_factor
    if t * h * w > max_pixels:
        beta = math.sqrt((num_frames * height * width) / max_pixels)
        h = max(factor, math.floor(height / beta / factor) * factor)
        w = max(factor, math.floor(width / beta / factor) * factor)
    elif t * h * w < min_pixels:
        beta = math.sqrt(min_pixels / (num_frames * height * width))
        h = math.ceil(height * beta / factor) * factor
        w = math.ceil(width * beta / factor) * factor
    return h, w


def per_frame_max_pixels(num_frames: int, min_pixels: int, max_pixels: int, total_pixels, temporal_patch_size: int):
    """qwen-vl-utils' clip budget: each frame gets an even share of total_pixels, floored at 1.05 * min."""
    if not total_pixels:
        return max_pixels
    return max(min(max_pixels, total_pixels / num_frames * temporal_patch_size), int(min_pixels * 1.05))


def target_size(spec: VisionSpec, num_frames: int, height: int, width: int, vision) -> Tuple[int, int]:
    """(height, width) the frames are resized to, for `vision` (a VisionConfig)."""
    max_px = per_frame_max_pixels(
        num_frames, vision.min_pixels, vision.max_pixels, vision.total_pixels, spec.temporal_patch_size
    )
    if spec.family == "qwen2_5_vl":
        return smart_resize_qwen2(height, width, spec.factor, vision.min_pixels, max_px)
    if spec.family == "qwen3_vl":
        return smart_resize_qwen3(
            num_frames, height, width, spec.temporal_patch_size, spec.factor,
            vision.min_pixels * num_frames, max_px * num_frames,
        )
    raise ValueError(f"unknown model family {spec.family!r}; expected one of {FAMILIES}")


def resize_frames(frames: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """Antialiased bicubic resize of uint8 frames [T, C, H, W] -> uint8 [T, C, h, w]."""
    if tuple(frames.shape[-2:]) == tuple(size):
        return frames  # torchvision returns the input unchanged too
    if frames.device.type == "cpu":
        # torch's native uint8 kernel, which is what torchvision uses on CPU for bicubic.
        return F.interpolate(frames, size=list(size), mode="bicubic", align_corners=False, antialias=True)
    out = F.interpolate(frames.float(), size=list(size), mode="bicubic", align_corners=False, antialias=True)
    return out.clamp_(0, 255).round_().to(torch.uint8)


def normalize(frames: torch.Tensor, spec: VisionSpec, channel_dim: int = -3) -> torch.Tensor:
    """uint8 -> float32 (x / 255 - mean) / std, fused the way the official processors fuse it.

    Elementwise, so it gives the same bits on frames [T, C, H, W] or on patches laid out
    [N, C, T, P, P] (channel_dim=1); the latter lets us patchify while the data is still uint8.
    """
    mean = torch.tensor(spec.image_mean, device=frames.device) * (1.0 / spec.rescale_factor)
    std = torch.tensor(spec.image_std, device=frames.device) * (1.0 / spec.rescale_factor)
    shape = [1] * frames.dim()
    shape[channel_dim] = -1
    x = frames.to(torch.float32)
    return x.sub_(mean.view(shape)).div_(std.view(shape))


def patchify(frames: torch.Tensor, spec: VisionSpec) -> Tuple[torch.Tensor, Tuple[int, int, int]]:
    """float [T, C, H, W] -> ([grid_t*grid_h*grid_w, C*tps*P*P], (grid_t, grid_h, grid_w))."""
    t, c, h, w = frames.shape
    p, m, tps = spec.patch_size, spec.merge_size, spec.temporal_patch_size
    if h % (p * m) or w % (p * m):
        raise ValueError(f"frame size {h}x{w} is not a multiple of patch_size * merge_size = {p * m}")
    if t % tps:  # repeat the last frame up to a whole temporal patch
        frames = torch.cat([frames, frames[-1:].expand(tps - t % tps, -1, -1, -1)], dim=0)
        t = frames.shape[0]
    gt, gh, gw = t // tps, h // p, w // p
    x = frames.reshape(gt, tps, c, gh // m, m, p, gw // m, m, p)
    # -> (gt, h-block, w-block, h-in-merge, w-in-merge, C, tps, P, P)
    x = x.permute(0, 3, 6, 4, 7, 2, 1, 5, 8)
    return x.reshape(gt * gh * gw, c * tps * p * p), (gt, gh, gw)


def preprocess_frames(frames: np.ndarray, spec: VisionSpec, vision) -> Tuple[torch.Tensor, torch.Tensor]:
    """uint8 [T, H, W, 3] frames -> (pixel_values_videos [N, C*T*P*P], video_grid_thw [1, 3])."""
    return patchify_normalise(resize_clip(frames, spec, vision), spec)


def resize_clip(frames: np.ndarray, spec: VisionSpec, vision) -> np.ndarray:
    """uint8 [T, H, W, 3] sampled frames -> uint8 [T, h, w, 3] at the model's size: the part of the preprocessing
    worth caching (data/clip_cache.py); everything after it is cheap and depends only on these bytes."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames [T, H, W, 3], got {frames.dtype} {tuple(frames.shape)}")
    # a channels-last view: torch's uint8 antialiased kernel reads it directly (a contiguous [T, C, H, W] copy
    # would take its generic path, about 6x slower at 1936x1220) and writes channels-last back
    video = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
    size = target_size(spec, video.shape[0], video.shape[2], video.shape[3], vision)
    return resize_frames(video, size).permute(0, 2, 3, 1).numpy()


def patchify_normalise(frames: np.ndarray, spec: VisionSpec) -> Tuple[torch.Tensor, torch.Tensor]:
    """Resized uint8 [T, h, w, 3] frames -> (pixel_values_videos, video_grid_thw [1, 3])."""
    video = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
    pixels, grid = _patchify_normalise(video, spec)
    return pixels, torch.tensor([grid], dtype=torch.long)


def _resize_patchify_normalise(video: torch.Tensor, size: Tuple[int, int], spec: VisionSpec):
    return _patchify_normalise(resize_frames(video, size), spec)


def _patchify_normalise(video: torch.Tensor, spec: VisionSpec):
    # patchify the uint8 frames (a quarter of the bytes to move), then normalise in the patch layout
    patches, grid = patchify(video, spec)
    tps, p = spec.temporal_patch_size, spec.patch_size
    pixels = normalize(patches.view(-1, 3, tps, p, p), spec, channel_dim=1).view(patches.shape[0], -1)
    return pixels, grid


def preprocess_images(images: Sequence[np.ndarray], spec: VisionSpec, min_pixels: int,
                      max_pixels: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Still images, each uint8 [H, W, 3] (sizes may differ; an array [N, H, W, 3] works too) ->
    (pixel_values [sum of patches, C*T*P*P], image_grid_thw [N, 3]).

    Each image is sized by the per-image rule of both families' image processors (Qwen2VLImageProcessor, which
    Qwen3-VL checkpoints name too) within [min_pixels, max_pixels], then repeated up to one temporal patch,
    as those processors do; the steps after the size are the video path's.
    """
    pixels, grids = [], []
    for image in images:
        if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected uint8 images [H, W, 3], got {image.dtype} {tuple(image.shape)}")
        frame = torch.from_numpy(np.ascontiguousarray(image[None])).permute(0, 3, 1, 2)
        size = smart_resize_qwen2(frame.shape[2], frame.shape[3], spec.factor, min_pixels, max_pixels)
        p, grid = _resize_patchify_normalise(frame, size, spec)
        pixels.append(p)
        grids.append(grid)
    if not grids:
        raise ValueError("preprocess_images: no images")
    return torch.cat(pixels), torch.tensor(grids, dtype=torch.long)


def num_video_tokens(grid_thw: Sequence[int], merge_size: int) -> int:
    """Placeholder tokens the language model consumes for one clip (or one image, t = 1)."""
    t, h, w = (int(v) for v in grid_thw)
    return t * h * w // (merge_size * merge_size)
