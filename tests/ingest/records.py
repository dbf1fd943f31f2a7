"""Build test drops from real records: variants (lead spellings, single lead, µV) and broken copies."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import wfdb

from tests.conftest import SAMPLES

PTBXL_IDS = ("00001", "00002", "00003", "00004", "00005")


def ptbxl_record(ecg_id: str) -> Path:
    return SAMPLES / f"records100/00000/{ecg_id}_lr"


def copy_record(source: Path, folder: Path, name: str) -> Path:
    """Copy a WFDB record under a new name (header rewritten to match)."""
    folder.mkdir(parents=True, exist_ok=True)
    header = source.with_suffix(".hea").read_text()
    data_ext = ".dat" if source.with_suffix(".dat").exists() else ".mat"
    header = header.replace(f"{source.name}{data_ext}", f"{name}{data_ext}").replace(source.name, name, 1)
    (folder / f"{name}.hea").write_text(header)
    shutil.copy(source.with_suffix(data_ext), folder / f"{name}{data_ext}")
    return folder / name


def write_variant(
    source: Path, folder: Path, name: str, leads: list[int], sig_names: list[str], units: str = "mV"
) -> Path:
    """Rewrite some leads of a real record under other names/units, in wfdb's own format 16."""
    signal, fields = wfdb.rdsamp(str(source))
    values = signal[:, leads] * (1000.0 if units == "uV" else 1.0)
    folder.mkdir(parents=True, exist_ok=True)
    wfdb.wrsamp(
        name,
        fs=fields["fs"],
        units=[units] * len(leads),
        sig_name=sig_names,
        p_signal=values,
        fmt=["16"] * len(leads),
        adc_gain=[1.0 if units == "uV" else 1000.0] * len(leads),
        baseline=[0] * len(leads),
        write_dir=str(folder),
    )
    return folder / name


def broken_drop(folder: Path) -> dict[str, str]:
    """A generic WFDB drop with one good record and one of each kind of broken record.

    Returns {record name: expected reason fragment} for the broken ones.
    """
    good = copy_record(ptbxl_record("00001"), folder, "good")
    truncated = copy_record(ptbxl_record("00002"), folder, "truncated")
    data = truncated.with_suffix(".dat")
    data.write_bytes(data.read_bytes()[:5000])
    unparsable = copy_record(ptbxl_record("00003"), folder, "unparsable")
    unparsable.with_suffix(".hea").write_text("this is not a WFDB header\n\x00\x01garbage\n")
    mismatch = copy_record(ptbxl_record("00004"), folder, "mismatch")
    hea = mismatch.with_suffix(".hea")
    hea.write_text(hea.read_text().replace("mismatch 12 100 1000", "mismatch 12 100 900", 1))
    signal, fields = wfdb.rdsamp(str(ptbxl_record("00005")))
    signal[:, 7] = np.nan
    wfdb.wrsamp(
        "nanlead",
        fs=fields["fs"],
        units=fields["units"],
        sig_name=fields["sig_name"],
        p_signal=signal,
        fmt=["16"] * 12,
        adc_gain=[1000.0] * 12,
        baseline=[0] * 12,
        write_dir=str(folder),
    )
    unknown = copy_record(
        ptbxl_record("00006" if (SAMPLES / "records100/00000/00006_lr.hea").exists() else "00001"),
        folder,
        "unknownfmt",
    )
    hea = unknown.with_suffix(".hea")
    hea.write_text(hea.read_text().replace("unknownfmt.dat 16 ", "unknownfmt.dat 999 "))
    (folder / "manifest.csv").write_text(
        "record,patient_id,report,labels\n"
        f"{good.name},P001,sinus rhythm normal ECG,NORM\n"
        "missing_record,P002,,\n"
        "../../etc/passwd,P003,,\n"
    )
    return {
        "truncated": "truncated",
        "unparsable": "unparsable header unparsable.hea",
        "mismatch": "sample count disagrees",
        "nanlead": "V2 holds no valid samples",
        "unknownfmt": "unknown storage format 999",
        "missing_record": "missing record",
        "../../etc/passwd": "outside the drop",
    }
