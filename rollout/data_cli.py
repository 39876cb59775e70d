"""`memrl data`: fetch the official data sets memrl's environments read (today: bAbI)."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

EPILOG = """examples:
  memrl data babi                                  # download into $MEMRL_DATA/babi
  memrl data babi --dest data/babi                 # or into a folder of your own
  memrl data babi --archive tasks_1-20_v1-2.tar.gz # unpack an archive you already have

A run then finds the files by itself ($MEMRL_DATA/babi, else ../shared/data/babi beside the
repository) or through env.kwargs.root=DEST.
"""


def add_data_parser(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser(
        "data",
        help="fetch an official data set (bAbI)",
        description=(
            "Download the official bAbI archive (tasks_1-20_v1-2.tar.gz, 1k and 10k) and unpack "
            "it safely into DEST (plain files only; nothing is left half-written if it stops). "
            "A DEST that already holds en/ is left as it is."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    data.add_argument("dataset", choices=["babi"], help="the data set")
    data.add_argument(
        "--dest", help="folder to fill (default: $MEMRL_DATA/babi, else ../shared/data/babi)"
    )
    data.add_argument("--archive", help="unpack this local archive instead of downloading")
    data.add_argument("--url", help="download from this address instead of the official one")
    data.add_argument("--sha256", help="the archive's expected SHA-256 digest")
    data.add_argument(
        "--timeout", type=float, default=60.0, help="seconds without data before giving up"
    )


def cmd_data(args: argparse.Namespace, out: Console, err: Console) -> int:
    from envs.babi import OFFICIAL_URL, BabiDataError, fetch_babi, find_task_files
    from envs.babi.env import default_babi_root

    dest = args.dest or str(default_babi_root())
    columns = (
        TextColumn("downloading bAbI"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
    )
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task("download", total=None)

        def progress(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        try:
            folder = fetch_babi(
                dest,
                url=args.url or OFFICIAL_URL,
                archive=args.archive,
                sha256=args.sha256,
                timeout=args.timeout,
                progress=progress,
            )
        except BabiDataError as exc:
            err.print(f"[bold red]memrl: error:[/] {escape(str(exc))}", highlight=False)
            return 1
    found = {}
    for size in ("1k", "10k"):
        tasks = []
        for task in range(1, 21):
            try:
                find_task_files(folder, task, size)
                tasks.append(task)
            except BabiDataError:
                pass
        found[size] = tasks
    out.print(f"bAbI in {folder}", highlight=False, markup=False)
    for size, tasks in found.items():
        missing = sorted(set(range(1, 21)) - set(tasks))
        note = f"; missing: {', '.join(f'qa{t}' for t in missing)}" if missing else ""
        out.print(f"  {size}: {len(tasks)} of 20 tasks with train and test files{note}")
    if not found["1k"]:
        err.print(
            "[bold red]memrl: error:[/] the archive held no bAbI 1k task files (en/qa*_train.txt)",
            highlight=False,
        )
        return 1
    return 0
