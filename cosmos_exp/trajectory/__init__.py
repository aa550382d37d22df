"""Trajectory head building blocks (Alpamayo-style): the unicycle (acceleration, curvature) action space with its
least-squares ground-truth fit, normalisation and stage-1 bins (action_space.py), and conditional flow matching
with an Euler sampler (flow_matching.py). Pure tensor functions: no model, no training loop."""
