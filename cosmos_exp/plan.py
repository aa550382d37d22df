"""What a stage intends to do, computed cheaply before any work: the body of every dry run.

Each stage module exposes two functions:

    plan(cfg) -> Plan                     # no heavy imports; raises ConfigError for bad inputs
    run(cfg, run_dir: Path) -> dict       # does the work; the dict is stored in run.json["result"]
"""

from dataclasses import dataclass, field
from typing import List, Optional, Tuple


@dataclass
class Plan:
    stage: str
    # (what, path, count or None)
    inputs: List[Tuple[str, str, Optional[int]]] = field(default_factory=list)
    outputs: List[str] = field(default_factory=list)
    # argv lists of the processes the stage would start
    commands: List[List[str]] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    # (name, text) of files the stage renders before it starts anything, shown whole (e.g. cosmos-rl's TOML)
    documents: List[Tuple[str, str]] = field(default_factory=list)

    def add_input(self, what: str, path: str, count: Optional[int] = None) -> None:
        self.inputs.append((what, path, count))

    def render(self) -> str:
        lines = [f"plan for stage '{self.stage}':"]
        lines.append("  inputs:" if self.inputs else "  inputs: none")
        for what, path, count in self.inputs:
            suffix = "" if count is None else f" ({count} found)"
            lines.append(f"    - {what}: {path}{suffix}")
        lines.append("  outputs (relative to the run directory unless absolute):" if self.outputs else "  outputs: none")
        lines += [f"    - {o}" for o in self.outputs]
        if self.commands:
            lines.append("  commands:")
            lines += ["    - " + " ".join(argv) for argv in self.commands]
        lines += [f"  note: {n}" for n in self.notes]
        for name, text in self.documents:
            lines.append(f"  {name}:")
            lines += [f"    {line}".rstrip() for line in text.splitlines()]
        return "\n".join(lines)
