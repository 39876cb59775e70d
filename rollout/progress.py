"""Progress for long runs: a rich bar on a terminal, a plain line every few seconds otherwise."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def stderr_console() -> Console:
    """The console for memrl's messages. soft_wrap: a message stays one line in logs and pipes
    (Rich wraps at 80 columns when stderr is not a terminal)."""
    return Console(stderr=True, soft_wrap=True)


class ProgressReport:
    def __init__(
        self, total: int, start: int, console: Console, log_every_s: float, unit: str = "env steps"
    ):
        self.unit = unit
        self.console = console
        self.log_every_s = log_every_s
        self.last_line = 0.0
        self.live = console.is_terminal
        self.progress = None
        if self.live:
            self.progress = Progress(
                TextColumn("[bold]train"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn(f"{unit}  {{task.fields[info]}}"),
                TimeElapsedColumn(),
                console=console,
            )
            self.task = self.progress.add_task("train", total=total, completed=start, info="")
            self.progress.start()

    @staticmethod
    def _info(fields: dict[str, float | None]) -> str:
        parts = []
        for key, value in fields.items():
            if value is None:
                continue
            parts.append(f"{key} {value:,.0f}" if abs(value) >= 100 else f"{key} {value:.3g}")
        return "  ".join(parts)

    def update(self, done: int, fields: dict[str, float | None]) -> None:
        info = self._info(fields)
        if self.progress is not None:
            self.progress.update(self.task, completed=done, info=info)
            return
        now = time.monotonic()
        if now - self.last_line >= self.log_every_s:
            self.last_line = now
            self.console.print(f"{self.unit} {done:,}  {info}", highlight=False)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
