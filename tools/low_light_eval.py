"""What the low-light fine-tuning bought: COCO metrics of model cards on a darkened copy of a set.

    .venv/bin/python tools/low_light_eval.py example_suite/models/kp-tiny-base/kpmodel.toml \\
        example_suite/models/kp-tiny-mod/kpmodel.toml

Each image of ``--val`` is darkened by ``train.low_light`` (the training augmentation) with a
generator seeded by the image id, so every model sees the same dark images; metrics by
pycocotools' COCOeval. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

_TOOLS = Path(__file__).resolve().parent
if str(_TOOLS) not in sys.path:
    sys.path.insert(0, str(_TOOLS))

import train  # noqa: E402


def darken(image, image_id: int):
    import torch

    return train.low_light(image, torch.Generator().manual_seed(int(image_id)))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cards", nargs="+", type=Path)
    ap.add_argument(
        "--val", type=Path, default=train._ROOT / "example_suite/data/val/annotations.json"
    )
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)

    from safetensors.torch import load_file

    from pytest_kpmodel.card import load_card

    print("| model | box AP | box AP50 | kp AP | kp AP50 |")
    print("|---|---|---|---|---|")
    for card in args.cards:
        weights, kwargs = train._card_weights(card)
        model = train.build_model(kwargs)
        model.load_state_dict(load_file(str(weights)))
        results, _ = train.predict_coco(model, args.val, threads=args.threads, transform=darken)
        m = train.coco_metrics(args.val, results)
        name = load_card(card).model.name if card.suffix == ".toml" or card.is_dir() else card.stem
        print(
            f"| {name} | {m['box_ap']:.3f} | {m['box_ap50']:.3f} | {m['kp_ap']:.3f} | {m['kp_ap50']:.3f} |"
        )


if __name__ == "__main__":
    main()
