"""``hallwatch faces …``: enrol, list, delete, set PINs, and evaluate identification on a folder.

The face libraries (dlib, OpenCV, face_recognition's models) take ~3 s to
import, so they are imported inside the commands: every other ``hallwatch``
command, the server included, starts without them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from server.cli_common import DEFAULT_DB, Db, fail
from server.cli_common import console as stderr

if TYPE_CHECKING:
    from server.faces.registry import FaceRegistry
    from vision.calibration import Calibration
    from vision.evaluate import Evaluation

faces_app = typer.Typer(help="人脸 Faces: enrolment, deletion, PINs and evaluation.", no_args_is_help=True)
keys_app = typer.Typer(help="Key files for face templates and gallery sync.", no_args_is_help=True)
faces_app.add_typer(keys_app, name="keys")
console = Console()
TEMPLATE_KEY_ENV = "HALLWATCH_FACE_KEY_FILE"  # server.faces.registry.KEY_FILE_ENV (not imported: it loads dlib)
TEMPLATE_KEY_FILE = "face-templates.key"


def _error(message: object, code: int = 2) -> typer.Exit:
    """Print an error on one line (no wrapping: it gets copied into tickets) and the exit to raise."""
    console.print(f"[red]错误 error:[/] {message}", soft_wrap=True)
    return typer.Exit(code)


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console)


def _registry(db: str, keep_photos: bool = False) -> FaceRegistry:
    from server.db import make_engine, migrate
    from server.faces.registry import FaceRegistry, RegistryError, template_cipher
    from vision.faces import FaceSettings

    try:
        cipher = template_cipher()
    except RegistryError as exc:
        raise _error(exc) from None
    engine = make_engine(db)
    migrate(engine)
    return FaceRegistry(engine, cipher, FaceSettings(), keep_photos=keep_photos)


def print_calibration(cal: Calibration) -> None:
    t = cal.thresholds
    console.print(
        f"阈值 threshold [bold]{t.threshold:.2f}[/], 差距 margin [bold]{t.margin:.3f}[/] — "
        f"strangers accepted {cal.stranger_accepts}/{cal.stranger_probes} (target ≤ {cal.target_far:.1%}, 95 % upper bound {cal.far_upper95:.1%}); "
        f"clerks let through {cal.genuine_accepts}/{cal.genuine_probes}"
    )
    for a, b, d in cal.lookalikes:
        console.print(f"[yellow]相似人员 look-alikes:[/] {a} / {b} (distance {d:.3f}) — they confirm with staff number (1:1)")
    for warning in cal.warnings:
        console.print(f"[yellow]注意 note:[/] {warning}")


@faces_app.command("enrol")
def enrol(
    source: Annotated[Path, typer.Argument(help="Folder or zip: <person_id>/*.jpg, optional staff.csv (person_id,name,staff_no).")],
    db: Db = DEFAULT_DB,
    target_far: Annotated[float, typer.Option(min=0.0001, max=0.2, help="Stranger false-accept rate to calibrate for.")] = 0.01,
    keep_photos: Annotated[bool, typer.Option(help="Also keep the photos (encrypted). Default: templates only.")] = False,
) -> None:
    """Bulk enrolment; every rejected photo is listed with its reason, then the gallery is recalibrated."""
    from server.faces.registry import RegistryError

    registry = _registry(db, keep_photos)
    folders = [p for p in source.iterdir() if p.is_dir()] if source.is_dir() else []
    with _progress() as progress:
        task = progress.add_task("录入 enrolling", total=len(folders) or None)
        try:
            reports = registry.enrol_folder(source, lambda person: progress.advance(task))
        except RegistryError as exc:
            raise _error(exc) from None
    rejected = [(r.person_id, p) for r in reports for p in r.photos if not p.accepted]
    console.print(f"{len(reports)} people, {sum(r.accepted for r in reports)} photos accepted, {len(rejected)} rejected")
    if rejected:
        table = Table("person", "photo", "reason 原因")
        for person, photo in rejected:
            table.add_row(person, photo.name, photo.reason)
        console.print(table)
    with _progress() as progress:
        task = progress.add_task("校准 calibrating", total=None)
        gallery, calibration = registry.build_gallery(target_far, lambda done, total: progress.update(task, completed=done, total=total))
    console.print(f"人脸库 gallery version {gallery.version}: {len(gallery.people)} people")
    print_calibration(calibration)


@faces_app.command("list")
def list_people(db: Db = DEFAULT_DB) -> None:
    """Enrolled people (no biometric data shown)."""
    table = Table("person_id", "姓名 name", "工号 staff no", "templates", "PIN")
    for p in _registry(db).people():
        table.add_row(str(p["person_id"]), str(p["name"] or ""), str(p["staff_no"] or ""), str(p["templates"]), "✓" if p["pin"] else "")
    console.print(table)


@faces_app.command("delete")
def delete(person_id: str, db: Db = DEFAULT_DB, target_far: float = 0.01) -> None:
    """Delete a person's face data and build a gallery without them (the terminals drop them too)."""
    registry = _registry(db)
    if not registry.delete(person_id):
        raise _error(f"{person_id!r} is not enrolled", 1)
    gallery, _ = registry.build_gallery(target_far)
    console.print(f"deleted {person_id}; gallery version {gallery.version} no longer holds them")


@faces_app.command("pin")
def pin(person_id: str, db: Db = DEFAULT_DB, target_far: float = 0.01) -> None:
    """Set the PIN a person types with their staff number when the face does not work."""
    from server.faces.registry import RegistryError

    registry = _registry(db)
    value = typer.prompt("PIN (4–8 digits)", hide_input=True, confirmation_prompt=True)
    try:
        registry.set_pin(person_id, value)
    except RegistryError as exc:
        raise _error(exc) from None
    gallery, _ = registry.build_gallery(target_far)
    console.print(f"PIN set for {person_id}; gallery version {gallery.version}")


def print_evaluation(result: Evaluation, target_far: float) -> None:
    table = Table(title="Identification on the folder (same photos, same folds)")
    for column in ("method", "enrolled probes", "identified", "wrong", "retries", "stranger probes", "strangers accepted (FAR)"):
        table.add_column(column, justify="right" if column != "method" else "left")
    for name, tally in (("HallWatch (calibrated, margin)", result.calibrated), ("face_recognition, tolerance 0.6", result.raw)):
        r = tally.rates()
        table.add_row(
            name,
            str(tally.enrolled_probes),
            f"{tally.identified} ({r['identified']:.1%})",
            str(tally.wrong),
            f"{tally.retries} ({r['retries']:.1%})",
            str(tally.stranger_probes),
            f"{tally.stranger_accepts} ({r['stranger_far']:.1%})",
        )
    table.add_row("target", "", "≥ 95 %", "0", "≤ 5 %", "", f"≤ {target_far:.0%}")
    console.print(table)
    thresholds = sorted(set(result.thresholds_seen))
    if thresholds:
        console.print(f"thresholds chosen per fold: {thresholds[0][0]:.2f}–{thresholds[-1][0]:.2f}, margins {min(m for _, m in thresholds):.3f}–{max(m for _, m in thresholds):.3f}")
    rejected = [p for p in result.photos if p.rejected]
    for p in rejected:
        console.print(f"[yellow]photo not usable:[/] {p.path} — {p.rejected}")
    for case in result.calibrated.wrong_cases:
        console.print(f"[red]wrong:[/] {case}")
    console.print("[green]targets met[/]" if result.meets_targets() else "[red]targets NOT met[/]")


@faces_app.command("evaluate")
def evaluate_folder(
    folder: Annotated[Path, typer.Argument(help="known/<person>/*.jpg and optionally strangers/<person>/*.jpg")],
    target_far: Annotated[float, typer.Option(min=0.0001, max=0.2)] = 0.01,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Identified, wrong, retries and the stranger false-accept rate, beside raw face_recognition at 0.6."""
    from vision.evaluate import evaluate, read_folder
    from vision.faces import FaceSettings

    settings = FaceSettings()
    photos_total = sum(1 for group in ("known", "strangers") for _ in folder.glob(f"{group}/*/*"))
    with _progress() as progress:
        task = progress.add_task("编码 encoding", total=photos_total)
        try:
            photos = read_folder(folder, settings, lambda path: progress.advance(task))
        except ValueError as exc:
            raise _error(exc) from None
        task = progress.add_task("评估 evaluating", total=None)
        result = evaluate(photos, target_far, lambda: progress.advance(task))
    if as_json:
        print(json.dumps({"hallwatch": result.calibrated.rates(), "face_recognition_0.6": result.raw.rates(), "targets_met": result.meets_targets()}, indent=1))
    else:
        print_evaluation(result, target_far)


@faces_app.command("liveness")
def liveness_report(
    folder: Annotated[Path, typer.Argument(help="known/<person>/* (live) and spoof/<person>/* (printed-photo attacks)")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """The passive check on live pictures and attacks: the shipped model's rates, and a refit's
    leave-one-subject-out rates (how well it would do on people it was not fitted on)."""
    from vision.liveness import SHIPPED_PASSIVE, calibrate_passive, load_samples

    if not (folder / "spoof").is_dir():
        raise _error(f"{folder}: no spoof/ folder of attack pictures (spoof/<person>/*.jpg)")
    with _progress() as progress:
        progress.add_task("特征 features", total=None)
        samples = load_samples(folder)
    attacked = {s.person for s in samples if not s.live}
    live = [s for s in samples if s.live and s.person in attacked]
    spoof = [s for s in samples if not s.live]
    others = [s for s in samples if s.live and s.person not in attacked]
    threshold = 0.5

    def passed(items: list[object]) -> int:
        return sum(SHIPPED_PASSIVE.score(s.features) >= threshold for s in items)  # type: ignore[attr-defined]

    shipped = {"spoof_rejected": len(spoof) - passed(spoof), "spoof": len(spoof), "live_accepted": passed(live), "live": len(live), "other_live_accepted": passed(others), "other_live": len(others)}
    refit = calibrate_passive(samples, threshold).to_dict() if attacked else {}
    if as_json:
        print(json.dumps({"shipped": shipped, "refit_cross_validated": refit}, indent=1, ensure_ascii=False))
        return
    table = Table(title="Passive liveness (printed-photo attacks vs live pictures of the same people)")
    for column in ("model", "prints rejected", "live accepted", "other live pictures accepted"):
        table.add_column(column, justify="left" if column == "model" else "right")
    table.add_row("shipped (vision/liveness.py)", f"{shipped['spoof_rejected']}/{shipped['spoof']}", f"{shipped['live_accepted']}/{shipped['live']}", f"{shipped['other_live_accepted']}/{shipped['other_live']}")
    if refit:
        table.add_row("refit, leave-one-subject-out", f"{refit['cv_spoof_rejected_pct']} %", f"{refit['cv_live_accepted_pct']} %", f"{refit['other_live_accepted_pct']} %")
    console.print(table)


@keys_app.command("init")
def keys_init(
    directory: Annotated[Path, typer.Argument(help="Folder for the new key files (created 0700; existing keys are never overwritten).")],
) -> None:
    """Create the face template key and the gallery keys (each file 0600) and say where each goes."""
    from cryptography.fernet import Fernet

    from vision import gallery_seal as seal

    files = seal.new_key_files() | {TEMPLATE_KEY_FILE: Fernet.generate_key() + b"\n"}
    try:
        seal.write_private_files(directory, files)
    except FileExistsError as exc:
        fail(f"{exc}; move them away first if you really mean to replace the keys")
    placement = [
        (TEMPLATE_KEY_FILE, TEMPLATE_KEY_ENV, "server only: encrypts stored face templates"),
        (seal.SIGNING_KEY_FILE, seal.SIGNING_KEY_ENV, "server only: signs galleries"),
        (seal.GALLERY_KEY_FILE, seal.GALLERY_KEY_ENV, "server and every face terminal: encrypts galleries"),
        (seal.VERIFY_KEY_FILE, seal.VERIFY_KEY_ENV, "every face terminal: checks the server's signature"),
    ]
    stderr.print(f"key files written to {directory} (mode 0600); set these variables where each file goes:")
    for name, env, where in placement:
        typer.echo(f"{env}={directory / name}    # {where}")
    stderr.print("copy each file to its hosts with mode 0600, keep an offline backup, delete what is not needed here")
