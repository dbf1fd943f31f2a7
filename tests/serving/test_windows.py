"""Long records in serving: a 21-s record read in three windows of the model's length whose probabilities
are aggregated as ``windows.aggregate`` says (mean or max), features averaged; too long a record is refused
with the limit; a short one keeps its 400."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from components.io.canonical import canonicalize, split_windows
from components.io.leads import STANDARD_LEADS
from components.io.wfdb_reader import read_record
from components.models.task_model import save_task_model
from components.serving.errors import RequestError
from components.serving.inputs import InputSpec, prepare_input
from components.serving.params import ServeParams
from components.serving.runtime import ModelRuntime, combine_windows
from components.tasks.windows import WindowParams
from tests.conftest import untrained_task_model

TWELVE = InputSpec("task superdiagnostic", 100, 1000, tuple(STANDARD_LEADS), tuple(STANDARD_LEADS))
LIMITS = ServeParams()


def _q0026(fixtures_dir: Path) -> tuple[np.ndarray, float, list[str], list[str]]:
    raw = read_record(fixtures_dir / "cinc" / "cpsc2018_extra" / "Q0026")  # 500 Hz, 21 s, 12 leads
    return raw.signal.T, raw.fs, list(raw.sig_names), list(raw.units)


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> ModelRuntime:
    return ModelRuntime(save_task_model(untrained_task_model(), tmp_path_factory.mktemp("task")))


def test_a_long_record_is_read_in_windows_aggregated_as_configured(
    fixtures_dir: Path, runtime: ModelRuntime
) -> None:
    signal, fs, names, units = _q0026(fixtures_dir)
    whole = canonicalize(signal, fs, names, units, target_fs=100, target_samples=None)
    assert whole.n_valid_samples == 2100
    expected_windows = split_windows(whole.signal, 2100, 1000)
    masks = np.repeat(whole.lead_mask[None], 3, axis=0)
    proba, features = runtime.task.predict_with_features(expected_windows, masks)
    assert not np.allclose(proba.max(axis=0), proba.mean(axis=0))  # the two rules differ on this record

    for how, combine in (("mean", np.mean), ("max", np.max)):
        prepared = prepare_input(
            signal, fs, names, units, TWELVE, LIMITS, windows=WindowParams(aggregate=how)
        )
        assert prepared.n_windows == 3 and prepared.n_samples == 10500
        np.testing.assert_array_equal(prepared.windows, expected_windows)
        out = runtime.predict_batch(
            prepared.windows, np.repeat(prepared.canonical.lead_mask[None], 3, axis=0)
        )
        got_proba, got_features = combine_windows(list(zip(*out, strict=True)), how)
        np.testing.assert_allclose(got_proba, combine(proba, axis=0), atol=1e-6)
        np.testing.assert_allclose(got_features, features.mean(axis=0), atol=1e-5)

    first = prepare_input(signal, fs, names, units, TWELVE, LIMITS)  # no windows: the first 10 s, as /embed
    assert first.n_windows == 1
    np.testing.assert_array_equal(first.windows[0], expected_windows[0])


def test_too_long_a_record_is_refused_with_the_limit_and_a_short_one_as_before(fixtures_dir: Path) -> None:
    signal, fs, names, units = _q0026(fixtures_dir)
    with pytest.raises(RequestError) as caught:
        prepare_input(signal, fs, names, units, TWELVE, LIMITS, windows=WindowParams(max_windows=2))
    assert caught.value.message == (
        "the signal is too long: 10500 samples at 500 Hz is 21.00 s, 3 windows of 10 s; task superdiagnostic "
        "reads at most 2 windows (20 s): send the record in parts of at most 20 s"
    )
    with pytest.raises(
        RequestError,
        match=r"too short: 4000 samples at 500 Hz is 8\.00 s; task superdiagnostic needs at least 10 s",
    ):
        prepare_input(signal[:, :4000], fs, names, units, TWELVE, LIMITS, windows=WindowParams())
    padded = prepare_input(
        signal[:, :4000], fs, names, units, TWELVE, ServeParams(min_duration_s=5), windows=WindowParams()
    )
    assert padded.n_windows == 1 and not padded.windows[0, :, 800:].any()  # one zero-padded window
