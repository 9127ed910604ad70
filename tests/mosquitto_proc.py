"""Run a real Mosquitto broker for a test.

    from mosquitto_proc import start_mosquitto   # pytest puts tests/ on sys.path

    def test_something(tmp_path):
        with start_mosquitto(tmp_path) as broker:       # anonymous broker
            client.connect("127.0.0.1", broker.port)
            ...
            broker.stop()                                # SIGTERM: saves persistence
            broker.start()                               # same port, same data
            broker.kill()                                # SIGKILL: loses unsaved state

With ``auth=BrokerAuthFiles(...)`` the broker runs the production config from
:func:`broker.mosquitto.render_mosquitto_conf` (no anonymous access,
passwd/acl files, ``use_username_as_clientid``: one connection per account,
a second one with the same username closes the first); ``broker.reload()``
(SIGHUP) makes it re-read them.  Skips locally and fails in CI when
``mosquitto`` is not installed.  A broker left running by a crashed test is
killed when the test process exits.

API: :func:`start_mosquitto`, :class:`MosquittoProcess` (``port``, ``url``,
``start()``, ``stop()``, ``kill()``, ``reload()``, ``log()``, context
manager) and :func:`free_port`.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

from service_proc import ServiceProcess, free_port

from broker.mosquitto import BrokerAuthFiles, render_mosquitto_conf

__all__ = ["MosquittoProcess", "free_port", "start_mosquitto"]


class MosquittoProcess(ServiceProcess):
    """One ``mosquitto -c CONF`` process on 127.0.0.1:``port``.

    ``conf`` is the config text (written to ``workdir/mosquitto.conf``) or the
    path of an existing config file; it must make the broker listen on
    ``port``.  The broker's log goes to ``workdir/mosquitto.log`` (see
    :meth:`log`).  Construction does not start it: call :meth:`start`.
    """

    executable_name = "mosquitto"
    log_name = "mosquitto.log"

    def __init__(self, conf: str | Path, port: int, *, workdir: Path) -> None:
        super().__init__(port, workdir=workdir)
        if isinstance(conf, Path):
            self.conf_path = conf
        else:
            self.conf_path = self.workdir / "mosquitto.conf"
            self.conf_path.write_text(conf)

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [self._executable, "-c", str(self.conf_path)]

    def ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def reload(self) -> None:
        """SIGHUP: re-read the passwd and acl files (and reloadable options)."""
        self._signal(signal.SIGHUP)
        # Mosquitto handles the flag in its main loop, within a few ms; there
        # is no acknowledgement to wait for.
        time.sleep(0.3)


def start_mosquitto(
    tmp_path: Path, *, auth: BrokerAuthFiles | None = None, port: int | None = None
) -> MosquittoProcess:
    """Write a config under ``tmp_path`` and start a broker on 127.0.0.1.

    ``auth`` None: anonymous access, everything allowed (for tests of other
    components).  With ``auth``: the production config (no anonymous
    access, ``auth``'s passwd/acl).  Both persist to ``tmp_path`` so
    :meth:`MosquittoProcess.stop` + :meth:`~MosquittoProcess.start` keep
    retained messages and sessions.  ``port`` None picks a free one.
    """
    port = port or free_port()
    workdir = Path(tmp_path) / f"mosquitto-{port}"
    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    if auth is None:
        conf = "\n".join(
            [
                "per_listener_settings false",
                "allow_anonymous true",
                "persistence true",
                f"persistence_location {data}/",
                "autosave_interval 10",
                "max_queued_messages 100000",
                "log_dest stderr",
                "log_type all",
                f"listener {port} 127.0.0.1",
            ]
        )
    else:
        conf = render_mosquitto_conf(auth.directory, port=port, bind="127.0.0.1", persistence_dir=data)
    if os.geteuid() == 0:
        # As root, Mosquitto switches to the 'mosquitto' user, which cannot
        # read root's 0600 passwd file or write into tmp_path.  Stay root.
        conf += "\nuser root\n"
    return MosquittoProcess(conf, port, workdir=workdir).start()
