"""One module per CLI stage (`stage=<name>` -> stages/<name>.py), each `plan(cfg)` and `run(cfg, run_dir)`:
check the inputs, plan, call the core in its package (data/, train/, infer/, evaluate/, sweep/), record."""
