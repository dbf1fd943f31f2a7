"""Stopping a local server: SIGTERM, a bounded wait, then SIGKILL."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from components.localserver import stop

IGNORES_SIGTERM = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n"
)


def test_a_process_that_ends_on_sigterm_is_not_killed() -> None:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    stop(process, grace_s=20)
    assert process.returncode == -signal.SIGTERM


def test_a_process_that_ignores_sigterm_is_killed_after_the_grace_period() -> None:
    process = subprocess.Popen([sys.executable, "-c", IGNORES_SIGTERM], stdout=subprocess.PIPE)
    assert process.stdout is not None and process.stdout.readline() == b"ready\n"
    started = time.monotonic()
    stop(process, grace_s=0.5)
    assert process.returncode == -signal.SIGKILL and time.monotonic() - started < 10
    process.stdout.close()
