"""A Qwen3-VL backbone (Cosmos-Reason2) plus the action expert: the Alpamayo-style trajectory model.

`prefix(batch)` runs the backbone over the sample's prefix (camera images, ego-history tokens, prompt; see
cosmos_exp/data/trajectory_sample.py) and returns its per-layer KV cache; the expert denoises the 64 actions
against it. Stage 1 (`token_loss`) trains the backbone on the discrete future tokens; stage 2 (`stage2_loss`)
runs the backbone under no_grad and detaches its cache, so only the expert (and nothing of the backbone) can
learn; co-training (`cotrain_flow_loss`) keeps the cache in the graph; `sample` draws K trajectories by Euler steps and rolls them out from
the history's v0. The backbone is loaded through cosmos_exp.models.loading and must already hold the
trajectory tokens (cosmos_exp.models.trajectory_tokens.prepare_backbone).

The optional camera-id embedding is added to each image's tokens at the language model's input, through a
forward pre-hook on the backbone's language model (the vision features are placed into the input embeddings
inside transformers, so that is the first point they can be touched). It is backbone-side: zero at start, and
trained only where the backbone runs with gradients (stage 1), never by stage 2.
"""

import contextlib
from pathlib import Path
from typing import Any, Dict, Iterator, NamedTuple, Optional, Union

import torch
from torch import nn

from cosmos_exp.config.trajectory import ActionSpaceConfig, ExpertConfig, FlowMatchingConfig, TrajectoryPromptConfig
from cosmos_exp.models.action_expert import ActionExpert, Prefix
from cosmos_exp.models.loading import load_model
from cosmos_exp.trajectory import flow_matching
from cosmos_exp.trajectory.action_space import denormalise, integrate

BACKBONE_KEYS = ("input_ids", "attention_mask", "mm_token_type_ids", "pixel_values", "image_grid_thw")


class Samples(NamedTuple):
    actions: torch.Tensor  # (B, K, T, 2) normalised actions
    xy: torch.Tensor  # (B, K, T, 2) waypoints rolled out from each sample's v0


def _like_backbone(module: nn.Module, backbone: Any) -> nn.Module:
    """On the backbone's device, parameters in its dtype; buffers (rope and Fourier frequencies) stay float32, as
    transformers keeps the backbone's own rope frequencies."""
    module.to(backbone.device)
    for param in module.parameters():
        param.data = param.data.to(backbone.dtype)
    return module


class TrajectoryModel(nn.Module):
    def __init__(self, backbone: Any, expert_cfg: ExpertConfig, prompt_cfg: TrajectoryPromptConfig,
                 action_cfg: ActionSpaceConfig, flow_cfg: FlowMatchingConfig,
                 backbone_source: Optional[Union[str, Path]] = None) -> None:
        super().__init__()
        model_type = getattr(backbone.config, "model_type", None)
        if model_type != "qwen3_vl":
            raise ValueError(f"the trajectory model needs a Qwen3-VL backbone (Cosmos-Reason2); got model_type "
                             f"{model_type!r} from {backbone_source}")
        self.backbone = backbone
        self.expert = _like_backbone(ActionExpert(backbone.config.text_config, expert_cfg), backbone)
        self.camera_embedding: Optional[nn.Embedding] = None
        if prompt_cfg.camera_id_embedding:
            embedding = nn.Embedding(len(prompt_cfg.camera_order), backbone.config.text_config.hidden_size)
            nn.init.zeros_(embedding.weight)  # an untrained embedding leaves the backbone as it was
            self.camera_embedding = _like_backbone(embedding, backbone)
        self.expert_cfg, self.prompt_cfg = expert_cfg, prompt_cfg
        self.action_cfg, self.flow_cfg = action_cfg, flow_cfg
        self.backbone_source = str(backbone_source) if backbone_source is not None else None

    @classmethod
    def from_backbone(cls, backbone_dir: Union[str, Path], expert_cfg: ExpertConfig,
                      prompt_cfg: TrajectoryPromptConfig, action_cfg: ActionSpaceConfig,
                      flow_cfg: FlowMatchingConfig, dtype: str = "auto", device: str = "cpu",
                      seed: int = 0) -> "TrajectoryModel":
        """Load the backbone checkpoint and build a fresh expert (initialised from `seed`, the caller's RNG left
        as it was)."""
        backbone = load_model(backbone_dir, dtype=dtype, device=device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return cls(backbone, expert_cfg, prompt_cfg, action_cfg, flow_cfg, backbone_source=backbone_dir)

    def expert_parameters(self) -> Iterator[nn.Parameter]:
        """What stage 2 trains."""
        return self.expert.parameters()

    # -- backbone --------------------------------------------------------------------------------

    def prefix(self, batch: Dict[str, Any]) -> Prefix:
        """The backbone's KV cache over the batch's prefixes (right-padded) and the position after each."""
        lm = self.backbone.model
        device = self.backbone.device
        inputs = {k: batch[k].to(device) for k in BACKBONE_KEYS if k in batch}
        mask = inputs["attention_mask"].bool()
        positions, _ = lm.get_rope_index(inputs["input_ids"], inputs["mm_token_type_ids"],
                                         image_grid_thw=inputs.get("image_grid_thw"), attention_mask=mask.long())
        with self._camera_embedding(batch, inputs):
            out = lm(**inputs, position_ids=positions, use_cache=True)
        cache = out.cache if hasattr(out, "cache") else out.past_key_values
        keys = [layer.keys for layer in cache.layers]
        values = [layer.values for layer in cache.layers]
        next_position = positions.masked_fill(~mask[None], -1).amax(dim=(0, 2)) + 1
        return Prefix(keys, values, mask, next_position)

    @contextlib.contextmanager
    def _camera_embedding(self, batch: Dict[str, Any], inputs: Dict[str, torch.Tensor]):
        if self.camera_embedding is None:
            yield
            return
        image_mask = inputs["input_ids"] == self.backbone.config.image_token_id
        merge = self.backbone.config.vision_config.spatial_merge_size
        per_image = inputs["image_grid_thw"].prod(-1) // (merge * merge)
        camera = batch["camera_index"].to(per_image.device).repeat_interleave(per_image)
        if int(image_mask.sum()) != camera.numel():
            raise ValueError(f"camera_index covers {camera.numel()} image tokens, the batch has "
                             f"{int(image_mask.sum())}: one camera index per image, in prompt order")

        def add_camera(module, args, kwargs):
            embeds = kwargs["inputs_embeds"]
            if embeds.shape[1] != image_mask.shape[1]:  # a decoding step after the prefix: no image token
                return args, kwargs
            extra = torch.zeros_like(embeds)
            extra[image_mask] = self.camera_embedding(camera).to(embeds.dtype)
            kwargs["inputs_embeds"] = embeds + extra
            return args, kwargs

        handle = self.backbone.model.language_model.register_forward_pre_hook(add_camera, with_kwargs=True)
        try:
            yield
        finally:
            handle.remove()

    # -- stage 2 and sampling --------------------------------------------------------------------

    def token_loss(self, batch: Dict[str, Any]) -> torch.Tensor:
        """Stage 1: the backbone's mean cross-entropy over the batch's labelled tokens (the discrete future
        trajectory after <|traj_future_start|>, cosmos_exp/trajectory/future_tokens.py), with gradients."""
        device = self.backbone.device
        inputs = {k: batch[k].to(device) for k in BACKBONE_KEYS if k in batch}
        with self._camera_embedding(batch, inputs):
            return self.backbone(**inputs, labels=batch["labels"].to(device)).loss

    def stage2_loss(self, batch: Dict[str, Any], generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Flow-matching MSE of the expert on the batch's normalised actions, the backbone frozen: run without
        gradients and its cache detached, so no gradient can reach any backbone weight."""
        with torch.no_grad():
            prefix = self.prefix(batch)
        return self._flow_loss(batch, prefix.detach(), generator)

    def cotrain_flow_loss(self, batch: Dict[str, Any], generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """The same loss with the backbone run with gradients and its cache kept in the graph: co-training, where
        the expert's loss trains the backbone too."""
        return self._flow_loss(batch, self.prefix(batch), generator)

    def _flow_loss(self, batch: Dict[str, Any], prefix: Prefix, generator: Optional[torch.Generator]) -> torch.Tensor:
        x = batch["actions"].to(self.backbone.device, torch.float32)
        return flow_matching.loss(lambda x_t, t: self.expert(x_t, t, prefix), x, self.flow_cfg, generator=generator)

    @torch.no_grad()
    def sample(self, batch: Dict[str, Any], k: Optional[int] = None, steps: Optional[int] = None,
               generator: Optional[torch.Generator] = None, noise: Optional[torch.Tensor] = None) -> Samples:
        """K trajectories per sample (the flow config's n_samples / euler_steps unless given), from `noise`
        (B, K, T, 2) when given."""
        k = int(self.flow_cfg.n_samples if k is None else k)
        prefix = self.prefix(batch).repeat(k)
        b = batch["input_ids"].shape[0]
        shape = (self.action_cfg.n_steps, 2)
        actions = flow_matching.sample(lambda x_t, t: self.expert(x_t, t, prefix), b, shape, self.flow_cfg,
                                       generator=generator, steps=steps, n_samples=k, device=self.backbone.device,
                                       noise=noise)
        return Samples(actions, self.rollout(actions, batch["v0"]))

    def rollout(self, actions: torch.Tensor, v0: torch.Tensor) -> torch.Tensor:
        """Waypoints (B, K, T, 2) of normalised actions (B, K, T, 2), each sample's from its v0 (B,)."""
        v0 = v0.to(actions.device, torch.float32)[:, None]
        return integrate(denormalise(actions.float(), self.action_cfg), v0, self.action_cfg.dt).xy

    @torch.no_grad()
    def decode_future_tokens(self, batch: Dict[str, Any], offset: int, pad_id: int) -> torch.Tensor:
        """Stage 1's output: the backbone's greedy decode of the 2 T future tokens after each prefix (a LEFT-padded
        batch ending in <|traj_future_start|>), each step's choice restricted to the future-token bins so that
        an undertrained backbone still yields a trajectory. Returns the token ids (B, 2 T)."""
        from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList

        bins, n = int(self.action_cfg.token_bins), 2 * int(self.action_cfg.n_steps)

        class OnlyFutureBins(LogitsProcessor):
            def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
                out = torch.full_like(scores, float("-inf"))
                out[:, offset:offset + bins] = scores[:, offset:offset + bins]
                return out

        device = self.backbone.device
        inputs = {k: batch[k].to(device) for k in BACKBONE_KEYS if k in batch}
        gen = GenerationConfig(max_new_tokens=n, min_new_tokens=n, do_sample=False, temperature=None, top_p=None,
                               top_k=None, pad_token_id=pad_id, eos_token_id=None)
        with self._camera_embedding(batch, inputs):
            out = self.backbone.generate(**inputs, generation_config=gen,
                                         logits_processor=LogitsProcessorList([OnlyFutureBins()]))
        return out[:, inputs["input_ids"].shape[1]:]
