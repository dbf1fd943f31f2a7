"""One place for configuration.

* Environment (where things live, secrets): :class:`Settings`, read from ``ECGOPS_*`` variables.
* Pipeline parameters (what the stages do): ``params.yaml`` at the workspace root (:func:`load_params`).
"""

from __future__ import annotations

import secrets
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

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


class IngestParams(BaseModel):
    """``ingest:`` section of params.yaml."""

    dataset: str = "demo"
    target_fs: int = 100
    target_duration_s: float = 10.0
    shard_max_records: int = 8192
    chunk_records: int = 128
    workers: int = 2
    val_buckets: list[int] = [8]
    test_buckets: list[int] = [9]
    hash_buckets: int = 10


class Params(BaseModel):
    """The whole params.yaml; sections are added as stages appear."""

    model_config = {"extra": "allow"}

    ingest: IngestParams = IngestParams()

    def section(self, name: str) -> dict[str, Any]:
        value = getattr(self, name, None)
        if isinstance(value, BaseModel):
            return value.model_dump()
        return dict(value or {})


def load_params(path: Path | None = None) -> Params:
    """Read ``params.yaml`` (workspace root by default); missing file or keys fall back to defaults."""
    path = path or get_settings().workspace / "params.yaml"
    raw = yaml.safe_load(path.read_text()) if path.exists() else {}
    return Params.model_validate(raw or {})


@cache
def get_settings() -> Settings:
    """Process-wide settings (cached; tests build their own :class:`Settings`)."""
    return Settings()
