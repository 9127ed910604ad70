"""The ``hallwatch`` command: each capability's commands, put together.

The commands themselves live with what they serve (``server/<capability>/cli.py``);
this module only names the groups, so ``hallwatch --help`` lists everything.
"""

from __future__ import annotations

import typer

from server.attendance.cli import attendance_app, leave_app
from server.demo.cli import commands as demo_commands
from server.devices.camera_cli import camera_app
from server.devices.cli import broker_app, device_app
from server.devices.cli import commands as device_commands
from server.faces.cli import faces_app
from server.supervision.cli import commands as supervision_commands
from server.users.cli import user_app
from server.web.cli import commands as server_commands

app = typer.Typer(help="HallWatch 政务服务大厅窗口监管 — supervision of service hall windows.", no_args_is_help=True)
for commands in (server_commands, demo_commands, device_commands, supervision_commands):
    app.add_typer(commands)  # top-level commands: server, demo, simulate, agent, replay
for name, group in {
    "device": device_app,
    "broker": broker_app,
    "leave": leave_app,
    "faces": faces_app,
    "attendance": attendance_app,
    "camera": camera_app,
    "user": user_app,
}.items():
    app.add_typer(group, name=name)

if __name__ == "__main__":
    app()
