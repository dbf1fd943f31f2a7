"""The report tokenizer learned from German and English PTB-XL reports."""

from __future__ import annotations

import numpy as np
import pandas as pd

from components.models.tokenizer import UNK, ReportTokenizer

GERMAN = "sinusrhythmus linkstyp sonst normales ekg"
ENGLISH = "sinus rhythm. left ventricular hypertrophy. st segments are depressed"


def _reports(samples_dir) -> list[str]:
    return pd.read_csv(samples_dir / "ptbxl_database.csv")["report"].dropna().tolist()


def test_learns_german_and_english_reports(samples_dir) -> None:
    reports = _reports(samples_dir)
    assert any("sinusrhythmus" in r for r in reports) and any("sinus rhythm" in r for r in reports)
    tok = ReportTokenizer.train(reports, vocab_size=400, max_tokens=32)
    german, english = tok.tokens(GERMAN), tok.tokens(ENGLISH)
    assert german[0] == "[CLS]" and english[0] == "[CLS]"
    assert UNK not in german and UNK not in english
    # frequent report words are single tokens, not spelled out letter by letter
    assert "sinusrhythmus" in german and "normales" in german
    assert "rhythm" in english and "sinus" in english
    assert len(german) <= 8
    # upper-case umlauts (PTB-XL writes "unbestÄtigter") are normalised to lower case
    assert tok.encode(["unbestÄtigter bericht"]).tolist() == tok.encode(["unbestätigter bericht"]).tolist()


def test_fixed_length_ids_and_json_round_trip(samples_dir) -> None:
    tok = ReportTokenizer.train(_reports(samples_dir), vocab_size=300, max_tokens=16)
    ids = tok.encode([GERMAN, ENGLISH, "x " * 100])
    assert ids.shape == (3, 16) and ids.dtype == np.int64
    assert ids[0, -1] == tok.pad_id and (ids[2] != tok.pad_id).all()
    again = ReportTokenizer.from_json(tok.to_json(), 16)
    assert (again.encode([GERMAN, ENGLISH]) == ids[:2]).all()
