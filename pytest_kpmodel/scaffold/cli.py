"""``kpmodel init CARD [DIR]``: scaffold an acceptance spec for CARD from a measured first run.

Exit codes: 0 written, 2 usage error (a file that exists - named, nothing written - or a card,
dataset or model that does not load).
"""

from __future__ import annotations

import time
from pathlib import Path

from ..errors import KpModelError


class SpecExists(KpModelError):
    """A file the spec would write is already there: nothing is written."""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "init",
        help="scaffold an acceptance spec for a card from a measured first run",
        description="Measure CARD's model once (accuracy, speed, flip consistency, through the "
        "plugin's own session) and write DIR: one test file per concern, each threshold the "
        "measured value minus --margin with a comment saying where it came from, and a "
        "pytest.ini. Never overwrites a file. Write the card first with `kpmodel card init`.",
    )
    p.add_argument("card", type=Path, metavar="CARD", help="kpmodel.toml or its folder")
    p.add_argument("out", type=Path, nargs="?", default=Path("specs"), metavar="DIR",
                   help="the spec folder to create (default: specs)")  # fmt: skip
    p.add_argument("--margin", type=float, default=0.02,
                   help="accuracy thresholds: measured AP minus this (absolute; default 0.02)")  # fmt: skip
    p.add_argument("--speed-margin", type=float, default=0.5,
                   help="speed gates: FPS x (1 - this), latency and VRAM x (1 + this) "
                   "(default 0.5: CI machines vary)")  # fmt: skip
    p.add_argument("--dataset", type=Path, metavar="PATH",
                   help="COCO keypoint annotations (default: the card's [dataset])")  # fmt: skip
    p.add_argument("--device", metavar="DEVICE", help="cpu, cuda or cuda:N (default: cuda when "
                   "available)")  # fmt: skip
    p.add_argument("--max-images", type=int, metavar="N", help="measure on the first N images")
    p.add_argument("--trusted-key", type=Path, metavar="PUBLIC",
                   help="the vendor's public key: the spec then requires a verified signature")  # fmt: skip
    p.add_argument("--allow-code", action="store_true",
                   help="permit formats that run the model's own code (python, torchscript)")  # fmt: skip
    p.add_argument("--no-speed", action="store_true", help="write no speed gates (no timing)")
    p.set_defaults(func=cmd_init)


def cmd_init(args) -> int:
    from ..card import load_card, resolve_card_path
    from .measure import measure
    from .spec_files import FILES, Margins, SpecWriter

    try:
        margins = Margins(args.margin, args.speed_margin)
    except ValueError as exc:
        raise KpModelError(str(exc)) from None
    out: Path = args.out
    existing = [str(out / name) for name in FILES if (out / name).exists()]
    if existing:  # checked before measuring: a refusal costs nothing
        raise SpecExists(
            f"{', '.join(existing)} already exist(s); kpmodel init never overwrites a file "
            "(choose another DIR or remove them)"
        )
    if args.trusted_key is not None and not args.trusted_key.is_file():
        raise KpModelError(f"--trusted-key {args.trusted_key}: no such file")
    start = time.perf_counter()
    card = load_card(resolve_card_path(args.card))
    print(f"kpmodel init: measuring {card.model.name} (accuracy, speed, flip consistency)...")
    run = measure(
        card.path, dataset=args.dataset, device=args.device, max_images=args.max_images,
        allow_code=args.allow_code, speed=not args.no_speed,
        # the spec's own prediction cache: its first pytest run reuses these predictions
        cache_dir=out / ".pytest_cache" / "d" / "kpmodel" / "predictions",
    )  # fmt: skip
    writer = SpecWriter(card, run, out, margins, trusted_key=args.trusted_key,
                        dataset=args.dataset, max_images=args.max_images)  # fmt: skip
    files = writer.files()
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        with open(out / name, "x", encoding="utf-8") as f:  # "x": never overwrite, even racing
            f.write(text)
    for key, why in sorted(run.unmeasured.items()):
        print(f"  not measured: {key}: {why}")
    print(f"wrote {len(files)} files to {out} in {time.perf_counter() - start:.1f} s "
          f"(measured in {run.seconds:.1f} s on {run.device})")  # fmt: skip
    print(f"next: pytest {out}   (CI templates: docs/ci/)")
    return 0
