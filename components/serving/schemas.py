"""Request and response bodies of the served API (pydantic; BentoML turns them into the OpenAPI schema).

Inputs are strict (numbers must be JSON numbers); whatever JSON cannot express is checked in
:mod:`components.serving.inputs`. Outputs have no optional fields, so the generated schema is exact.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Strict, Tag

#: one sample value: a JSON number (strings such as "1.5" are refused, not guessed at)
Sample = Annotated[float, Strict()]


class EncodedSignal(BaseModel):
    """``leads × samples`` as base64 of the raw little-endian numbers in C order, for high-throughput
    clients: a 12-lead 10 s 100 Hz record parses ~5× faster than as JSON numbers (numpy:
    ``base64.b64encode(signal.astype('<f4').tobytes())``)."""

    model_config = ConfigDict(extra="forbid")

    dtype: Literal["float32", "float64", "int16", "int32"] = Field(
        default="float32", description="number type of the values (little-endian)"
    )
    shape: tuple[Annotated[int, Strict(), Field(ge=1)], Annotated[int, Strict(), Field(ge=1)]] = Field(
        description="[leads, samples]"
    )
    data: str = Field(description="standard base64 (RFC 4648) of the leads × samples values")


def _signal_kind(value: Any) -> str:
    """Which form a request's ``signal`` takes, so a bad value gets the errors of that form only."""
    return "base64" if isinstance(value, dict | EncodedSignal) else "numbers"


class SignalRequest(BaseModel):
    """One ECG as JSON: ``signal[i]`` holds the samples of lead ``leads[i]``."""

    model_config = ConfigDict(extra="forbid")

    signal: Annotated[
        Annotated[Annotated[list[list[Sample]], Field(min_length=1)], Tag("numbers")]
        | Annotated[EncodedSignal, Tag("base64")],
        Discriminator(_signal_kind),
    ] = Field(
        description="leads × samples, physical values in `units` (one row per lead, all rows equally "
        "long): JSON numbers, or base64-encoded binary (EncodedSignal)",
    )
    fs: Annotated[float, Strict()] = Field(description="sampling rate in Hz; any rate is resampled")
    leads: list[str] = Field(
        min_length=1,
        description="lead name of each row: I, II, III, aVR, aVL, aVF, V1-V6 (common spellings accepted)",
    )
    units: str = Field(default="mV", max_length=16, description="unit of every value: mV, uV or V")
    site: str | None = Field(
        default=None, max_length=64, description="recording site (kept in the prediction log)"
    )
    device: str | None = Field(default=None, max_length=64, description="recording device (prediction log)")


class Origin(BaseModel):
    """Where a request's ECG was recorded, as the client states it (kept in the prediction log, which
    monitoring groups drift by): never a patient identifier."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    site: str | None = Field(default=None, max_length=64, description="the hospital site or ward")
    device: str | None = Field(default=None, max_length=64, description="the recording device or cart")

    @classmethod
    def checked(cls, site: str | None, device: str | None) -> Origin:
        """From form fields, with a 400 for a value the JSON body would refuse."""
        from pydantic import ValidationError

        from components.serving.errors import RequestError

        try:
            return cls(site=site or None, device=device or None)
        except ValidationError as exc:
            problems = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())
            raise RequestError(problems) from None


class ZeroShotRequest(SignalRequest):
    """An ECG plus free-text label prompts to score it against."""

    prompts: list[str] = Field(
        min_length=1,
        description="free-text label prompts, e.g. 'normal ECG', 'anterior myocardial infarction'",
    )


class ModelIdentity(BaseModel):
    """Which model answered, and what it was trained on."""

    name: str
    version: int
    ref: str = Field(description="name@version in the ecgops registry")
    task: str
    bento: str = Field(description="tag of the Bento serving it")
    dataset_version: str = Field(description="DVC md5 of the training data ('' if unknown)")
    foundation: str = Field(description="the foundation model it was fine-tuned from")


class InputSummary(BaseModel):
    """What the service did with the input."""

    fs: float = Field(description="sampling rate of the request (Hz)")
    n_samples: int = Field(description="samples per lead in the request")
    model_fs: int = Field(description="rate the model reads (Hz); the request was resampled to it")
    model_samples: int = Field(description="samples per lead the model reads at once (one window)")
    n_windows: int = Field(
        description="windows of model_samples the record was read in: a record longer than one window is "
        "cut into consecutive windows (the last one ending at the record's end) whose probabilities are "
        "aggregated (the Bento's windows.aggregate: mean or max); 1 for a record of one window or less, and "
        "for /embed and /zero_shot, which read the record's first window"
    )
    routed_to: str = Field(
        description="the model that read the input: the task of the task model that answered (in a family "
        "Bento, the member chosen by the leads present), or the foundation model for /embed and /zero_shot"
    )
    leads_present: list[str] = Field(description="standard leads the request carried")
    leads_used: list[str] = Field(description="leads the model read (present and part of the model)")


class PredictResponse(BaseModel):
    """Per-label probabilities and decisions at the stored (validation-tuned) thresholds."""

    request_id: str = Field(description="this prediction's id in the prediction log")
    labels: list[str]
    probabilities: dict[str, float]
    decisions: dict[str, bool]
    thresholds: dict[str, float]
    positive_labels: list[str] = Field(description="labels whose probability reached their threshold")
    model: ModelIdentity
    input: InputSummary


class EmbedResponse(BaseModel):
    """The foundation model's unit-norm ECG embedding (the space reports are embedded in too)."""

    embedding: list[float]
    dim: int
    foundation: str
    input: InputSummary


class ZeroShotResponse(BaseModel):
    """Cosine similarity of the ECG with each prompt, and a softmax over the prompts."""

    prompts: list[str]
    similarities: list[float]
    probabilities: list[float] = Field(description="softmax of the similarities at the model's temperature")
    best: str = Field(description="the prompt with the highest similarity")
    foundation: str
    input: InputSummary


class TaskCard(BaseModel):
    """What a deployment team needs to know about one served task model."""

    model: ModelIdentity
    labels: list[str]
    thresholds: dict[str, float]
    leads: list[str] = Field(description="leads the model reads")
    required_leads: list[str] = Field(description="leads every request must carry")
    fs: int
    duration_s: float = Field(description="seconds the model reads at once (one window)")
    mode: str = Field(description="linear_probe, finetune or scratch")
    gate: dict[str, str] = Field(description="the gate decision the model was packaged under")
    forced: bool = Field(description="packaged although the gate did not pass (audited)")
    metrics: dict[str, float] = Field(description="evaluation metrics recorded in the registry")
    git_revision: str
    packaged_at: str
    packaged_by: str
    intended_use: str
    limitations: list[str]


class ModelCard(TaskCard):
    """The served Bento's card: its (base) task model, and the other task models of its family."""

    family: list[TaskCard] = Field(
        description="a family Bento's other task models (the task's lead-set variants), in routing order "
        "after this one, which is the family's base; a request goes to the one whose required leads it "
        "carries and that reads most of its leads. Empty for a Bento of one task model",
    )
