"""Draw the mannequin figure of docs/body.md: ``python docs/make_body_figures.py``.

Writes ``docs/img/mannequin.png``: the built-in mannequin at rest, with betas, and in a walking
pose, from the front and the side, posed by smplx through :class:`BodyModel`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from datamodules.synthetic.filmstrip import walking_rotmats
from str_lightning.body import BodyModel
from str_lightning.body.render import render_views

OUT = Path(__file__).resolve().parent / "img" / "mannequin.png"


def main() -> Path:
    body = BodyModel("mannequin")
    rest = torch.eye(3).expand(1, 24, 3, 3)
    walk = walking_rotmats(8)[0:1]
    rotmat = torch.cat((rest, rest, walk))
    betas = torch.zeros(3, 10)
    betas[1, :2] = torch.tensor((2.0, 2.0))  # taller and broader
    with torch.no_grad():
        vertices = body(rotmat, betas).vertices.numpy()
    titles = ["rest, betas = 0", "betas[0:2] = 2", "walking"]
    return render_views(list(vertices), body.faces, titles, OUT, panel_size=3.4)


if __name__ == "__main__":
    print(main())
