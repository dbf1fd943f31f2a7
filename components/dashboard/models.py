"""Models: the registry table, metrics with CIs across versions, gate verdicts, lineage graph, documents."""

from __future__ import annotations

import base64
import mimetypes
import re
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from components.dashboard.quality import local_path, short_md5
from components.registry import GateDecisionInfo, LineageNode, MetricPointInfo, ModelInfo, Registry

#: node styles of the lineage graph, per node kind: (shape, fill colour)
NODE_STYLES: dict[str, tuple[str, str]] = {
    "model": ("box", "#dbe9f6"),
    "bento": ("component", "#d9f2d9"),
    "dataset_version": ("cylinder", "#fdf1d6"),
    "validation_run": ("note", "#f3e3f7"),
    "gate": ("diamond", "#f8dcdc"),
    "run": ("ellipse", "#eeeeee"),
}
MAX_GRAPH_NODES = 60


def pretraining_recipe(model: ModelInfo) -> str:
    """The recipe a foundation model was pretrained with (its artifact's ``config.json``), else ``""``."""
    if model.kind != "foundation":
        return ""
    directory = local_path(model.artifact_uri)
    if directory is None or not (directory / "config.json").is_file():
        return ""
    from components.models.checkpoint import foundation_meta

    return str(foundation_meta(directory).get("recipe", ""))


def models_frame(models: list[ModelInfo]) -> pd.DataFrame:
    """One row per model: reference, kind, task, stage, gate verdict, a foundation model's pretraining
    recipe, training data, parent, creation."""
    return pd.DataFrame(
        [
            {
                "model": m.ref,
                "kind": m.kind,
                "task": m.task or "",
                "stage": m.stage or "",
                "gate": m.gate_verdict or "",
                "recipe": pretraining_recipe(m),
                "dataset version": f"{m.dataset} {short_md5(m.dataset_version_md5)}"
                if m.dataset_version_md5
                else "",
                "parent": m.parent or "",
                "created": m.created_at,
                "by": m.created_by,
                "sha256": m.sha256[:16],
            }
            for m in models
        ]
    )


def metrics_frame(points: list[MetricPointInfo]) -> pd.DataFrame:
    """Metric history as a table: one row per model version and metric, with its 95 % CI."""
    return pd.DataFrame(
        [
            {
                "model": p.model,
                "version": p.version,
                "stage": p.stage or "",
                "split": p.split,
                "cohort": p.cohort,
                "metric": p.metric,
                "value": p.value,
                "ci low": p.ci_low,
                "ci high": p.ci_high,
                "n": p.n,
                "series": f"{p.metric} ({p.split}/{p.cohort})",
            }
            for p in points
        ]
    )


def gates_frame(gates: list[GateDecisionInfo]) -> pd.DataFrame:
    """Gate decisions of a model, newest first, each reason on its own line."""
    return pd.DataFrame(
        [
            {
                "decided at": g.decided_at,
                "policy": g.policy,
                "verdict": g.verdict,
                "reasons": "\n".join(g.reasons) if g.reasons else "(none)",
                "by": g.decided_by,
                "counts": i == 0,
            }
            for i, g in enumerate(gates)
        ]
    )


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _node_label(node: LineageNode) -> str:
    if node.kind == "run":
        attrs = node.attrs
        return f"run #{node.id} {attrs.get('kind')}\n{attrs.get('status')}"
    if node.kind == "model":
        stage = f"\n[{node.attrs['stage']}]" if node.attrs.get("stage") else ""
        return f"{node.attrs['name']}@{node.attrs['version']}\n{node.attrs['kind']}{stage}"
    if node.kind == "dataset_version":
        version = short_md5(str(node.attrs["dvc_md5"]))
        return f"{node.attrs['dataset']} {version}\n{node.attrs['n_records']:,} records"
    if node.kind == "bento":
        return f"bento\n{node.attrs['tag']}"
    return node.label


def lineage_dot(
    model_id: int, up: LineageNode, down: LineageNode, *, max_nodes: int = MAX_GRAPH_NODES
) -> str:
    """A Graphviz DOT graph of where a model came from (``up``) and what was built on it (``down``).

    Edges point from what was used to what it produced. At most ``max_nodes`` nodes are drawn (nearest
    first); the rest are summarised in one ``+N more`` node per side.
    """
    nodes: dict[tuple[str, int], LineageNode] = {}
    edges: set[tuple[tuple[str, int], tuple[str, int]]] = set()
    hidden = {"up": 0, "down": 0}

    def visit(root: LineageNode, side: str) -> None:
        queue = deque([root])
        while queue:
            node = queue.popleft()
            key = (node.kind, node.id)
            if key not in nodes and len(nodes) >= max_nodes:
                hidden[side] += len(node.walk())
                continue
            nodes[key] = node
            for child in node.children:
                child_key = (child.kind, child.id)
                queue.append(child)
                edges.add((child_key, key) if side == "up" else (key, child_key))

    visit(up, "up")
    visit(down, "down")
    lines = [
        "digraph lineage {",
        "  rankdir=LR;",
        '  node [fontname="Helvetica", fontsize=10, style=filled];',
        '  edge [color="#666666"];',
    ]
    for (kind, node_id), node in nodes.items():
        shape, fill = NODE_STYLES.get(kind, ("box", "#ffffff"))
        extra = ', penwidth=2.5, color="#1f4e79"' if (kind, node_id) == ("model", model_id) else ""
        lines.append(
            f"  {_quote(f'{kind}:{node_id}')} [label={_quote(_node_label(node))}, shape={shape}, "
            f'fillcolor="{fill}"{extra}];'
        )
    for (a_kind, a_id), (b_kind, b_id) in sorted(edges):
        if (a_kind, a_id) in nodes and (b_kind, b_id) in nodes:
            lines.append(f"  {_quote(f'{a_kind}:{a_id}')} -> {_quote(f'{b_kind}:{b_id}')};")
    for side, count in hidden.items():
        if count:
            name = _quote(f"more:{side}")
            lines.append(f'  {name} [label="+{count} more", shape=plaintext, style=""];')
            anchor = _quote(f"model:{model_id}")
            lines.append(
                f"  {name} -> {anchor} [style=dashed];"
                if side == "up"
                else f"  {anchor} -> {name} [style=dashed];"
            )
    lines.append("}")
    return "\n".join(lines)


@dataclass(frozen=True)
class ModelDocument:
    """A document about a model: its evaluation report, model card or evaluation results, where it lives."""

    kind: str
    title: str
    path: Path


#: what the evaluation stage writes into a model's report directory, and what a model directory may ship
DOCUMENT_PATTERNS: tuple[tuple[str, str], ...] = (
    ("evaluation report", "index.html"),
    ("evaluation report", "*report*.html"),
    ("model card", "model_card*"),
    ("model card", "MODEL_CARD*"),
    ("evaluation results", "evaluation.json"),
)
REPORT_DIR_PARAMETER = "report_dir"


def document_directories(registry: Registry, model: ModelInfo) -> list[Path]:
    """Where a model's documents are: the report directories its evaluation runs recorded (the runs of its
    gate decisions, newest first), then its artifact directory. Only directories on this machine."""
    candidates: list[Path] = []
    for run_id in dict.fromkeys(g.run_id for g in registry.gate_decisions(model.id) if g.run_id is not None):
        report_dir = registry.get_run(run_id).parameters.get(REPORT_DIR_PARAMETER)
        if isinstance(report_dir, str) and (path := local_path(report_dir)) is not None:
            candidates.append(path)
    artifact = local_path(model.artifact_uri)
    if artifact is not None:
        candidates.append(artifact)
    return [p for p in dict.fromkeys(candidates) if p.is_dir()]


def model_documents(directories: list[Path]) -> list[ModelDocument]:
    """The evaluation reports, model cards and evaluation results in those directories (not recursive)."""
    found: dict[Path, ModelDocument] = {}
    for directory in directories:
        for kind, pattern in DOCUMENT_PATTERNS:
            for path in sorted(directory.glob(pattern)):
                if path.is_file() and path not in found:
                    found[path] = ModelDocument(kind, path.name, path)
    return list(found.values())


_IMAGE_SRC = re.compile(r"""src=(['"])([^'"/]+\.(?:png|svg|jpe?g))\1""")


def inline_images(html_file: Path) -> str:
    """An HTML report with the images next to it embedded as data URIs, to show it in place."""
    html = html_file.read_text(encoding="utf-8", errors="replace")

    def embed(match: re.Match[str]) -> str:
        image = html_file.parent / match.group(2)
        if not image.is_file():
            return match.group(0)
        mime = mimetypes.guess_type(image.name)[0] or "application/octet-stream"
        data = base64.b64encode(image.read_bytes()).decode("ascii")
        return f"src={match.group(1)}data:{mime};base64,{data}{match.group(1)}"

    return _IMAGE_SRC.sub(embed, html)
