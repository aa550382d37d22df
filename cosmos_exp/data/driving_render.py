"""Camera pictures of a synthetic road, as a rig's cameras see it: the visual cue of the driving scenes.

The world is flat ground (z = 0) in the ego frame at t0 (x forward, y left, z up): a road of constant width
centred on a polyline (the path the ego drives: its straight history, its future, and the road beyond),
with solid white edge lines and a dashed centre line, grass around it, sky above the horizon, and haze with
distance. A camera is an equidistant (f-theta) fisheye at its rig mounting (CameraMountConfig): each pixel's
ray is cast to the ground, and what the ground point is (road, line, grass) gives its colour. So a turn shows
as the road bending away in the front camera and sweeping through a cross camera, by an amount that depends
on the lens and the mounting: which is what a rig change changes.

Pure numpy and deterministic: the same inputs give the same bytes. Textures are functions of world
position, so a scene looks the same to every rig and every frame.
"""

import math
from dataclasses import dataclass
from typing import Sequence, Tuple

import numpy as np

from cosmos_exp.config.trajectory import CameraMountConfig


@dataclass
class SceneLook:
    """What one scene's world looks like (drawn per scene; the road geometry is the path)."""

    road_width_m: float
    road_rgb: Tuple[float, float, float]
    grass_rgb: Tuple[float, float, float]
    sky_rgb: Tuple[float, float, float]
    texture_phase: Tuple[float, float, float, float]  # phases of the grass and road texture (radians)
    dash_phase_m: float


DASH_PERIOD_M = 6.0  # centre-line dash + gap
DASH_LENGTH_M = 3.0
LINE_WIDTH_M = 0.25
HAZE_START_M = 15.0


def camera_rays(cam: CameraMountConfig, width: int, height: int) -> np.ndarray:
    """Unit ray (H, W, 3) of each pixel centre in the ego frame's axes, for the equidistant lens model: the
    angle from the optical axis is the pixel's distance from the image centre over f, f = (width / 2) / (fov / 2)."""
    f = (width / 2.0) / math.radians(cam.fov_deg / 2.0)
    u = np.arange(width, dtype=np.float64) + 0.5 - width / 2.0  # right
    v = np.arange(height, dtype=np.float64) + 0.5 - height / 2.0  # down
    du, dv = np.meshgrid(u, v)
    r = np.hypot(du, dv)
    theta = r / f
    scale = np.where(r > 0, np.sin(theta) / np.where(r > 0, r, 1.0), 1.0 / f)
    # camera axes -> vehicle axes: forward = optical axis, left = -right, up = -down
    forward, left, up = np.cos(theta), -du * scale, -dv * scale
    pitch, yaw = math.radians(cam.pitch_deg), math.radians(cam.yaw_deg)
    # tilt down by pitch (about the left axis), then turn left by yaw (about up)
    forward, up = forward * math.cos(pitch) + up * math.sin(pitch), up * math.cos(pitch) - forward * math.sin(pitch)
    x = forward * math.cos(yaw) - left * math.sin(yaw)
    y = forward * math.sin(yaw) + left * math.cos(yaw)
    return np.stack([x, y, up], axis=-1)


def _nearest_on_polyline(points: np.ndarray, line: np.ndarray):
    """Distance (M,) from each point (M, 2) to the polyline (N, 2), and the arc length of the nearest point on it
    (float32 M x segments work arrays, updated in place: this is the renderer's inner loop)."""
    a = line[:-1].astype(np.float32)
    seg = (line[1:] - line[:-1]).astype(np.float32)
    seg_len = np.sqrt((seg ** 2).sum(-1))
    start_s = np.concatenate([[0.0], np.cumsum(seg_len)[:-1]]).astype(np.float32)
    inv = 1.0 / np.maximum(seg_len ** 2, 1e-12)
    px = points[:, 0:1].astype(np.float32) - a[None, :, 0]  # M x S
    py = points[:, 1:2].astype(np.float32) - a[None, :, 1]
    t = px * seg[None, :, 0]
    t += py * seg[None, :, 1]
    t *= inv[None]
    np.clip(t, 0.0, 1.0, out=t)
    px -= t * seg[None, :, 0]
    py -= t * seg[None, :, 1]
    px *= px
    py *= py
    px += py
    best = px.argmin(axis=1)
    rows = np.arange(len(points))
    dist = np.sqrt(px[rows, best]).astype(np.float64)
    return dist, (start_s[best] + t[rows, best] * seg_len[best]).astype(np.float64)


def render_camera(cam: CameraMountConfig, ego_xy: Sequence[float], road: np.ndarray, look: SceneLook,
                  width: int, height: int, view_range_m: float, supersample: int = 1) -> np.ndarray:
    """float32 (H, W, 3) picture in 0..255 of camera `cam` with the ego (heading +x) at ego_xy; `road` is the
    centre polyline (N, 2) in the t0 frame. Edges are blended over a pixel's footprint on the ground, so thin
    lines far away fade instead of aliasing; `supersample` renders s x s rays per pixel on top of that."""
    ss = max(1, int(supersample))
    rays = camera_rays(cam, width * ss, height * ss).reshape(-1, 3)
    origin = np.array([ego_xy[0] + cam.x_m, ego_xy[1] + cam.y_m, cam.height_m])
    sky = np.asarray(look.sky_rgb, dtype=np.float64)
    haze_rgb = sky + 40.0
    # sky: brighter towards the horizon
    elevation = np.clip(rays[:, 2], 0.0, 1.0)[:, None]
    img = sky[None] * (1.0 - 0.35 * elevation) + 40.0 * (1.0 - elevation)
    ground = rays[:, 2] < -1e-4
    t = np.where(ground, cam.height_m / np.where(ground, -rays[:, 2], 1.0), np.inf)
    reach = t * np.linalg.norm(rays[:, :2], axis=-1)
    idx = np.nonzero(ground & (reach < view_range_m))[0]
    if len(idx):
        gx = origin[0] + t[idx] * rays[idx, 0]
        gy = origin[1] + t[idx] * rays[idx, 1]
        dist, arc = _nearest_on_polyline(np.stack([gx, gy], -1), _within(road, origin[:2], view_range_m))
        # a pixel's footprint on the ground (m): range x angle per pixel, stretched by the grazing angle
        f = (width * ss / 2.0) / math.radians(cam.fov_deg / 2.0)
        foot = t[idx] / f / np.maximum(-rays[idx, 2], 0.05)
        cover = lambda signed: np.clip(0.5 + signed / np.maximum(foot, 1e-3), 0.0, 1.0)[:, None]  # noqa: E731
        p = look.texture_phase
        grain = 0.5 * np.sin(1.7 * gx + 0.9 * gy + p[0]) * np.sin(0.6 * gx - 1.3 * gy + p[1])
        colour = np.asarray(look.grass_rgb)[None] * (1.0 + 0.12 * grain[:, None])
        road_grain = 0.5 * np.sin(2.3 * gx + p[2]) * np.sin(2.9 * gy + p[3])
        road_rgb = np.asarray(look.road_rgb)[None] * (1.0 + 0.05 * road_grain[:, None])
        half = look.road_width_m / 2.0
        line_rgb = np.array([[235.0, 235.0, 225.0]])
        colour = colour + (road_rgb - colour) * cover(half - dist)
        edge = cover(half - dist) * cover(dist - (half - 2 * LINE_WIDTH_M))
        dash = ((arc + look.dash_phase_m) % DASH_PERIOD_M) < DASH_LENGTH_M
        centre = cover(LINE_WIDTH_M - dist) * dash[:, None]
        colour = colour + (line_rgb - colour) * np.maximum(edge, centre)
        haze = np.clip((reach[idx] - HAZE_START_M) / (view_range_m - HAZE_START_M), 0.0, 1.0)[:, None]
        img[idx] = colour * (1.0 - haze) + haze_rgb[None] * haze
    img = img.reshape(height, ss, width, ss, 3).mean(axis=(1, 3))
    return img.astype(np.float32)


def _within(road: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    """The stretch of the polyline that can matter within `radius` of `centre` (the first and last points near
    it, with one point of margin), so the nearest-segment search skips the rest."""
    near = np.nonzero(np.linalg.norm(road - centre[None], axis=-1) < radius + 10.0)[0]
    if len(near) == 0:
        return road[:2]
    return road[max(0, near[0] - 1): near[-1] + 2]
