"""Processes: how this one was launched, and starting ranks ourselves (they run cosmos_exp/worker.py).

    topology.py    the one reader of the launch variables (torchrun, SLURM tasks and arrays, ours): rank,
                   world size, whether we are a rank of a launch, and this process's share of the items
    rendezvous.py  torch's env:// variables and their port
    signals.py     the stop signals and passing them on
    processes.py   a process and all it starts as one stoppable group
    launcher.py    start N ranks on this node: fail fast or run to the end, per-rank logs, errors that quote them
"""
