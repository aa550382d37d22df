"""The one conversation builder (cosmos-rl's message format) used by every backend."""

import os
from typing import TYPE_CHECKING, Dict, List, Optional

if TYPE_CHECKING:  # only a type: the cosmos-rl entry imports this module without Hydra
    from cosmos_exp.config.data import VisionConfig


def video_item(video_path: str, vision: "VisionConfig") -> Dict:
    """The user turn's video entry; exactly one of nframes / fps, as cosmos-rl and qwen-vl-utils expect."""
    item = {"type": "video", "video": os.path.abspath(video_path)}
    if vision.nframes is not None:
        item["nframes"] = int(vision.nframes)
    else:
        item["fps"] = float(vision.fps)
    item["min_pixels"] = int(vision.min_pixels)
    item["max_pixels"] = int(vision.max_pixels)
    if vision.total_pixels:
        item["total_pixels"] = int(vision.total_pixels)
    return item


def build_conversation(
    system: str, user_text: str, video_path: str, vision: "VisionConfig", target: Optional[str]
) -> List[Dict]:
    """[system, user[video, text], assistant(target)]; the assistant turn is left out when target is None."""
    messages: List[Dict] = [
        {"role": "system", "content": system},
        {"role": "user", "content": [video_item(video_path, vision), {"type": "text", "text": user_text}]},
    ]
    if target is not None:
        messages.append({"role": "assistant", "content": target})
    return messages


def split_conversation(conversation: List[Dict]):
    """(system, user_text, video item, target or None) of a conversation made by build_conversation."""
    system, user, target = "", None, None
    for msg in conversation:
        if msg["role"] == "system":
            system = msg["content"] if isinstance(msg["content"], str) else "".join(
                c.get("text", "") for c in msg["content"]
            )
        elif msg["role"] == "user":
            user = msg["content"]
        elif msg["role"] == "assistant":
            target = msg["content"] if isinstance(msg["content"], str) else "".join(
                c.get("text", "") for c in msg["content"]
            )
    if user is None:
        raise ValueError("conversation has no user turn")
    videos = [c for c in user if c.get("type") == "video"]
    if len(videos) != 1:
        raise ValueError(f"conversation's user turn must hold exactly one video, found {len(videos)}")
    text = "".join(c["text"] for c in user if c.get("type") == "text")
    return system, text, videos[0], target
