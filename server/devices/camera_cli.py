"""``hallwatch camera calibrate``: set a window camera up from its agent file.

The seats and the customer side are written once, in the agent file's
``[[sources]] kind = "window_camera"`` block (polygons in the camera's own
pixels).  Calibration reads them from there, so what is checked is exactly
what the camera will run: it grabs frames (live, or from a recording at
``--at``), takes their median as the empty-seat reference, draws the regions
into a PNG to look at, checks each seat, and writes the reference only when
every check passes.  OpenCV is imported inside the command (it is slow to
load and the other commands do not need it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

camera_app = typer.Typer(help="窗口摄像头 Window cameras: calibration.", no_args_is_help=True)
console = Console()


def _error(message: object) -> typer.Exit:
    console.print(f"[red]错误 error:[/] {escape(str(message))}", soft_wrap=True)
    return typer.Exit(2)


@camera_app.command("calibrate")
def calibrate(
    agent_file: Annotated[Path, typer.Argument(help="The camera's agent file (TOML) with a window_camera source.")],
    source: Annotated[int, typer.Option(help="Which \\[\\[sources]] entry (0-based) when the file has several.")] = -1,
    frames: Annotated[int, typer.Option(min=1, max=300, help="Frames to take; the reference is their median.")] = 15,
    at: Annotated[Optional[float], typer.Option(help="Seconds into a recording where the seats are empty.")] = None,
    drawing: Annotated[Optional[Path], typer.Option(help="Where to write the drawing (default: beside the reference, *-regions.png).")] = None,
    check_only: Annotated[bool, typer.Option("--check-only", help="Check the existing reference instead of taking a new one.")] = False,
) -> None:
    """Take the empty-seat reference, draw the regions, and check that each seat is covered."""
    import cv2

    from agent.config import CONFIG_DIR, load_agent_settings
    from broker.config_file import ConfigError
    from vision.seat_calibration import check, draw, grab, median_frame
    from vision.seat_camera import WindowCameraOptions, load_reference

    try:
        settings = load_agent_settings(agent_file)
    except ConfigError as exc:
        raise _error(exc) from None
    cameras = [i for i, s in enumerate(settings.sources) if s.kind == "window_camera"]
    if not cameras:
        raise _error(f"{agent_file}: no [[sources]] entry with kind = \"window_camera\"")
    index = source if source >= 0 else cameras[0]
    if index not in cameras:
        raise _error(f"{agent_file}: sources[{index}] is not a window_camera (those are {cameras})")
    try:
        options = WindowCameraOptions.model_validate(settings.source_options(index), context={CONFIG_DIR: settings.config_dir})
    except ValueError as exc:
        raise _error(f"{agent_file}: sources[{index}]: {exc}") from None
    regions, customer = options.regions(), options.customer_polygons()

    if check_only:
        try:
            taken = [load_reference(options.reference)]
        except ValueError as exc:
            raise _error(exc) from None
    else:
        spec: str | int = int(options.camera) if options.camera.isdigit() else options.camera
        capture = cv2.VideoCapture(spec)
        try:
            with console.status(f"从摄像头取 {frames} 帧 taking {frames} frames from {options.camera} …"):
                taken = grab(capture, frames, at)
        except ValueError as exc:
            raise _error(f"{options.camera}: {exc}") from None
        finally:
            capture.release()

    results = check(taken, regions, customer, options.occupancy)
    reference = median_frame(taken)
    picture = drawing or options.reference.with_name(options.reference.stem + "-regions.png")
    picture.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(picture), draw(reference, regions, customer, results))

    table = Table(title=f"{options.camera}: {reference.shape[1]}×{reference.shape[0]}, {len(taken)} frames")
    for column in ("区域 region", "检查 check", "结果 result", "测量 measured"):
        table.add_column(column)
    for r in results:
        table.add_row(escape(r.subject), r.name, "[green]通过 ok[/]" if r.ok else "[red]未通过 FAILED[/]", escape(r.detail))
    console.print(table)
    console.print(f"区域图 drawing: {picture}")
    if not all(r.ok for r in results):
        console.print("[red]标定未通过 calibration failed[/]: fix the polygons in the agent file (or empty the seats) and run again; the reference was not written.")
        raise typer.Exit(1)
    if not check_only:
        options.reference.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(options.reference), reference):
            raise _error(f"{options.reference}: cannot write the reference (use a .png name in a writable folder)")
        console.print(f"空座参考图 reference: {options.reference}")
    console.print("[green]标定通过 calibration passed[/]")
