"""12-lead ECG plots in the standard paper layout (25 mm/s, 10 mm/mV, 1 mm and 5 mm grid).

Three rows of four 2.5 s columns (I aVR V1 V4 / II aVL V2 V5 / III aVF V3 V6) and a 10 s rhythm
strip of lead II. The grid is rendered once; per record only the traces and labels are drawn onto a
copy of it (matplotlib blitting), which keeps plotting hundreds of quarantined records fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
LAYOUT = (("I", "aVR", "V1", "V4"), ("II", "aVL", "V2", "V5"), ("III", "aVF", "V3", "V6"))
RHYTHM_LEAD = "II"
ROW_MV = 3.0  # vertical room per row (mV)
MM_PER_S = 25.0
MM_PER_MV = 10.0
MM_PER_INCH = 25.4


def _centred(y: np.ndarray) -> np.ndarray:
    """The trace around its median, as an electrocardiograph's baseline restoration shows it."""
    y = y.astype(float)
    finite = np.isfinite(y)
    return y - float(np.median(y[finite])) if finite.any() else y


class EcgPlotter:
    """Draws records of one duration into PNG files, reusing one matplotlib figure."""

    def __init__(self, duration_s: float, dpi: int = 80):
        self.duration_s = duration_s
        self.column_s = duration_s / 4
        n_rows = len(LAYOUT) + 1
        height_mv = n_rows * ROW_MV
        width_in = duration_s * MM_PER_S / MM_PER_INCH + 0.4
        height_in = height_mv * MM_PER_MV / MM_PER_INCH + 0.7
        self.fig = plt.figure(figsize=(width_in, height_in), dpi=dpi)
        self.ax = self.fig.add_axes((0.02, 0.02, 0.96, 0.86))
        ax = self.ax
        ax.set_xlim(0, duration_s)
        ax.set_ylim(-height_mv, 0)
        ax.set_aspect(MM_PER_MV / MM_PER_S)
        ax.set_xticks(np.arange(0, duration_s + 1e-9, 0.2))
        ax.set_xticks(np.arange(0, duration_s + 1e-9, 0.04), minor=True)
        ax.set_yticks(np.arange(-height_mv, 1e-9, 0.5))
        ax.set_yticks(np.arange(-height_mv, 1e-9, 0.1), minor=True)
        ax.grid(which="major", color="#e8a0a0", linewidth=0.6)
        ax.grid(which="minor", color="#f6d8d8", linewidth=0.3)
        ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
        for spine in ax.spines.values():
            spine.set_visible(False)
        self.slots: dict[tuple[str, int], tuple[float, float]] = {}
        for r, row in enumerate(LAYOUT):
            for c, lead in enumerate(row):
                self.slots[(lead, r)] = (c * self.column_s, -(r + 0.5) * ROW_MV)
        self.rhythm_offset = -(len(LAYOUT) + 0.5) * ROW_MV
        self.lines = {key: ax.plot([], [], color="black", linewidth=0.7)[0] for key in self.slots}
        self.rhythm = ax.plot([], [], color="black", linewidth=0.7)[0]
        for (lead, _), (x0, y0) in self.slots.items():
            ax.text(x0 + 0.05, y0 + 1.0, lead, fontsize=8)
        ax.text(0.05, self.rhythm_offset + 1.0, RHYTHM_LEAD, fontsize=8)
        flag_style: dict[str, Any] = {
            "fontsize": 8,
            "color": "red",
            "fontweight": "bold",
            "bbox": {"facecolor": "white", "edgecolor": "red", "pad": 1.0},
        }
        self.flags = {
            key: ax.text(x0 + 0.05, y0 + 1.0, key[0], **flag_style) for key, (x0, y0) in self.slots.items()
        }
        self.rhythm_flag = ax.text(0.05, self.rhythm_offset + 1.0, RHYTHM_LEAD, **flag_style)
        self.absent = {
            key: ax.text(x0 + 0.35, y0 + 1.0, "(absent)", fontsize=8, color="gray")
            for key, (x0, y0) in self.slots.items()
        }
        for c in range(1, 4):
            ax.axvline(c * self.column_s, ymin=1 / n_rows, color="black", linewidth=0.5)
        calibration_base = self.rhythm_offset
        ax.plot(  # 1 mV, 0.2 s calibration pulse at the start of the rhythm strip
            [0.0, 0.0, 0.2, 0.2],
            [calibration_base, calibration_base + 1.0, calibration_base + 1.0, calibration_base],
            color="black",
            linewidth=0.7,
        )
        self.title = self.fig.text(0.02, 0.97, "", fontsize=9, va="top", family="monospace")
        self.traces = [*self.lines.values(), self.rhythm]
        for artist in [
            *self.traces,
            *self.flags.values(),
            self.rhythm_flag,
            *self.absent.values(),
            self.title,
        ]:
            artist.set_animated(True)
        self.fig.canvas.draw()
        self.background = self.fig.canvas.copy_from_bbox(self.fig.bbox)  # type: ignore[attr-defined]

    def draw(
        self,
        signal: np.ndarray,
        fs: float,
        lead_mask: Sequence[bool],
        path: Path,
        title: str = "",
        flagged_leads: Sequence[str] = (),
    ) -> Path:
        """Write ``signal`` ``(12, T)`` (mV at ``fs``) as a PNG; absent leads labelled, flagged ones red."""
        t = np.arange(signal.shape[-1]) / fs
        half = ROW_MV / 2 - 0.05
        clipped = False
        for (lead, _), line in self.lines.items():
            x0, y0 = self.slots[(lead, _)]
            i = LEADS.index(lead)
            sel = (t >= x0) & (t < x0 + self.column_s)
            y = _centred(signal[i, sel])
            clipped |= bool(np.nanmax(np.abs(y), initial=0.0) > half)
            line.set_data(t[sel], np.clip(y, -half, half) + y0)
        ii = LEADS.index(RHYTHM_LEAD)
        sel = t < self.duration_s
        self.rhythm.set_data(t[sel], np.clip(_centred(signal[ii, sel]), -half, half) + self.rhythm_offset)
        note = "   [amplitudes clipped for display]" if clipped else ""
        self.title.set_text(f"{title}{note}\n25 mm/s  10 mm/mV  {fs:g} Hz")
        canvas = self.fig.canvas
        canvas.restore_region(self.background)  # type: ignore[attr-defined]
        for artist in self.traces:
            self.ax.draw_artist(artist)
        for (lead, row), text in self.flags.items():
            if lead in flagged_leads:
                self.ax.draw_artist(text)
            if not lead_mask[LEADS.index(lead)]:
                self.ax.draw_artist(self.absent[(lead, row)])
        if RHYTHM_LEAD in flagged_leads:
            self.ax.draw_artist(self.rhythm_flag)
        self.fig.draw_artist(self.title)
        path.parent.mkdir(parents=True, exist_ok=True)
        rgba = np.asarray(canvas.buffer_rgba())  # type: ignore[attr-defined]
        Image.fromarray(rgba[..., :3]).save(path, format="PNG", compress_level=1)
        return path

    def close(self) -> None:
        plt.close(self.fig)
