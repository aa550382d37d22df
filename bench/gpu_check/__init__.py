"""The GPU check: the one script a session runs when a GPU machine is lent (bench/gpu_check.sh; README
"GPU check"). Parts, each runnable alone, each in its own processes, each recorded as soon as it finishes:

    sft         our SFT loop (cosmos-exp stage=sft, ZeRO-2 and ZeRO-0) against the Hugging Face Trainer on a
                random model of the Cosmos-Reason2-2B shape: samples/s, tokens/s, MFU, peak memory, data wait
    caption     batched generation against batch 1: videos/s, the ratio, identical greedy outputs
    trajectory  a trajectory stage-2 step with the released expert width: step time, samples/s, peak memory

Modules: presets (real / smoke sizes), assets (model, clips, scenes, backbone), procs (child processes),
context (what a part gets, throughput and goal helpers), report (JSON record, RESULTS.md), one per part, and
hf_trainer (the Trainer baseline's child).
"""
