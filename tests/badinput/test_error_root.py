"""One error root: every error class a component defines is either a ``UserError`` (the CLI prints it as
one red line, exit 2) or, with its subclasses, on the short list of errors that never reach the CLI as
they are."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import components
from components.errors import UserError

#: caught and turned into something else before they could reach a person
INTERNAL = {
    "components.io.wfdb_header.HeaderError": "a quarantine reason",
    "components.io.wfdb_reader.RecordError": "a quarantine reason",
    "components.config.YamlError": "wrapped into ParamsError / TaskError with the file's path",
    "components.serving.errors.RequestError": "a 4xx response",
    "components.serving.batcher.OverloadedError": "a 503 response with Retry-After",
    "components.serving.runtime.TraceMismatchError": "a Bento refused at load time",
    "components.localserver.ServerStartError": "a local server that did not come up",
    "components.orchestration.server.PrefectServerError": "a local server that did not come up",
    "components.localserver.ServerExitedError": "a local server that did not come up",
    "components.training.launch.TrainingLaunchError": "a DDP child that failed, with its log",
    "components.orchestration.errors.ValidationBlocked": "a run ended on purpose: `ecgops run` exits 1",
}


def _component_errors() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for module_info in pkgutil.walk_packages(components.__path__, "components."):
        if ".migrations" in module_info.name or module_info.name.endswith("__main__"):
            continue
        module = importlib.import_module(module_info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
            ):
                found[f"{module.__name__}.{name}"] = value
    return found


def test_every_component_error_is_a_user_error_or_named_internal() -> None:
    errors = _component_errors()
    assert "components.registry.errors.RegistryError" in errors and "components.io.store.StoreError" in errors
    internal = tuple(errors[name] for name in INTERNAL if name in errors)
    undecided = sorted(name for name, cls in errors.items() if not issubclass(cls, (UserError, *internal)))
    assert not undecided, (
        f"derive these from components.errors.UserError, or list them in INTERNAL: {undecided}"
    )
    assert not [name for name in INTERNAL if name not in errors], "INTERNAL names a class that is gone"
