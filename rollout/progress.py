"""Progress for long runs: a rich bar on a terminal, a plain line every few seconds otherwise.

Both say how far the run is towards its budget (done/total, percent) and when it should end
(ETA from the rate since the start), when the run has a budget in the unit counted.
"""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def stderr_console() -> Console:
    """The console for memrl's messages. soft_wrap: a message stays one line in logs and pipes
    (Rich wraps at 80 columns when stderr is not a terminal)."""
    return Console(stderr=True, soft_wrap=True)


def format_duration(seconds: float) -> str:
    """1h02m, 3m05s, 42s."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def eta_seconds(done: int, total: int, start: int, elapsed_s: float) -> float | None:
    """Seconds left at the rate since the start; None without a total or any progress yet."""
    if total <= 0 or done <= start or elapsed_s <= 0:
        return None
    return max(0, total - done) * elapsed_s / (done - start)


class ProgressReport:
    def __init__(
        self, total: int, start: int, console: Console, log_every_s: float, unit: str = "env steps"
    ):
        self.unit = unit
        self.total = total
        self.start = start
        self.started_at = time.monotonic()
        self.console = console
        self.log_every_s = log_every_s
        self.last_line = 0.0
        self.live = console.is_terminal
        self.progress = None
        if self.live:
            columns = [TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn()]
            if total > 0:
                columns.append(TaskProgressColumn())
            columns += [TextColumn(f"{unit}  {{task.fields[info]}}"), TimeElapsedColumn()]
            if total > 0:
                columns += [TextColumn("ETA"), TimeRemainingColumn()]
            self.progress = Progress(*columns, console=console)
            self.task = self.progress.add_task(
                "train", total=total if total > 0 else None, completed=start, info=""
            )
            self.progress.start()

    @staticmethod
    def _info(fields: dict[str, float | None]) -> str:
        parts = []
        for key, value in fields.items():
            if value is None:
                continue
            parts.append(f"{key} {value:,.0f}" if abs(value) >= 100 else f"{key} {value:.3g}")
        return "  ".join(parts)

    def line(self, done: int, info: str, now: float) -> str:
        """The plain progress line: `env steps 1,200/10,000 (12%) ETA 1m05s  return 21 ...`."""
        if self.total <= 0:
            return f"{self.unit} {done:,}  {info}"
        percent = 100.0 * min(done, self.total) / self.total
        eta = eta_seconds(done, self.total, self.start, now - self.started_at)
        when = f" ETA {format_duration(eta)}" if eta is not None else ""
        return f"{self.unit} {done:,}/{self.total:,} ({percent:.0f}%){when}  {info}"

    def update(self, done: int, fields: dict[str, float | None]) -> None:
        info = self._info(fields)
        if self.progress is not None:
            self.progress.update(self.task, completed=done, info=info)
            return
        now = time.monotonic()
        if now - self.last_line >= self.log_every_s:
            self.last_line = now
            self.console.print(self.line(done, info, now), highlight=False, markup=False)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
