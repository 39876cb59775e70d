"""`memrl plot`: learning curves of one or several runs in one PNG.

Each run's metrics.jsonl (rollout.run_dir.read_metrics) gives a metric against env steps and
wall-clock time. Runs whose resolved config.yaml is the same except for `run.seed` (and the
`run.dir` they were written to) form one group, drawn as the median over seeds with a min/max
band; a group of one run is drawn as its own line.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from envs.files import atomic_write
from rollout.run_dir import RunDir, read_metrics

# Short names for the metrics users ask for most; any other key of metrics.jsonl works as is.
METRIC_ALIASES = {"return": "return_mean", "eval": "eval_return_mean"}
X_AXES = {"env_steps": ("env_steps", "env steps"), "time": ("time_s", "wall-clock time (s)")}
# Counters and bookkeeping in every row: not learning curves.
NOT_METRICS = {
    "env_steps",
    "time_s",
    "iteration",
    "updates",
    "episodes",
    "worker_restarts",
    "eval_env_steps",
}
# Config keys that may differ between runs of one group.
SEED_KEYS = (("run", "seed"), ("run", "dir"))
# Legends name these first when they differ between runs.
LEGEND_FIRST = ("agent.name", "env.id")


class PlotError(ValueError):
    """Runs or a metric that cannot be plotted (the message says which and what exists)."""


@dataclass
class Run:
    path: Path
    config: dict[str, Any]
    rows: list[dict[str, Any]]

    @property
    def name(self) -> str:
        return str(self.config.get("run", {}).get("name") or self.path.name)

    @property
    def seed(self) -> Any:
        return self.config.get("run", {}).get("seed")

    def metrics(self) -> set[str]:
        return {
            k for row in self.rows for k, v in row.items() if k not in NOT_METRICS and _is_number(v)
        }

    def curve(self, x_key: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) over the rows that hold the metric, x increasing (a resumed run re-logs its
        checkpoint step: the later row wins)."""
        points: dict[float, float] = {}
        for row in self.rows:
            x, y = row.get(x_key), row.get(metric)
            if _is_number(x) and _is_number(y) and math.isfinite(y):
                points[float(x)] = float(y)
        xs = np.array(sorted(points))
        return xs, np.array([points[x] for x in xs])


@dataclass
class Group:
    label: str
    runs: list[Run] = field(default_factory=list)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def load_run(path: str | Path) -> Run:
    run = RunDir(Path(path))
    if not run.path.is_dir():
        raise PlotError(
            f"'{path}' does not exist; give run directories such as runs/<name>-<time>."
        )
    if not run.exists():
        raise PlotError(
            f"'{path}' is not a memrl run directory (no config.yaml in it); give folders that "
            "`memrl train` made, such as runs/<name>-<time>."
        )
    from rollout.config import ConfigError, read_yaml

    try:
        config = read_yaml(run.config)
    except ConfigError as exc:
        raise PlotError(str(exc)) from None
    # a run stopped before its first log line has no metrics.jsonl: it is left out with a note
    try:
        rows = read_metrics(run.metrics) if run.metrics.is_file() else []
    except OSError as exc:
        raise PlotError(f"cannot read '{run.metrics}': {exc.strerror or exc}.") from None
    return Run(run.path, config, rows)


def _flat_config(config: dict[str, Any]) -> dict[str, str]:
    """Dotted key -> value (as YAML text) of a config, without the keys seeds may change."""
    flat: dict[str, str] = {}
    for section, values in config.items():
        if not isinstance(values, dict):
            flat[str(section)] = yaml.safe_dump(values, default_flow_style=True).strip()
            continue
        for key, value in values.items():
            if (section, key) not in SEED_KEYS:
                text = yaml.safe_dump(value, default_flow_style=True).strip()
                flat[f"{section}.{key}"] = text.removesuffix("\n...").strip()
    return flat


def legend_keys(flats: list[dict[str, str]]) -> list[str]:
    """The config keys a legend names: the agent and the env when they differ, then the other
    keys whose values differ. Where the agent differs, its other keys (DQN's agent.apex_base
    beside REINFORCE, each agent's own agent.hidden) follow from it: an agent.* key is named only
    when it differs between runs of one agent; env.* keys likewise for one env.id."""
    all_keys = sorted(set().union(*flats)) if flats else []
    differing = [k for k in all_keys if len({f.get(k) for f in flats}) > 1 and k != "run.name"]
    first = [k for k in LEGEND_FIRST if k in differing]

    def implied(key: str) -> bool:
        head = next((h for h in LEGEND_FIRST if key.split(".")[0] == h.split(".")[0]), None)
        if head is None or head not in differing:
            return False
        values: dict[str | None, set[str | None]] = {}
        for f in flats:
            values.setdefault(f.get(head), set()).add(f.get(key))
        return all(len(v) == 1 for v in values.values())

    return first + [k for k in differing if k not in LEGEND_FIRST and not implied(k)]


def expand_runs(paths: list[str | Path]) -> list[str | Path]:
    """Run folders, with a `memrl sweep` folder (it holds sweep.json) replaced by the run folders
    in it, in name order. Another folder of runs stays an error: plotting every run under runs/
    at once is rarely what was meant."""
    expanded: list[str | Path] = []
    for path in paths:
        folder = Path(path)
        if (folder / "sweep.json").is_file() and not RunDir(folder).exists():
            runs = sorted(p for p in folder.iterdir() if p.is_dir() and RunDir(p).exists())
            if runs:
                expanded.extend(runs)
                continue
        expanded.append(path)
    return expanded


def group_runs(runs: list[Run]) -> list[Group]:
    """Runs with the same config except seed share a group; groups keep the order given. Each
    label is the run name plus the config values that set the group apart from the others."""
    groups: dict[str, Group] = {}
    flats: dict[str, dict[str, str]] = {}
    for run in runs:
        flat = _flat_config(run.config)
        key = yaml.safe_dump(flat, sort_keys=True)
        flats[key] = flat
        groups.setdefault(key, Group(label=run.name)).runs.append(run)
    differing = legend_keys(list(flats.values()))
    for key, group in groups.items():
        shown = [f"{k}={flats[key].get(k, '-')}" for k in differing[:3]]
        if len(differing) > 3:
            shown.append("...")
        if shown:
            group.label += " " + " ".join(shown)
        n = len(group.runs)
        if n > 1:
            group.label += f" (median of {n} seeds, min-max band)"
        elif group.runs[0].seed is not None:
            group.label += f" (seed {group.runs[0].seed})"
    return list(groups.values())


def resolve_metric(runs: list[Run], metric: str | None) -> str:
    """The metrics.jsonl key to plot: an alias, a key as is, or (None) the first of return_mean
    and eval_return_mean that a run logged."""
    available = sorted(set().union(*(r.metrics() for r in runs)))
    if metric is None:
        for key in ("return_mean", "eval_return_mean"):
            if key in available:
                return key
        if not available:
            raise PlotError("the runs' metrics.jsonl files hold no metrics yet.")
        raise PlotError(f"give --metric; the runs log: {', '.join(available)}.")
    key = METRIC_ALIASES.get(metric, metric)
    if key not in available:
        aliases = ", ".join(f"{a} ({k})" for a, k in METRIC_ALIASES.items())
        raise PlotError(
            f"no run logged metric '{metric}'. Metrics the runs log: "
            f"{', '.join(available) or 'none'}; aliases: {aliases}."
        )
    return key


def aggregate(curves: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, ...]:
    """Median, min and max of several curves on a common x grid: every x of any curve within
    the range all curves cover (linear interpolation between logged points)."""
    curves = [(x, y) for x, y in curves if len(x)]
    if len(curves) == 1:
        x, y = curves[0]
        return x, y, y, y
    lo = max(x[0] for x, _ in curves)
    hi = min(x[-1] for x, _ in curves)
    grid = np.unique(np.concatenate([x for x, _ in curves]))
    grid = grid[(grid >= lo) & (grid <= hi)]
    if len(grid) == 0:  # no overlap: show the runs' x ranges side by side rather than nothing
        grid = np.unique(np.concatenate([x for x, _ in curves]))
    ys = np.stack([np.interp(grid, x, y) for x, y in curves])
    return grid, np.median(ys, axis=0), ys.min(axis=0), ys.max(axis=0)


def plot_runs(
    paths: list[str | Path],
    metric: str | None = None,
    x_axes: tuple[str, ...] = ("env_steps", "time"),
    out: str | Path | None = None,
) -> tuple[Path, str, list[str]]:
    """Write the PNG; returns its path, the metric key plotted, and notes (runs skipped)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not paths:
        raise PlotError("give at least one run directory.")
    for x in x_axes:
        if x not in X_AXES:
            raise PlotError(f"unknown x axis '{x}'; choose from {', '.join(X_AXES)}.")
    runs = [load_run(p) for p in expand_runs(paths)]
    key = resolve_metric(runs, metric)
    notes = [f"{r.path} has no '{key}' rows; left out" for r in runs if key not in r.metrics()]
    runs = [r for r in runs if key in r.metrics()]
    groups = group_runs(runs)
    out_path = Path(out) if out is not None else Path(f"plot_{key}.png")
    if out_path.suffix.lower() != ".png":
        raise PlotError(f"the output '{out_path}' must be a .png file.")
    if not out_path.parent.is_dir():
        raise PlotError(f"the folder of '{out_path}' does not exist.")

    fig, axes = plt.subplots(
        1, len(x_axes), figsize=(6.0 * len(x_axes), 4.2), squeeze=False, constrained_layout=True
    )
    for ax, x_name in zip(axes[0], x_axes):
        x_key, x_label = X_AXES[x_name]
        for i, group in enumerate(groups):
            colour = f"C{i % 10}"
            x, median, low, high = aggregate([r.curve(x_key, key) for r in group.runs])
            marker = "o" if len(x) < 3 else None
            ax.plot(x, median, color=colour, label=group.label, marker=marker, markersize=3)
            if len(group.runs) > 1:
                ax.fill_between(x, low, high, color=colour, alpha=0.2, linewidth=0)
        ax.set_xlabel(x_label)
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8, loc="best")
    fig.suptitle(f"{key} of {len(runs)} run{'s' if len(runs) != 1 else ''}", fontsize=10)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write(out_path, lambda f: f.write(buffer.getvalue()))
    return out_path, key, notes
