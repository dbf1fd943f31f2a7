"""A pre-imported parent for the fault tests' ``ecgops`` commands (``python -m tests.faults.zygote``).

It imports the CLI, the flows and the training stack once (10-20 s a process otherwise), then forks one
child per request: a real ``ecgops`` process (``components.cli``'s ``__main__``) in a session of its own,
with its own stdout/stderr files, that a test can SIGKILL like any other. It is started with the
workspace's environment, which the children keep. Protocol, one line each: requests on stdin as JSON
``{"argv": [...], "stdout": path, "stderr": path, "env": {...}}``; replies ``ready``, ``started PID``,
``exit PID CODE`` (a negative code: killed by that signal). At end of input it kills what is left.
"""

from __future__ import annotations

import json
import os
import runpy
import select
import signal
import sys
import traceback
from typing import Any


def _child(request: dict[str, Any]) -> None:
    """Become ``ecgops ARGV`` with the requested output files; never returns."""
    code = 1
    try:
        os.setsid()
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
            os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
        os.environ.update(request.get("env", {}))
        sys.argv = ["ecgops", *request["argv"]]
        try:
            runpy.run_module("components.cli", run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _reap(children: set[int]) -> None:
    for pid in list(children):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            children.discard(pid)
            code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
            print(f"exit {pid} {code}", flush=True)


def main() -> None:
    import components.cli
    import components.training.stage  # noqa: F401
    import flows.retrain  # noqa: F401

    print("ready", flush=True)
    children: set[int] = set()
    pending = b""
    while True:
        readable, _, _ = select.select([0], [], [], 0.05 if children else None)
        _reap(children)
        if not readable:
            continue
        chunk = os.read(0, 65536)
        if not chunk:
            break
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            pid = os.fork()
            if pid == 0:
                _child(json.loads(line))
            children.add(pid)
            print(f"started {pid}", flush=True)
    for pid in children:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:  # not yet in a session of its own
            os.kill(pid, signal.SIGKILL)
    while children:
        select.select([], [], [], 0.05)
        _reap(children)


if __name__ == "__main__":
    main()
