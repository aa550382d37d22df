"""A small synthetic driving dataset whose pictures show what its labels say.

`generate_synthetic_av(dataset_cfg)` writes, for the train and eval splits (sizes and seed from
`dataset_cfg.synthetic`, a SyntheticConfig), under `dataset_cfg.root`:

    <split>/<video_dir>/<id><camera_suffix><video_ext>    H.264 mp4 (PyAV / libx264, yuv420p)
    <split>/<meta_dir>/<id><label_suffix>                 cookbook label: the 15 caption keys + extras
    <split>/mcq.jsonl                                     multiple-choice questions (one JSON per line)
    <split>/lingoqa.jsonl                                 free-form questions (one JSON per line)

Label files keep the cookbook's quirks: booleans as the strings "True"/"False", nulls, a list
(interactive_expanded_metaaction), non-ASCII text (a non-breaking hyphen), multi-line traffic_sign,
and extra keys the caption task drops (critical_object, noninteractive_expanded_metaaction).

What the pictures carry (so a model can learn it):
- weather: sky colour and overlays (clear: blue sky; overcast: grey; rain: streaks and a darker,
  wet road; fog: everything blended towards grey; snow: white flakes and a white verge);
- lighting: overall brightness and sky tint (daytime bright, dusk orange and dimmer, night dark);
- junction / ego action: the road's vanishing point drifts left or right during a turn;
- lead vehicle: a red box on the road ahead; it grows when the ego vehicle closes in (braking lead);
- pedestrian: a yellow figure crossing the road from one side;
- traffic light: a lamp box upper right showing red or green.

MCQ options (`synthetic.mcq_option_order`): fixed lists the shown options of a question in the same order
every time (as a benchmark's fixed questions do: the answer's letter names what the clip shows, so a model can
answer from the video alone); shuffled puts them in random order (the model must also read the options).

MCQ line format (`mcq.jsonl`):
    {"id": "<clip id>_q<k>", "clip": "<clip id>", "video": "<video path relative to the split dir>",
     "question": str, "options": {"A": str, "B": str, "C": str, "D": str}, "answer": "A".."D",
     "category": str}
LingoQA line format (`lingoqa.jsonl`):
    {"id": "<clip id>_q<k>", "clip": "<clip id>", "video": "<video path relative to the split dir>",
     "question": str, "answers": [str, ...]}
"""

import json
import os
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

import numpy as np

from cosmos_exp.config.data import DatasetConfig
from cosmos_exp.repro.atomic import write_text_atomic

WEATHERS = ("clear", "overcast", "rain", "fog", "snow")
LIGHTINGS = ("daytime", "dusk", "night")
ACTIONS = ("straight", "left", "right")
LEADS = ("none", "following", "braking")
LIGHTS = ("none", "red", "green")

_WEATHER_TEXT = {
    "clear": "Clear sky, sunny",
    "overcast": "Overcast, grey sky",
    "rain": "Light rain",
    "fog": "Dense fog, low visibility",
    "snow": "Snowfall",
}
_ROAD_TEXT = {
    "clear": "Dry asphalt",
    "overcast": "Dry asphalt",
    "rain": "Wet surface with puddles",
    "fog": "Damp surface",
    "snow": "Snow on the verge, slushy lane",
}
_LIGHTING_TEXT = {
    "daytime": "Daytime (bright, high\u2011contrast daylight)",
    "dusk": "Dusk (low sun, orange sky)",
    "night": "Night (dark, headlights only)",
}
_JUNCTION_TEXT = {
    "straight": "Straight segment - uninterrupted roadway with no intersections or turns",
    "left": "Curve / left turn - the road bends to the left",
    "right": "Curve / right turn - the road bends to the right",
}


@dataclass
class Scene:
    weather: str
    lighting: str
    action: str
    lead: str
    pedestrian: bool
    light: str


def draw_scene(rng: random.Random) -> Scene:
    light = rng.choice(LIGHTS)
    lead = rng.choice(LEADS)
    if light == "red":
        lead = rng.choice(("none", "braking"))
    return Scene(
        weather=rng.choice(WEATHERS),
        lighting=rng.choice(LIGHTINGS),
        action="straight" if light == "red" else rng.choice(ACTIONS),
        lead=lead,
        pedestrian=rng.random() < 0.35,
        light=light,
    )


# -- pictures -----------------------------------------------------------------------------------

_SKY = {
    "clear": (90, 150, 235),
    "overcast": (150, 150, 155),
    "rain": (105, 110, 120),
    "fog": (190, 190, 190),
    "snow": (205, 210, 220),
}
_BRIGHTNESS = {"daytime": 1.0, "dusk": 0.65, "night": 0.22}


def render_frames(scene: Scene, num_frames: int, width: int, height: int, seed: int) -> np.ndarray:
    """uint8 [T, H, W, 3] frames of one clip."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    horizon = int(height * 0.42)
    frames = np.empty((num_frames, height, width, 3), dtype=np.float32)
    drift = {"straight": 0.0, "left": -1.0, "right": 1.0}[scene.action]  # the road bends towards the turn
    ped_dir = rng.choice([-1.0, 1.0])
    for t in range(num_frames):
        u = t / max(1, num_frames - 1)
        img = np.empty((height, width, 3), dtype=np.float32)
        sky = np.array(_SKY[scene.weather], dtype=np.float32)
        if scene.lighting == "dusk":
            sky = sky * 0.5 + np.array([240, 140, 60], dtype=np.float32) * 0.5
        img[:horizon] = sky
        verge = (235, 235, 240) if scene.weather == "snow" else (70, 120, 60)
        img[horizon:] = verge
        # road: a trapezoid from the bottom edge to a vanishing point that drifts during a turn
        vx = width / 2 + drift * u * width * 0.35
        depth = np.clip((yy - horizon) / max(1, height - horizon), 0, 1)
        centre = vx + (width / 2 - vx) * depth
        half = 4 + depth * width * 0.45
        road = (yy >= horizon) & (np.abs(xx - centre) < half)
        road_col = np.array((55, 55, 60) if scene.weather == "rain" else (95, 95, 100), dtype=np.float32)
        img[road] = road_col
        # dashed centre line moving towards the camera
        dash = ((depth * 6 + u * 3) % 1.0) < 0.5
        line = road & (np.abs(xx - centre) < 0.5 + depth * 2) & dash
        img[line] = (230, 230, 200)
        if scene.lead != "none":
            scale = 0.18 + (0.22 * u if scene.lead == "braking" else 0.0)
            d = 0.35 + (0.3 * u if scene.lead == "braking" else 0.0)
            cy = horizon + d * (height - horizon)
            cx = vx + (width / 2 - vx) * d
            w2, h2 = width * scale / 2, width * scale * 0.35
            box = (np.abs(xx - cx) < w2) & (yy > cy - h2) & (yy < cy)
            img[box] = (200, 30, 30)
            lamps = box & (yy > cy - h2 * 0.35) & (np.abs(np.abs(xx - cx) - w2 * 0.7) < w2 * 0.2)
            img[lamps] = (255, 90, 60) if scene.lead == "braking" else (150, 20, 20)
        if scene.pedestrian:
            px = width / 2 + ped_dir * (0.45 - 0.9 * u) * width * 0.6
            py = horizon + 0.55 * (height - horizon)
            fig = (np.abs(xx - px) < max(1.5, width * 0.012)) & (yy > py - height * 0.16) & (yy < py)
            img[fig] = (250, 210, 40)
        if scene.light != "none":
            x0, y0 = int(width * 0.82), int(height * 0.06)
            bw, bh = max(4, width // 24), max(9, height // 8)
            img[y0:y0 + bh, x0:x0 + bw] = (25, 25, 25)
            lamp = (230, 20, 20) if scene.light == "red" else (20, 220, 60)
            ly = y0 + (1 if scene.light == "red" else bh // 2 + 1)
            img[ly:ly + bh // 2 - 1, x0 + 1:x0 + bw - 1] = lamp
        img *= _BRIGHTNESS[scene.lighting]
        if scene.lighting == "night":  # headlight cone on the road
            cone = road & (depth > 0.4)
            img[cone] += 45
        if scene.weather == "fog":
            img = img * 0.45 + 175 * _BRIGHTNESS[scene.lighting] * 0.55
        elif scene.weather == "rain":
            streaks = rng.random((height, width)) < 0.025
            img[streaks] = img[streaks] * 0.4 + 200 * 0.6
        elif scene.weather == "snow":
            flakes = rng.random((height, width)) < 0.02
            img[flakes] = 250
        frames[t] = img
    return np.clip(frames, 0, 255).astype(np.uint8)


def write_mp4(path: Path, frames: np.ndarray, fps: int) -> None:
    """H.264 mp4 via PyAV, written to a temp file and renamed into place."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".mp4", dir=path.parent)
    os.close(fd)
    try:
        with av.open(tmp, mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=int(fps))
            stream.width, stream.height = frames.shape[2], frames.shape[1]
            stream.pix_fmt = "yuv420p"
            # x264's macroblock-tree rate control with lookahead made the same frames encode differently from
            # one call to the next in one process (seen with PyAV 18); without it the bytes depend only on
            # the frames, so a seed gives the same dataset every time.
            stream.codec_context.options = {"crf": "16", "preset": "veryfast", "threads": "1",
                                            "x264-params": "mbtree=0:rc-lookahead=0"}
            for arr in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# -- labels and questions -----------------------------------------------------------------------

def scene_label(scene: Scene) -> Dict:
    actions: List[str] = []
    if scene.lead != "none":
        actions.append("Vehicle following" if scene.lead == "following" else "Slow down for braking lead vehicle")
    if scene.pedestrian:
        actions.append("Yield to VRUs")
    if scene.light == "red":
        actions.append("Stop at red light")
    move = {"straight": "proceeds straight", "left": "turns left", "right": "turns right"}[scene.action]
    parts = [f"The ego vehicle {move} on a two-lane road ({scene.lighting}, {scene.weather})."]
    if scene.lead == "following":
        parts.append("It keeps a steady distance to the red vehicle ahead.")
    elif scene.lead == "braking":
        parts.append("The red vehicle ahead brakes and the ego closes in, so it slows down.")
    if scene.pedestrian:
        parts.append("A pedestrian crosses the road in front of the ego, which yields.")
    if scene.light != "none":
        parts.append(f"The traffic light ahead is {scene.light}.")
    difficulty = 1 + (scene.weather in ("fog", "snow")) + (scene.lighting == "night") + scene.pedestrian
    light_text = {"none": "N/A", "red": "Red light for the ego lane", "green": "Green light for the ego lane"}
    signs = "N/A" if scene.light == "none" else "A traffic signal ahead sign.\nA speed limit 30 sign.\n"
    return {
        "weather": _WEATHER_TEXT[scene.weather],
        "lighting": _LIGHTING_TEXT[scene.lighting],
        "road_conditions": _ROAD_TEXT[scene.weather],
        "traffic_light": light_text[scene.light],
        "traffic_sign": signs,
        "additional_traffic_rules": None if not scene.pedestrian else "Pedestrians have priority at crossings",
        "road_type": "Collector road - moderate speed with frequent driveways and intersections.",
        "junction_type": _JUNCTION_TEXT[scene.action],
        "lane_type": "Single lane each direction, no turn lanes.",
        "additional_map_rules": None,
        "interactive_expanded_metaaction": actions,
        "safety_analysis": " ".join(parts),
        "driving_difficulty": int(min(4, difficulty)),
        "rule_violation": "False",
        "interesting_scenario": "True" if (scene.pedestrian or scene.lead == "braking") else "False",
        "critical_object": "pedestrian" if scene.pedestrian else ("lead vehicle" if scene.lead != "none" else None),
        "noninteractive_expanded_metaaction": [{"straight": "Keep lane", "left": "Turn left",
                                                "right": "Turn right"}[scene.action]],
    }


def _mcq(rng: random.Random, qid: str, clip: str, video: str, question: str, correct: str,
         distractors: List[str], category: str, option_order: str) -> Dict:
    options = [correct] + rng.sample([d for d in distractors if d != correct], 3)
    rng.shuffle(options)  # drawn either way, so the clips of a seed do not depend on option_order
    if option_order == "fixed":
        options.sort(key=distractors.index)
    letters = "ABCD"
    return {"id": qid, "clip": clip, "video": video, "question": question,
            "options": dict(zip(letters, options)), "answer": letters[options.index(correct)],
            "category": category}


def scene_questions(scene: Scene, clip: str, video: str, rng: random.Random, option_order: str):
    weather = {"clear": "Clear", "overcast": "Overcast", "rain": "Rain", "fog": "Fog", "snow": "Snow"}
    action = {"straight": "It drives straight ahead", "left": "It turns left", "right": "It turns right"}
    lead = {"none": "There is no vehicle ahead", "following": "A red vehicle ahead keeps its distance",
            "braking": "A red vehicle ahead brakes and gets closer"}
    light = {"daytime": "Daytime", "dusk": "Dusk", "night": "Night"}
    mcq = [
        _mcq(rng, f"{clip}_q0", clip, video, "What is the weather in this clip?", weather[scene.weather],
             list(weather.values()), "environment", option_order),
        _mcq(rng, f"{clip}_q1", clip, video, "What does the ego vehicle do?", action[scene.action],
             list(action.values()) + ["It reverses"], "ego_action", option_order),
        _mcq(rng, f"{clip}_q2", clip, video, "What is ahead of the ego vehicle in its lane?", lead[scene.lead],
             list(lead.values()) + ["A bus pulls out of a stop"], "agents", option_order),
        _mcq(rng, f"{clip}_q3", clip, video, "What are the lighting conditions?", light[scene.lighting],
             list(light.values()) + ["Tunnel lighting"], "environment", option_order),
    ]
    lingo = [
        {"id": f"{clip}_q0", "clip": clip, "video": video, "question": "Is there a pedestrian crossing the road?",
         "answers": ["Yes, a pedestrian crosses in front of the car.", "Yes."] if scene.pedestrian
         else ["No, there is no pedestrian on the road.", "No."]},
        {"id": f"{clip}_q1", "clip": clip, "video": video, "question": "Which way does the road go?",
         "answers": {"straight": ["It goes straight ahead."], "left": ["It bends to the left.", "Left."],
                     "right": ["It bends to the right.", "Right."]}[scene.action]},
        {"id": f"{clip}_q2", "clip": clip, "video": video, "question": "What is the weather like?",
         "answers": [_WEATHER_TEXT[scene.weather] + ".", weather[scene.weather] + "."]},
    ]
    if scene.light != "none":
        lingo.append({"id": f"{clip}_q3", "clip": clip, "video": video,
                      "question": "What colour is the traffic light?", "answers": [f"It is {scene.light}."]})
    return mcq, lingo




def generate_synthetic_av(dataset_cfg: DatasetConfig) -> Dict:
    """Write the train and eval splits under dataset_cfg.root; returns counts, paths and seconds taken."""
    syn = dataset_cfg.synthetic
    if syn is None:
        raise ValueError("dataset.synthetic is not set; it holds the size and seed of the generated dataset")
    start = time.perf_counter()
    root = Path(dataset_cfg.root).resolve()
    num_frames = max(1, int(round(syn.seconds * syn.fps)))
    result: Dict = {"root": str(root), "splits": {}, "num_frames": num_frames}
    for split_index, (split, count) in enumerate(((dataset_cfg.train_split, syn.num_train),
                                                  (dataset_cfg.eval_split, syn.num_eval))):
        split_dir = root / split
        rng = random.Random(f"{syn.seed}/{split}")
        mcq_lines, lingo_lines = [], []
        for i in range(count):
            clip = f"synth_{split}_{i:04d}"
            scene = draw_scene(rng)
            video_rel = f"{dataset_cfg.video_dir}/{clip}{dataset_cfg.camera_suffix}{dataset_cfg.video_ext}"
            frames = render_frames(scene, num_frames, syn.width, syn.height, seed=syn.seed * 100003 + split_index * 10007 + i)
            write_mp4(split_dir / video_rel, frames, syn.fps)
            label = scene_label(scene)
            write_text_atomic(split_dir / dataset_cfg.meta_dir / f"{clip}{dataset_cfg.label_suffix}",
                          json.dumps(label, indent=4, ensure_ascii=False) + "\n")
            mcq, lingo = scene_questions(scene, clip, video_rel, rng, syn.mcq_option_order)
            mcq_lines += mcq
            lingo_lines += lingo
        write_text_atomic(split_dir / "mcq.jsonl", "".join(json.dumps(q, ensure_ascii=False) + "\n" for q in mcq_lines))
        write_text_atomic(split_dir / "lingoqa.jsonl",
                      "".join(json.dumps(q, ensure_ascii=False) + "\n" for q in lingo_lines))
        result["splits"][split] = {"videos": count, "mcq": len(mcq_lines), "lingoqa": len(lingo_lines)}
    result["seconds"] = round(time.perf_counter() - start, 3)
    return result
