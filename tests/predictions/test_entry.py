"""What an entry accepts: aware times kept in UTC, one probability and decision per label, no other
field (no signal, no patient id), an embedding no longer than pooled features."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from components.predictions.entry import MAX_EMBEDDING

from .helpers import T0, entry


def test_an_aware_time_is_kept_in_utc_and_a_naive_one_is_refused() -> None:
    berlin = T0.astimezone(timezone(timedelta(hours=1)))
    assert entry(berlin).time == T0 and entry(berlin).time.utcoffset() == timedelta(0)
    with pytest.raises(ValidationError, match="timezone"):
        entry(datetime(2026, 3, 1, 8, 30))


def test_probabilities_and_decisions_have_one_value_per_label() -> None:
    with pytest.raises(ValidationError, match="5 labels but 4 probabilities and 5 decisions"):
        entry(probabilities=[0.1, 0.2, 0.3, 0.4])
    assert entry(decisions=[True, False, True, False, False]).positive_labels == ["NORM", "STTC"]


def test_no_field_beyond_the_schema_and_no_signal_sized_embedding() -> None:
    with pytest.raises(ValidationError, match="patient_id"):
        entry(patient_id="P-0001")
    with pytest.raises(ValidationError, match="embedding"):
        entry(embedding=[0.0] * (MAX_EMBEDDING + 1))


def test_quality_features_may_be_nan_but_must_be_column_names() -> None:
    assert math.isnan(entry(quality={"snr_db": float("nan")}).quality["snr_db"])
    with pytest.raises(ValidationError, match="not names"):
        entry(quality={"snr db": 1.0})
