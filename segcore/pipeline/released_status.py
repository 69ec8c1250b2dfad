"""What a released-net stage writes for a net the params leave out: a record saying so, and no scores.

Apart from segcore.pipeline.released so that such a stage imports neither torch nor the nets: eleven of
them run in every smoke pipeline, and each then ends in a tenth of a second instead of two or three.
"""

from __future__ import annotations

from pathlib import Path

from segcore.core import atomic

STATUS = "status.json"  # in the model folder: what the stage did (converted, or not selected)


def not_selected(view: dict, model_dir: Path, metrics_out: Path, eval_dir: Path) -> None:
    """The outputs of a net the params leave out (its view: segcore.pipeline.views.released)."""
    status = {"net": view["net"], "selected": False,
              "why": f"not in released.nets.{view['source']} (params.yaml)"}
    atomic.build_dir(Path(model_dir), lambda tmp: atomic.write_json(tmp / STATUS, status))
    atomic.build_dir(Path(eval_dir), lambda tmp: atomic.write_json(tmp / "record.json", {**status, "splits": {}}))
    atomic.write_json(Path(metrics_out), {})
