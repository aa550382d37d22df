"""The action expert on a real (tiny, random) Qwen3-VL backbone: the prefix, the expert's attention, stage 2 and
sampling."""

import pytest
import torch

from cosmos_exp.config.trajectory import ExpertConfig, TrajectoryPromptConfig
from cosmos_exp.data.trajectory_sample import collate_trajectory
from cosmos_exp.models.trajectory_model import TrajectoryModel
from cosmos_exp.trajectory import flow_matching
from cosmos_exp.trajectory.action_space import denormalise, integrate
from tests._trajectory_fixtures import (  # noqa: F401  (fixtures)
    ACTIONS, FLOW, PROMPT, SMALL, batch, dirs, features, make_model, processor,
)


def _noisy(b: int, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, ACTIONS.n_steps, 2, generator=g), torch.rand(b, generator=g)


def test_expert_at_backbone_width_continues_the_backbone_exactly(dirs, batch, processor):
    """With the backbone's width and its language model's weights, one expert token after the prefix must give
    the backbone's own hidden state for that token: the cache is read in the right layout, at the right
    positions (the prefix's next mrope position), with padding masked."""
    wide = ExpertConfig(hidden_size=None, intermediate_size=None, in_proj_hidden=32, in_proj_layers=2)
    model = make_model(dirs["backbone"], wide)
    lm = model.backbone.model.language_model
    weights = {k: v for k, v in lm.state_dict().items() if not k.startswith("embed_tokens")}
    model.expert.model.load_state_dict(weights, strict=True)
    token = torch.tensor([[processor.tokenizer.convert_tokens_to_ids("<|im_end|>")]] * 2)
    with torch.no_grad():
        prefix = model.prefix(batch)
        mine = model.expert.hidden_states(lm.embed_tokens(token), prefix)[:, 0]
        for i in range(2):  # each scene alone, unpadded, with the token appended: the backbone's own answer
            n = int(batch["attention_mask"][i].sum())
            one = collate_trajectory(processor, [features(processor)[i]])
            full = dict(one, input_ids=torch.cat([one["input_ids"], token[:1]], 1),
                        attention_mask=torch.ones(1, n + 1, dtype=torch.long),
                        mm_token_type_ids=torch.cat([one["mm_token_type_ids"], torch.zeros(1, 1, dtype=torch.long)], 1))
            ref = model.backbone.model(**{k: full[k] for k in ("input_ids", "attention_mask", "mm_token_type_ids",
                                                                "pixel_values", "image_grid_thw")})
            assert torch.allclose(mine[i], ref.last_hidden_state[0, -1], atol=1e-5), i


def test_prefix_positions_continue_the_backbone(dirs, batch):
    model = make_model(dirs["backbone"])
    prefix = model.prefix(batch)
    positions, _ = model.backbone.model.get_rope_index(batch["input_ids"], batch["mm_token_type_ids"],
                                                       image_grid_thw=batch["image_grid_thw"],
                                                       attention_mask=batch["attention_mask"])
    lengths = batch["attention_mask"].sum(-1)
    for i in range(2):
        last = positions[:, i, int(lengths[i]) - 1]
        assert (last == last[0]).all()  # the prefix ends in text: all three mrope sections agree
        assert int(prefix.next_position[i]) == int(last[0]) + 1
        # images take fewer positions than tokens (a 2x2-token image spans 2), so positions != token counts
        assert int(prefix.next_position[i]) < int(lengths[i])
    assert len(prefix.keys) == model.backbone.config.text_config.num_hidden_layers
    text = model.backbone.config.text_config
    assert prefix.keys[0].shape == (2, text.num_key_value_heads, batch["input_ids"].shape[1], text.head_dim)
    assert not prefix.mask[0].all() and prefix.mask[1].all()  # the first scene is right-padded


def test_actions_see_the_prefix_and_each_other_but_the_backbone_does_not_see_them(dirs, batch, processor):
    model = make_model(dirs["backbone"])
    x, t = _noisy(2)
    with torch.no_grad():
        prefix = model.prefix(batch)
        before = [k.clone() for k in prefix.keys]
        v = model.expert(x, t, prefix)
        assert v.shape == (2, ACTIONS.n_steps, 2) and v.dtype == torch.float32
        assert all(torch.equal(a, b) for a, b in zip(before, prefix.keys))  # the cache is read, never extended

        # one camera image of scene 0 changed: scene 0's velocities change, scene 1's do not
        feats = features(processor)
        other = features(processor, seed=7)
        feats[0] = dict(feats[0], pixel_values=other[0]["pixel_values"])
        v_img = model.expert(x, t, model.prefix(collate_trajectory(processor, feats)))
        assert not torch.allclose(v_img[0], v[0], atol=1e-4)
        assert torch.allclose(v_img[1], v[1], atol=1e-6)

        # bidirectional among actions: the last waypoint's input moves the first waypoint's output
        x_last = x.clone()
        x_last[:, -1] += 1.0
        v_last = model.expert(x_last, t, prefix)
        assert not torch.allclose(v_last[:, 0], v[:, 0], atol=1e-5)

        # padding is masked: scene 0 alone (no padding) gives what it gives in the padded batch
        alone = model.expert(x[:1], t[:1], model.prefix(collate_trajectory(processor, features(processor)[:1])))
        assert torch.allclose(alone[0], v[0], atol=1e-5)


def test_stage2_trains_the_expert_and_leaves_the_backbone_bitwise_unchanged(dirs, batch):
    prompt = TrajectoryPromptConfig(**{**PROMPT.__dict__, "camera_id_embedding": True})
    model = make_model(dirs["backbone"], prompt=prompt)
    backbone = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    camera = model.camera_embedding.weight.clone()
    expert = {k: v.clone() for k, v in model.expert.named_parameters()}
    # every parameter in the optimizer, with weight decay: only the missing gradients keep the backbone still
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        opt.zero_grad()
        model.stage2_loss(batch, generator=g).backward()
        opt.step()
    assert all(p.grad is None for p in model.backbone.parameters())
    assert all(torch.equal(v, backbone[k]) for k, v in model.backbone.state_dict().items())
    assert torch.equal(model.camera_embedding.weight, camera)  # backbone-side: stage 2 does not train it
    changed = [k for k, p in model.expert.named_parameters() if not torch.equal(p, expert[k])]
    assert changed == list(expert)


def test_stage2_loss_falls_on_a_fixed_batch(dirs, batch):
    model = make_model(dirs["backbone"])
    opt = torch.optim.Adam(model.expert_parameters(), lr=1e-2)

    def held_out(velocity=None) -> float:  # the same noise and times every time
        g = torch.Generator().manual_seed(123)
        with torch.no_grad():
            if velocity is None:
                return float(model.stage2_loss(batch, generator=g))
            return float(flow_matching.loss(velocity, batch["actions"], FLOW, generator=g))

    start = held_out()
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        opt.zero_grad()
        model.stage2_loss(batch, generator=g).backward()
        opt.step()
    end = held_out()
    # below both the untrained expert and a zero velocity (E|x - eps|^2)
    assert end < 0.6 * start and end < 0.7 * held_out(lambda x_t, t: torch.zeros_like(x_t))


def test_sampling_shapes_seed_and_rollout_from_each_scenes_v0(dirs, batch):
    model = make_model(dirs["backbone"])
    a = model.sample(batch, k=3, steps=4, generator=torch.Generator().manual_seed(5))
    b = model.sample(batch, k=3, steps=4, generator=torch.Generator().manual_seed(5))
    c = model.sample(batch, k=3, steps=4, generator=torch.Generator().manual_seed(6))
    assert a.actions.shape == a.xy.shape == (2, 3, ACTIONS.n_steps, 2)
    assert torch.equal(a.actions, b.actions) and torch.equal(a.xy, b.xy)
    assert not torch.allclose(a.actions, c.actions)
    assert torch.allclose(batch["v0"], torch.tensor([10.0, 5.0]), atol=1e-4)
    for i in range(2):
        ref = integrate(denormalise(a.actions[i], ACTIONS), batch["v0"][i], ACTIONS.dt).xy
        assert torch.allclose(a.xy[i], ref, atol=1e-5)
    default = model.sample(batch, generator=torch.Generator().manual_seed(5))
    assert default.actions.shape[1] == FLOW.n_samples


def test_camera_id_embedding_touches_only_image_tokens_and_trains_with_the_backbone(dirs, batch):
    plain = make_model(dirs["backbone"])
    prompt = TrajectoryPromptConfig(**{**PROMPT.__dict__, "camera_id_embedding": True})
    model = make_model(dirs["backbone"], prompt=prompt)
    n_cameras, hidden = len(PROMPT.camera_order), model.backbone.config.text_config.hidden_size
    assert model.camera_embedding.weight.shape == (n_cameras, hidden)
    with torch.no_grad():
        ref, zero = plain.prefix(batch), model.prefix(batch)
    assert all(torch.equal(a, b) for a, b in zip(ref.keys, zero.keys))  # zero at start: the backbone as it was

    with torch.no_grad():
        model.camera_embedding.weight.normal_()
    prefix = model.prefix(batch)  # with gradients, as stage 1 would run it
    first_image = int((batch["input_ids"][0] == model.backbone.config.image_token_id).nonzero()[0])
    assert torch.equal(prefix.keys[0][0, :, :first_image], ref.keys[0][0, :, :first_image])  # causal: text before
    assert not torch.allclose(prefix.keys[0][0, :, first_image], ref.keys[0][0, :, first_image])
    prefix.keys[-1].float().pow(2).sum().backward()
    grad = model.camera_embedding.weight.grad.abs().sum(-1)
    used = set(batch["camera_index"].tolist())
    assert [i for i in range(n_cameras) if grad[i] > 0] == sorted(used)  # the cameras in the batch, only those


def test_only_a_qwen3_vl_backbone_is_accepted():
    from types import SimpleNamespace

    with pytest.raises(ValueError, match="needs a Qwen3-VL backbone.*qwen2_5_vl"):
        backbone = SimpleNamespace(config=SimpleNamespace(model_type="qwen2_5_vl"))
        TrajectoryModel(backbone, SMALL, PROMPT, ACTIONS, FLOW)


def test_bf16_expert_keeps_rope_and_fourier_frequencies_in_float32(dirs, batch):
    model = make_model(dirs["backbone"], dtype="bfloat16")
    assert model.backbone.dtype == torch.bfloat16
    assert {p.dtype for p in model.expert.parameters()} == {torch.bfloat16}
    assert model.expert.model.rotary_emb.inv_freq.dtype == torch.float32
    assert model.expert.in_proj.fourier.freqs.dtype == torch.float32
    assert torch.equal(model.expert.model.rotary_emb.inv_freq, model.backbone.model.language_model.rotary_emb.inv_freq)
    loss = model.stage2_loss(batch, generator=torch.Generator().manual_seed(0))
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None and p.grad.dtype == torch.bfloat16 for p in model.expert.parameters())


def test_reference_width_expert_on_the_reason2_2b_shape():
    """The released expert width on the real Cosmos-Reason2-2B text config (built on the meta device: shapes only):
    the backbone's layers and KV layout, its own residual and MLP widths."""
    from cosmos_exp.models.action_expert import ActionExpert
    from cosmos_exp.models.shapes import reason2_2b_config

    text = reason2_2b_config().text_config
    with torch.device("meta"):
        expert = ActionExpert(text, ExpertConfig())
    layer = expert.model.layers[0]
    assert len(expert.model.layers) == text.num_hidden_layers == 28
    assert tuple(layer.self_attn.q_proj.weight.shape) == (16 * 128, 2048)
    assert tuple(layer.self_attn.k_proj.weight.shape) == (8 * 128, 2048)  # the backbone's 8 KV heads of 128
    assert tuple(layer.mlp.up_proj.weight.shape) == (8256, 2048)
    assert not hasattr(expert.model, "embed_tokens")
    assert tuple(expert.in_proj.mlp[0].weight.shape) == (1024, 3 * 20) and expert.out_proj.out_features == 2
    n = sum(p.numel() for p in expert.parameters())
    assert 1.7e9 < n < 1.9e9  # 28 layers x ~63 M: 4 attention projections and a 2048 x 8256 SwiGLU
