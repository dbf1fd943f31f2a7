"""One place for configuration.

* Environment (where things live, secrets): :class:`Settings`, read from ``ECGOPS_*`` variables.
* Pipeline parameters (what the stages do): ``params.yaml`` at the workspace root (:func:`load_params`).
"""

from __future__ import annotations

import difflib
import importlib
import secrets
from collections.abc import Callable, Hashable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from components.errors import UserError

if TYPE_CHECKING:
    from components.evaluation.params import EvaluateParams
    from components.finetune.params import FinetuneParams
    from components.inference.params import PredictParams
    from components.predictions.params import PredictionLogParams
    from components.runs.params import ComputeParams, OrchestrationParams
    from components.serving.params import PackageParams, ServeParams
    from components.tasks.windows import WindowParams
    from components.training.params import PretrainParams

M = TypeVar("M", bound=BaseModel)

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
SCHEMAS_DIR = PACKAGE_ROOT / "schemas"


class Settings(BaseSettings):
    """Environment settings. Every field can be set as ``ECGOPS_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="ECGOPS_", extra="ignore")

    workspace: Path = Field(default_factory=Path.cwd, description="DVC/git workspace root (holds data.dvc).")
    state_dir_name: str = ".ecgops"
    registry_url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite in state dir.")
    artifact_store: str | None = Field(default=None, description="Directory or fsspec URL for artifacts.")
    dvc_remote_url: str | None = Field(default=None, description="DVC remote URL; default a local directory.")
    patient_salt: SecretStr | None = Field(default=None, description="Secret salt for patient pseudonyms.")
    user: str | None = Field(default=None, description="Who is acting, for the audit log.")
    api_key: SecretStr | None = Field(default=None, description="Key the served API requires (not health).")
    prediction_log: str | None = Field(
        default=None, description="Folder or fsspec URL of the prediction log; overrides params.yaml's."
    )

    @property
    def state_dir(self) -> Path:
        return self.workspace / self.state_dir_name

    @property
    def data_dir(self) -> Path:
        """The DVC-tracked canonical store (``data/``, versioned by ``data.dvc``)."""
        return self.workspace / "data"

    @property
    def resolved_registry_url(self) -> str:
        return self.registry_url or f"sqlite:///{self.state_dir / 'registry.db'}"

    @property
    def resolved_artifact_store(self) -> str:
        return self.artifact_store or str(self.state_dir / "artifacts")

    @property
    def resolved_dvc_remote_url(self) -> str:
        return self.dvc_remote_url or str(self.state_dir / "dvc-remote")

    @property
    def resolved_api_key(self) -> str | None:
        """``ECGOPS_API_KEY``: every served endpoint but the health probes requires it (None: open)."""
        return self.api_key.get_secret_value() if self.api_key else None

    def resolved_patient_salt(self) -> bytes:
        """The pseudonymization salt: ``ECGOPS_PATIENT_SALT``, else a random per-workspace secret file."""
        if self.patient_salt is not None:
            return self.patient_salt.get_secret_value().encode()
        salt_file = self.state_dir / "patient_salt"
        if not salt_file.exists():
            salt_file.parent.mkdir(parents=True, exist_ok=True)
            salt_file.write_text(secrets.token_hex(32))
            salt_file.chmod(0o600)
        return salt_file.read_text().strip().encode()

    @property
    def actor(self) -> str:
        import getpass

        return self.user or getpass.getuser()


#: a dataset is the folder ``data/<name>``: one plain path component
DATASET_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class IngestParams(BaseModel):
    """``ingest:`` section of params.yaml."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(default="demo", pattern=DATASET_NAME, description="data/<dataset>")
    target_fs: int = Field(default=100, gt=0, le=10_000)
    target_duration_s: float = Field(default=10.0, gt=0.0, le=3600.0)
    shard_max_records: int = Field(default=8192, ge=1)
    chunk_records: int = Field(default=128, ge=1)
    workers: int = Field(default=2, ge=0, description="reader processes (0 or 1: in this process)")
    val_buckets: list[int] = [8]
    test_buckets: list[int] = [9]
    hash_buckets: int = Field(default=10, ge=1)

    @model_validator(mode="after")
    def _buckets_exist_and_differ(self) -> IngestParams:
        for name in ("val_buckets", "test_buckets"):
            outside = [b for b in getattr(self, name) if not 0 <= b < self.hash_buckets]
            if outside:
                raise ValueError(f"{name} {outside} are not buckets 0-{self.hash_buckets - 1} (hash_buckets)")
        if both := sorted(set(self.val_buckets) & set(self.test_buckets)):
            raise ValueError(f"buckets {both} are both val_buckets and test_buckets")
        return self


class ParamsError(UserError, ValueError):
    """A params.yaml that cannot be used as written; the message names the file and the dotted key."""


#: section of params.yaml → (module, class) of its model; imported on first use (some pull in torch)
SECTION_MODELS: dict[str, tuple[str, str]] = {
    "pretrain": ("components.training.params", "PretrainParams"),
    "finetune": ("components.finetune.params", "FinetuneParams"),
    "evaluate": ("components.evaluation.params", "EvaluateParams"),
    "windows": ("components.tasks.windows", "WindowParams"),
    "predict": ("components.inference.params", "PredictParams"),
    "serve": ("components.serving.params", "ServeParams"),
    "package": ("components.serving.params", "PackageParams"),
    "orchestration": ("components.runs.params", "OrchestrationParams"),
    "compute": ("components.runs.params", "ComputeParams"),
    "prediction_log": ("components.predictions.params", "PredictionLogParams"),
}


class Params(BaseModel):
    """The whole params.yaml, every section typed by its stage's model; unknown keys are errors at every
    level. Build it with :func:`load_params` or :func:`parse_params` (they complete the section types)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    ingest: IngestParams
    pretrain: PretrainParams
    finetune: FinetuneParams
    evaluate: EvaluateParams
    windows: WindowParams
    predict: PredictParams
    serve: ServeParams
    package: PackageParams
    orchestration: OrchestrationParams
    compute: ComputeParams
    prediction_log: PredictionLogParams

    @model_validator(mode="before")
    @classmethod
    def _absent_sections_take_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        given = {key: {} if value is None else value for key, value in data.items()}
        return {name: {} for name in cls.model_fields} | given

    def section(self, name: str) -> dict[str, Any]:
        """One section as plain JSON data, defaults filled in (what cache keys fingerprint)."""
        if name not in type(self).model_fields:
            raise KeyError(
                f"params.yaml has no section {name!r}; sections: {', '.join(type(self).model_fields)}"
            )
        section: BaseModel = getattr(self, name)
        return section.model_dump(mode="json")


def _typed_params() -> type[Params]:
    """:class:`Params` with its section models imported and its validator built (once)."""
    if not Params.__pydantic_complete__:
        namespace = {
            cls: getattr(importlib.import_module(module), cls) for module, cls in SECTION_MODELS.values()
        }
        Params.model_rebuild(_types_namespace=namespace)
    return Params


def parse_params(raw: Any, source: str = "params.yaml") -> Params:
    """Validate params.yaml's content; :class:`ParamsError` names ``source`` and every bad dotted key."""
    model = _typed_params()
    if raw is not None and not isinstance(raw, dict):
        raise ParamsError(
            f"{source}: must be a mapping of sections (ingest, pretrain, ...), got {type(raw).__name__}"
        )
    try:
        return model.model_validate(raw or {})
    except ValidationError as exc:
        raise ParamsError(f"{source}: {'; '.join(_problems(exc))}") from None


def load_params(path: Path | None = None) -> Params:
    """Read ``params.yaml`` (workspace root by default); a missing file or section means defaults, a
    misspelt or unknown key anywhere is a :class:`ParamsError`."""
    path = path or get_settings().workspace / "params.yaml"
    return parse_params(raw_params(path), str(path))


def raw_params(path: Path) -> Any:
    """``params.yaml`` as written (no defaults filled in; None when the file is absent);
    :class:`ParamsError` when it is not YAML."""
    if not path.exists():
        return None
    try:
        return read_yaml(path)
    except YamlError as exc:
        raise ParamsError(f"{path}: {exc}") from None


class YamlError(ValueError):
    """A YAML file that cannot be read: not text, not valid YAML, or a key given twice in one mapping."""


def read_yaml(path: Path) -> Any:
    """The content of a YAML file the user edits (params, tasks, gates); :class:`YamlError` says what is
    wrong, without the path (callers add it)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise YamlError(f"not UTF-8 text (byte {exc.start} is {exc.object[exc.start]:#04x})") from None
    except OSError as exc:
        raise YamlError(f"cannot be read: {exc.strerror or exc}") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.MarkedYAMLError as exc:  # one line: what and where, without PyYAML's drawing of the line
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise YamlError(f"not valid YAML: {exc.problem}{where}") from None
    except yaml.YAMLError as exc:
        raise YamlError(f"not valid YAML: {exc}") from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                continue  # SafeLoader refuses it below
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def yaml_path(name: str, directory: Path) -> Path:
    """``name`` itself when it is a ``.yaml``/``.yml`` path, else ``<directory>/<name>.yaml``."""
    return Path(name) if Path(name).suffix in (".yaml", ".yml") else directory / f"{name}.yaml"


def load_named_yaml(
    name: str,
    directory: Path,
    model: type[M],
    *,
    what: str,
    error: type[UserError],
    explain: Callable[[ValidationError], str] | None = None,
) -> M:
    """A named YAML file of ``directory`` (``schemas/gates``, ``schemas/monitoring``, ...) or a path to one,
    validated as ``model``, whose ``name`` must be the file's. ``error`` names the file and what is wrong:
    an unknown name (with the known ones), bad YAML, each bad dotted key (``explain``; by default
    ``unknown key a.b (did you mean a.c?)`` or ``a.b: what is wrong``), a name that is not the file's."""
    path = yaml_path(name, directory)
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in directory.glob("*.yaml"))) or "(none)"
        raise error(f"unknown {what} {name!r}: no {path}; known: {known}")
    try:
        loaded = model.model_validate(read_yaml(path))
    except ValidationError as exc:
        detail = explain(exc) if explain is not None else "; ".join(_problems(exc, model))
        raise error(f"{path}: {detail}") from None
    except YamlError as exc:
        raise error(f"{path}: {exc}") from None
    stated = getattr(loaded, "name", None)
    if stated != path.stem:
        raise error(f"{path}: name {stated!r} must match the file name {path.stem!r}")
    return loaded


def _problems(error: ValidationError, root: type[BaseModel] | None = None) -> list[str]:
    """Each validation error as ``unknown key a.b.c`` or ``a.b.c: what is wrong`` (``root``: the model
    validated, :class:`Params` by default, whose keys suggest the one a misspelt key meant)."""
    problems = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"])
        if item["type"] == "extra_forbidden":
            hint = _close_key(item["loc"], root or Params)
            problems.append(f"unknown key {key}" + (f" (did you mean {hint}?)" if hint else ""))
        else:
            message = str(item["msg"]).removeprefix("Value error, ")
            problems.append(f"{key}: {message}" if key else message)
    return problems


def _close_key(loc: tuple[int | str, ...], root: type[BaseModel]) -> str | None:
    """The key of the same model closest to a misspelt one (``target_fss`` → ``target_fs``), if any."""
    model: Any = root
    for part in loc[:-1]:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            return None
        candidates = [field.annotation, *get_args(field.annotation)]
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if model is None:
            return None
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1)
    return close[0] if close else None


@cache
def get_settings() -> Settings:
    """Process-wide settings (cached; tests build their own :class:`Settings`)."""
    return Settings()
