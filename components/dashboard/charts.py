"""Charts of the dashboard as Vega-Lite specs built with Altair (rendered by the browser, no network)."""

from __future__ import annotations

import altair as alt
import pandas as pd


def metric_ci_chart(metrics: pd.DataFrame) -> alt.LayerChart | alt.FacetChart:
    """Metric values per model version with 95 % CI bars, one colour per metric/split/cohort series."""
    base = alt.Chart(metrics).encode(
        x=alt.X("version:O", title="model version"),
        color=alt.Color("series:N", title="metric (split/cohort)"),
        tooltip=["model", "stage", "metric", "split", "cohort", "value", "ci low", "ci high", "n"],
    )
    bars = base.mark_errorbar(ticks=True).encode(
        y=alt.Y("ci low:Q", title="value (95 % CI)", scale=alt.Scale(zero=False)), y2="ci high:Q"
    )
    points = base.mark_line(point=True).encode(y="value:Q")
    return alt.layer(bars, points).properties(height=320)


def label_shift_chart(shift: pd.DataFrame, top: int = 20) -> alt.Chart:
    """Share of records per label, this version next to the previous one (the ``top`` largest changes)."""
    head = shift.head(top)
    columns = {"share %": "this version"}
    if "previous share %" in head:
        columns["previous share %"] = "previous version"
    long = head.melt(
        id_vars=["label", "meaning"], value_vars=list(columns), var_name="version", value_name="share"
    )
    long["version"] = long["version"].map(columns)
    return (
        alt.Chart(long)
        .mark_bar()
        .encode(
            y=alt.Y("label:N", sort=head["label"].tolist(), title=None),
            x=alt.X("share:Q", title="records with the label (%)"),
            yOffset="version:N",
            color=alt.Color("version:N", title=None),
            tooltip=["label", "meaning", "version", alt.Tooltip("share:Q", format=".2f")],
        )
        .properties(height=max(200, 26 * len(head)))
    )


def expectation_trend_chart(outcomes: pd.DataFrame) -> alt.Chart:
    """Failing-record percentage across validation runs of the record-level expectations that failed in
    at least one of them (the others stay at zero)."""
    data = outcomes.dropna(subset=["unexpected %"])
    data = data[data["expectation"].isin(data.loc[~data["passed"], "expectation"])]
    return (
        alt.Chart(data)
        .mark_line(point=True)
        .encode(
            x=alt.X("run:O", title="validation run"),
            y=alt.Y("unexpected %:Q", title="records failing (%)"),
            color=alt.Color("expectation:N"),
            tooltip=["run", "version", "expectation", "severity", "unexpected", "checked", "passed"],
        )
        .properties(height=280)
    )


#: p-values below this are drawn at it (a KS p-value can underflow to 0, which a log scale cannot place)
P_FLOOR = 1e-16


def drift_chart(series: pd.DataFrame, alpha: float | None = None) -> alt.LayerChart | alt.FacetChart:
    """P-values of the drift tests over time (log scale), one line per feature group and one for the
    embedding; breaches as squares; the significance level each check is held to as a dashed rule."""
    data = series.assign(shown=series["p"].clip(lower=P_FLOOR))
    base = alt.Chart(data).encode(
        x=alt.X("window end:T", title="window end"),
        y=alt.Y("shown:Q", title="p-value (smallest adjusted, per group)", scale=alt.Scale(type="log")),
        color=alt.Color("series:N", title="group"),
        detail="task:N",
        tooltip=["run", "window end", "task", "model", "series", alt.Tooltip("p:Q", format=".3g"), "breach"],
    )
    layers: list[alt.Chart] = [
        base.mark_line(),
        base.mark_point(filled=True, size=80).encode(
            shape=alt.Shape(
                "breach:N", title="breach", scale=alt.Scale(domain=[False, True], range=["circle", "square"])
            )
        ),
    ]
    if alpha is not None:
        rule = pd.DataFrame({"alpha": [alpha], "label": [f"α per check = {alpha:.3g}"]})
        dashed = alt.Chart(rule).mark_rule(strokeDash=[6, 4], color="firebrick")
        layers.append(dashed.encode(y="alpha:Q", tooltip=["label"]))
    return alt.layer(*layers).properties(height=320)


def volume_chart(volume: pd.DataFrame) -> alt.Chart:
    """Prediction-log entries per day (UTC), stacked by model and source."""
    chart: alt.Chart = (
        alt.Chart(volume)
        .transform_calculate(series="datum.model_ref + ' · ' + datum.source")
        .mark_bar()
        .encode(
            x=alt.X("date:O", title="day (UTC)"),
            y=alt.Y("sum(n):Q", title="predictions logged"),
            color=alt.Color("series:N", title="model · source"),
            tooltip=["date", "model_ref", "source", "n"],
        )
        .properties(height=260)
    )
    return chart
