"""Commands started in the background, and waits on the events they cause, not on the clock.

A slow or busy machine only makes a wait longer: ``LIMIT`` is there to end a hang, not to
time the work. Output goes to files rather than pipes, so a command that prints a lot (progress
bars) never blocks on a full pipe while the test waits for something else.
"""

from __future__ import annotations

import signal
import subprocess
import tempfile
import time

LIMIT = 1800  # seconds; far beyond any step of these tests on a 2-core machine under load


def _default_interrupt() -> None:
    # A runner started in the background (a non-interactive shell's `cmd &`, some CI services)
    # ignores SIGINT, children inherit that, and Python then installs no KeyboardInterrupt
    # handler: Ctrl-C as a user sends it must reach the command as it would from a terminal.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Started:
    def __init__(self, command, **kwargs):
        self._out, self._err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
        self.process = subprocess.Popen([str(c) for c in command], stdout=self._out, stderr=self._err, text=True,
                                        preexec_fn=_default_interrupt, **kwargs)

    def poll(self):
        return self.process.poll()

    def wait(self, limit: float = LIMIT) -> int:
        return self.process.wait(timeout=limit)

    def kill(self):
        self.process.kill()
        self.process.wait()

    def send_signal(self, signal):
        self.process.send_signal(signal)

    @property
    def returncode(self):
        return self.process.returncode

    def _read(self, file) -> str:
        file.seek(0)
        return file.read()

    @property
    def stdout(self) -> str:
        return self._read(self._out)

    @property
    def stderr(self) -> str:
        return self._read(self._err)


def wait_until(happened, *, what: str, process: Started | None = None, limit: float = LIMIT, poll: float = 0.05):
    """Return once ``happened()`` is true; fail if ``process`` ends first or after ``limit`` seconds."""
    started = time.monotonic()
    while not happened():
        if process is not None and process.poll() is not None:
            if happened():  # it happened just before the command ended
                return
            raise AssertionError(f"the command ended (rc {process.returncode}) before {what}:\n{process.stderr[-3000:]}")
        if time.monotonic() - started > limit:
            raise AssertionError(f"no {what} after {limit:.0f} s: the command hangs")
        time.sleep(poll)
