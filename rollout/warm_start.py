"""Warm start (`run.init_from`): a new run begins from another run's weights, and only them.

The source is a run folder (its `best` checkpoint when the periodic evaluation wrote one, else
its newest complete checkpoint: the choice `memrl evaluate --checkpoint best|latest` makes,
through the same resolver), one checkpoint folder (`checkpoints/<step>/` or `checkpoints/best/`)
or a `state.pt` file. The new run keeps its own optimiser, counters, RNG and config: its loss
may differ (a program generator pretrained by maximum likelihood, fine-tuned with REINFORCE).
`--resume` is the other thing: it continues one run exactly.

Weights are matched by name. A tensor in both with the same shape is copied; a shape mismatch is
an error naming the key and both shapes (the architecture changed: copying part of it would be a
silent surprise); tensors only the new agent has keep their fresh initialisation (a new head, a
DQN target net that the best checkpoint, holding acting weights only, leaves out); tensors only
the checkpoint has are ignored. Both lists are in the one-line summary the trainer prints.
Files are read with `torch.load(weights_only=True)`: nothing in them is unpickled or called.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from rollout.checkpoints import MARKER, CheckpointError, complete_checkpoints, load_checkpoint
from rollout.evaluation import BEST, EvaluationError, resolve_checkpoint
from rollout.run_dir import RunDir

SHOWN_KEYS = 4  # keys listed by name in the summary; the rest are counted


class WarmStartError(ValueError):
    """`run.init_from` names no readable weights, or weights that do not fit the agent."""


def find_weights(source: str | Path) -> Path:
    """The state.pt that `run.init_from: source` names (checked, not read: a cheap pre-check
    before a run starts)."""
    path = Path(source).expanduser()
    where = f"run.init_from '{source}'"
    if not path.exists():
        raise WarmStartError(
            f"{where} does not exist; give a run folder, a checkpoint folder or a state.pt file."
        )
    if path.is_file():
        return path
    if (path / "state.pt").is_file():  # one checkpoint folder (numbered or best)
        if not (path / MARKER).is_file():
            raise WarmStartError(f"{where} is an incomplete checkpoint (no {MARKER} marker).")
        return path / "state.pt"
    run = RunDir(path)
    if not run.exists() and path.name == "checkpoints":  # RUN/checkpoints: the run's
        run = RunDir(path.parent)
    if not run.exists():
        raise WarmStartError(
            f"{where} is a folder with neither a state.pt nor a run's config.yaml in it; give a "
            "run folder (runs/NAME-TIME), a checkpoint folder (runs/NAME-TIME/checkpoints/STEP "
            "or .../best) or a state.pt file."
        )
    has_best = (run.checkpoints / BEST / MARKER).is_file()
    if not has_best and not complete_checkpoints(run.checkpoints):
        raise WarmStartError(
            f"{where}: run '{run.path}' has no complete checkpoint in {run.checkpoints} (and no "
            "best one); train it longer, or resume it until a checkpoint is written."
        )
    try:
        return resolve_checkpoint(run, None) / "state.pt"  # best, else latest
    except EvaluationError as exc:
        raise WarmStartError(f"{where}: {exc}") from None


def read_weights(state_file: Path) -> tuple[dict[str, torch.Tensor], str]:
    """The agent's weights in a checkpoint's state.pt, and where they came from in words."""
    try:
        if state_file.name == "state.pt" and (state_file.parent / MARKER).is_file():
            state = load_checkpoint(state_file.parent)  # weights_only=True
        else:
            state = torch.load(state_file, map_location="cpu", weights_only=True)
    except CheckpointError as exc:
        raise WarmStartError(f"run.init_from: {exc}") from None
    except Exception as exc:  # not a torch file, a torn one, a pickle with code in it
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WarmStartError(
            f"run.init_from: cannot read '{state_file}' as a memrl checkpoint "
            f"(torch.load with weights_only=True): {first}"
        ) from None
    if isinstance(state, dict) and isinstance(state.get("best"), dict):
        best = state["best"]  # rollout.periodic_evaluation.save_best_checkpoint
        weights = best.get("agent")
        what = f"best evaluation: return {best.get('eval_return_mean', float('nan')):.4g}"
        what += f" at env step {best.get('env_steps', '?')}"
    elif isinstance(state, dict) and isinstance(state.get("learner"), dict):
        weights = state["learner"].get("agent")  # a numbered checkpoint (rollout.trainer)
        steps = (state.get("counters") or {}).get("env_steps", "?")
        what = f"env step {steps}"
    else:
        keys = ", ".join(map(str, state)) if isinstance(state, dict) else type(state).__name__
        raise WarmStartError(
            f"run.init_from: '{state_file}' holds no agent weights (a memrl checkpoint has "
            f"'learner' or 'best'; this one has: {keys or 'nothing'})."
        )
    if not isinstance(weights, dict) or not all(torch.is_tensor(v) for v in weights.values()):
        raise WarmStartError(
            f"run.init_from: the agent weights in '{state_file}' are not a mapping of names to "
            "tensors."
        )
    return weights, what


def _names(keys: list[str]) -> str:
    shown = ", ".join(keys[:SHOWN_KEYS])
    more = len(keys) - SHOWN_KEYS
    return f"{shown} and {more} more" if more > 0 else shown


def copy_weights(agent: torch.nn.Module, weights: dict[str, torch.Tensor], source: str) -> str:
    """Copy the tensors whose names and shapes match into `agent` (in place: an optimiser built
    on its parameters keeps them); return what was loaded, kept and ignored."""
    own = agent.state_dict()
    common = [k for k in own if k in weights]
    mismatched = [k for k in common if tuple(own[k].shape) != tuple(weights[k].shape)]
    if mismatched:
        shapes = "; ".join(
            f"'{k}': checkpoint {list(weights[k].shape)}, agent {list(own[k].shape)}"
            for k in mismatched
        )
        raise WarmStartError(
            f"run.init_from: {len(mismatched)} weight(s) in {source} have another shape than "
            f"in this run's agent ({shapes}); warm start copies whole tensors, so the agent's "
            "architecture (hidden sizes, memory size, observation and action spaces) must match."
        )
    if not common:
        raise WarmStartError(
            f"run.init_from: no weight in {source} matches this run's agent by name "
            f"(checkpoint: {_names(list(weights))}; agent: {_names(list(own))}); is it "
            "another agent's checkpoint?"
        )
    agent.load_state_dict({k: weights[k] for k in common}, strict=False)
    fresh = [k for k in own if k not in weights]
    ignored = [k for k in weights if k not in own]
    numbers = sum(own[k].numel() for k in common)
    line = f"warm start: {len(common)} tensors ({numbers:,} numbers) from {source}"
    if fresh:
        line += f"; kept fresh (not in the checkpoint): {_names(fresh)}"
    if ignored:
        line += f"; ignored (not in this agent): {_names(ignored)}"
    return line


def warm_start(agent: Any, source: str | Path) -> str:
    """Load the weights `run.init_from: source` names into `agent` (weights only: never an
    optimiser, counter, RNG state or config) and return a one-line summary to print."""
    state_file = find_weights(source)
    weights, what = read_weights(state_file)
    return copy_weights(agent, weights, f"{state_file} ({what})")
