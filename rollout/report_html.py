"""report.html for `memrl evaluate`: one self-contained page (every image and video embedded as
a base64 data URI, no external scripts or styles), so it can be mailed or archived alone."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from envs.files import atomic_write_text

MIME = {".png": "image/png", ".gif": "image/gif", ".mp4": "video/mp4"}

STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px auto; max-width: 1100px; color: #222; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 28px; }
.meta { color: #555; font-size: 13px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 10px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.recordings { display: flex; flex-wrap: wrap; gap: 16px; }
figure { margin: 0; } figcaption { font-size: 12px; color: #555; }
video, img.rec { max-width: 400px; border: 1px solid #ccc; }
code { font-size: 12px; }
"""


def data_uri(path: Path) -> str:
    mime = MIME.get(path.suffix, "application/octet-stream")
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def _first_frame_png(video: Path) -> str | None:
    """A PNG data URI of a video's first frame: the poster shown before it plays (and what a
    screenshot of the page shows)."""
    import io

    import imageio.v2 as imageio

    try:
        reader = imageio.get_reader(video, format="FFMPEG")
        frame = reader.get_data(0)
        reader.close()
    except Exception:  # a poster is a nicety; the video itself is still embedded
        return None
    buf = io.BytesIO()
    imageio.imwrite(buf, frame, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _stats_table(summary: dict[str, Any]) -> str:
    head = "".join(
        f"<th>{c}</th>" for c in ("", "mean", "std", "median", "min", "max", "95% CI (bootstrap)")
    )
    rows = []
    for name in ("return", "length"):
        s = summary[name]
        cells = "".join(f"<td>{s[k]:.4g}</td>" for k in ("mean", "std", "median", "min", "max"))
        rows.append(
            f"<tr><td>{name}</td>{cells}<td>[{s['ci95'][0]:.4g}, {s['ci95'][1]:.4g}]</td></tr>"
        )
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _episode_table(out_dir: Path, lines: list[dict[str, Any]]) -> str:
    head = "".join(
        f"<th>{c}</th>"
        for c in ("episode", "seed", "return", "length", "end", "wall time (s)", "replay")
    )
    rows = []
    for line in lines:
        end = "terminated" if line["terminated"] else "truncated" if line["truncated"] else "-"
        replay = html.escape(f"memrl replay {out_dir / 'episodes.jsonl'}#{line['episode']}")
        rows.append(
            f"<tr><td>{line['episode']}</td><td>{line['seed']}</td>"
            f"<td>{line['return']:.4g}</td><td>{line['length']}</td><td>{end}</td>"
            f"<td>{line['wall_time_s']:.3f}</td><td><code>{replay}</code></td></tr>"
        )
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _recording(out_dir: Path, line: dict[str, Any]) -> str:
    path = out_dir / line["recording"]
    caption = html.escape(
        f"episode {line['episode']} (seed {line['seed']}): return {line['return']:.4g}, "
        f"{line['length']} steps"
    )
    if path.suffix == ".mp4":
        poster = _first_frame_png(path)
        poster_attr = f' poster="{poster}"' if poster else ""
        body = f'<video controls loop muted{poster_attr} src="{data_uri(path)}"></video>'
    else:
        body = f'<img class="rec" alt="{caption}" src="{data_uri(path)}">'
    return f"<figure>{body}<figcaption>{caption}</figcaption></figure>"


def render_report(out_dir: Path, summary: dict[str, Any], lines: list[dict[str, Any]]) -> str:
    esc = html.escape
    title = f"{summary['agent']} on {summary['env_id']}"
    kwargs = json.dumps(summary["env_kwargs"]) if summary["env_kwargs"] else "defaults"
    meta = (
        f"run <code>{esc(summary['run_dir'])}</code> · checkpoint {esc(summary['checkpoint'])} "
        f"(env step {summary['checkpoint_step']:,}) · policy {esc(summary['policy'])} · "
        f"{summary['episodes']} episodes, seeds {summary['seeds'][0]}-{summary['seeds'][1]} · "
        f"env kwargs {esc(kwargs)}"
    )
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>memrl evaluation: {esc(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>memrl evaluation: {esc(title)}</h1><p class='meta'>{meta}</p>",
        "<h2>Summary</h2>",
        _stats_table(summary),
    ]
    histogram = out_dir / "return_histogram.png"
    if histogram.is_file():
        parts.append(f"<h2>Returns</h2><img alt='return histogram' src='{data_uri(histogram)}'>")
    recorded = [line for line in lines if "recording" in line]
    if recorded:
        parts.append("<h2>Recordings</h2><div class='recordings'>")
        parts += [_recording(out_dir, line) for line in recorded]
        parts.append("</div>")
    parts += [
        "<h2>Episodes</h2>",
        "<p class='meta'>Every episode replays exactly from its seed and recorded actions; "
        "<code>memrl replay</code> checks every reward and observation.</p>",
        _episode_table(out_dir, lines),
        "</body></html>",
    ]
    return "\n".join(parts)


def write_report_html(out_dir: Path, summary: dict[str, Any], lines: list[dict[str, Any]]) -> Path:
    path = out_dir / "report.html"
    atomic_write_text(path, render_report(out_dir, summary, lines))
    return path
