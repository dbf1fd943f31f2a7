"""Serve ``retrain`` as a scheduled Prefect deployment until SIGINT or SIGTERM says stop.

Prefect's ``flow.serve`` leaves stopping to a ``KeyboardInterrupt`` travelling up through its runner. On
an overloaded machine a served process has been seen to let two Ctrl-C pass without a word, so this
process owns its signals instead. The first SIGINT or SIGTERM

1. pauses the deployment with a client call of its own, so no schedule fires while nobody serves it;
2. lets a run in flight finish (a warm stop: a retrain is not cut in the middle of fine-tuning); a second
   signal cancels it instead (its state becomes Cancelled; the next run resumes its stages);
3. stops Prefect's runner and waits at most ``grace_s`` for it.

Each step prints a line. A runner that does not stop within the grace period is left behind: the process
says so and exits with status 1, the deployment already paused. SIGUSR1 writes every thread's stack to
stderr, for a process that seems stuck.
"""

from __future__ import annotations

import asyncio
import faulthandler
import os
import signal
import sys
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict
from rich.console import Console

console = Console(stderr=True, soft_wrap=True)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class ServedDeployment(BaseModel):
    """What ``ecgops schedule`` (``retrain``) and ``ecgops monitor --schedule`` (``monitor``) serve: a
    deployment of the flow on a cron schedule."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    flow: Literal["retrain", "monitor"] = "retrain"
    name: str
    cron: str
    timezone: str = "UTC"
    parameters: dict[str, Any]
    grace_s: float = 60.0


def serve(deployment: ServedDeployment) -> None:
    """Serve ``deployment`` until SIGINT or SIGTERM; return once it is paused and the runner stopped."""
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    outcome = asyncio.run(_serve(deployment))
    if outcome == "runner hung":
        console.print(
            f"[red]ecgops schedule:[/] Prefect's runner did not stop within {deployment.grace_s:.0f} s; "
            "exiting without it"
        )
        sys.stderr.flush()
        os._exit(1)  # a runner stuck in its shutdown would hold asyncio.run's final task cancellation
    if outcome == "not paused":
        raise SystemExit(1)


class _StopSignals:
    """The first stop signal asks for a warm stop, the second for cancelling the run in flight."""

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.cancel = asyncio.Event()

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        for number in STOP_SIGNALS:
            loop.add_signal_handler(number, self._received)

    def _received(self) -> None:
        (self.cancel if self.stop.is_set() else self.stop).set()


async def _serve(deployment: ServedDeployment) -> Literal["stopped", "not paused", "runner hung"]:
    from prefect.runner import Runner

    runner = Runner(name=deployment.name, pause_on_shutdown=False, limit=1)
    signals = _StopSignals()
    signals.install()  # from here on a signal is a stop, even while the deployment is being created
    deployment_id = await runner.aadd_flow(**_flow_spec(deployment))
    serving = asyncio.create_task(runner.start(), name="prefect-runner")
    await asyncio.sleep(0)  # the runner's task runs up to its first wait, past its own SIGTERM handler
    signals.install()  # which ours replace at once
    stopping = asyncio.create_task(signals.stop.wait(), name="stop-signal")
    await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    console.print("stopping: pausing the deployment")
    paused = await _pause(deployment_id, deployment.grace_s)
    if await _wait_for_runs_in_flight(deployment_id, signals.cancel):
        console.print("cancelling the run in flight")
        await runner.astop()
    console.print("stopping the runner")
    serving.cancel()
    done, _ = await asyncio.wait({serving}, timeout=deployment.grace_s)
    if not done:
        return "runner hung"
    if not serving.cancelled():
        serving.result()  # a runner that ended on an error says so here
    console.print("[bold]stopped[/]")
    return "stopped" if paused else "not paused"


async def _wait_for_runs_in_flight(deployment_id: UUID, cancel: asyncio.Event, poll_s: float = 2.0) -> bool:
    """Wait until no run of the deployment is in flight; True if ``cancel`` came first."""
    announced: set[str] = set()
    while names := await _runs_in_flight_or_all(deployment_id):
        for name in sorted(set(names) - announced):
            console.print(f"waiting for run {name} to finish (stop again to cancel it)")
        announced |= set(names)
        try:
            await asyncio.wait_for(cancel.wait(), timeout=poll_s)
            return True
        except TimeoutError:
            continue
    return False


async def _runs_in_flight_or_all(deployment_id: UUID) -> list[str]:
    """The runs in flight; when the API cannot say, every run this process may be running."""
    try:
        return await _runs_in_flight(deployment_id)
    except Exception as exc:  # an unreachable API cannot tell which runs are in flight
        console.print(f"[red]cannot read the runs in flight:[/] {type(exc).__name__}: {exc}")
        return ["(unknown)"]


async def _runs_in_flight(deployment_id: UUID) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterDeploymentId,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    unfinished = [StateType.PENDING, StateType.RUNNING, StateType.CANCELLING]
    in_flight = FlowRunFilter(
        deployment_id=FlowRunFilterDeploymentId(any_=[deployment_id]),
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=unfinished)),
    )
    async with get_client() as client:
        return [run.name for run in await client.read_flow_runs(flow_run_filter=in_flight)]


def _flow_spec(deployment: ServedDeployment) -> dict[str, Any]:
    from prefect.schedules import Cron
    from prefect.types.entrypoint import EntrypointType

    from flows.production import monitor_flow
    from flows.retrain import retrain

    return {
        "flow": retrain if deployment.flow == "retrain" else monitor_flow,
        "name": deployment.name,
        "schedule": Cron(deployment.cron, timezone=deployment.timezone),
        "parameters": deployment.parameters,
        "tags": ["ecgops"],
        "concurrency_limit": 1,
        "entrypoint_type": EntrypointType.MODULE_PATH,
    }


async def _pause(deployment_id: UUID, timeout_s: float) -> bool:
    """Pause the deployment; say so, or say why not (the stop goes on either way)."""
    from prefect.client.orchestration import get_client

    try:
        async with asyncio.timeout(timeout_s), get_client() as client:
            await client.pause_deployment(deployment_id)
    except Exception as exc:  # an unreachable or failing Prefect API must not keep the process serving
        console.print(f"[red]could not pause the deployment:[/] {type(exc).__name__}: {exc}")
        return False
    console.print("the deployment is paused")
    return True
