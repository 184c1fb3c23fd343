"""``kpmodel card init | sign | verify | diff | keygen``: provenance work outside pytest.

Exit codes: 0 ok, 1 the check found a problem (verification failed), 2 usage error (a missing or
unreadable file, a file that would be overwritten without ``--force``).

Each command is a thin layer over the package: ``card init`` -> :mod:`.card_init`, ``sign`` ->
:mod:`.signing`, ``verify`` -> :mod:`.check` (with :mod:`.verify`), ``diff`` -> :mod:`.diff`,
``keygen`` -> :mod:`.keys`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..card import load_card, resolve_card_path
from ..errors import KpModelError
from .card_init import init_card
from .check import check_provenance
from .diff import diff_cards
from .keys import generate_keypair, load_public_key
from .signing import sign_card


class UsageError(KpModelError):
    """Bad input to a ``kpmodel`` command: exit code 2."""


# -- registration --------------------------------------------------------------------------------
def register(subparsers) -> None:
    card = subparsers.add_parser("card", help="model card tools (card init CHECKPOINT)")
    card_sub = card.add_subparsers(dest="card_command", metavar="ACTION", required=True)
    init = card_sub.add_parser(
        "init",
        help="write a starter kpmodel.toml beside a checkpoint",
        description="Write a starter kpmodel.toml beside CHECKPOINT: format detected by "
        "content, sha256 pinned, architecture guessed (marked TODO).",
    )
    init.add_argument("checkpoint", type=Path, metavar="CHECKPOINT")
    init.add_argument("--name", help="model name (default: the checkpoint's file stem)")
    init.add_argument("--force", action="store_true", help="replace an existing kpmodel.toml")
    init.set_defaults(func=cmd_card_init)

    sign = subparsers.add_parser(
        "sign",
        help="sign a card and the files it names (Ed25519)",
        description="Sign CARD and every file it names with an Ed25519 private key. Adds "
        'signature = "<weights stem>.sig" under [provenance] when the card names none.',
    )
    sign.add_argument("card", type=Path, metavar="CARD", help="kpmodel.toml or its folder")
    sign.add_argument("--key", required=True, type=Path, metavar="PRIVATE", help="private key")
    sign.add_argument("--force", action="store_true", help="replace an existing signature file")
    sign.set_defaults(func=cmd_sign)

    verify = subparsers.add_parser(
        "verify",
        help="verify a card's signature, digests and files offline",
        description="Verify CARD offline: the signature against trusted public keys, the "
        "weights' sha256, and that the named files are regular files inside the card's folder.",
    )
    verify.add_argument("card", type=Path, metavar="CARD", help="kpmodel.toml or its folder")
    verify.add_argument(
        "--key", action="append", required=True, type=Path, metavar="PUBLIC",
        help="a trusted public key (repeatable)",
    )  # fmt: skip
    verify.add_argument(
        "--source", action="append", metavar="PATTERN",
        help="allowed provenance.source pattern, e.g. 'https://models.example.org/*' (repeatable)",
    )  # fmt: skip
    verify.add_argument("--exact", action="store_true", help="fail on files the card does not name")
    verify.add_argument("--base", type=Path, metavar="CARD", help="the expected base model card")
    verify.set_defaults(func=cmd_verify)

    diff = subparsers.add_parser(
        "diff",
        help="what changed in a model against its base",
        description="Compare CARD_A's model with the base CARD_B: tensors added, removed, "
        "reshaped, per-layer relative change, frozen layers, parameters, FLOPs.",
    )
    diff.add_argument("card_a", type=Path, metavar="CARD_A", help="the (modified) model")
    diff.add_argument("card_b", type=Path, metavar="CARD_B", help="the base model")
    diff.add_argument("--json", metavar="FILE", help="also write the diff as JSON ('-': stdout)")
    diff.add_argument(
        "--allow-code", action="store_true",
        help="permit loading formats that run the model's code (torchscript, python)",
    )  # fmt: skip
    diff.add_argument("--no-flops", action="store_true", help="skip the FLOP count")
    diff.add_argument("--top", type=int, default=8, metavar="N", help="rows per list (default 8)")
    diff.set_defaults(func=cmd_diff)

    keygen = subparsers.add_parser(
        "keygen",
        help="make an Ed25519 key pair for kpmodel sign",
        description="Write an Ed25519 private key to OUT (mode 0600) and its public key to "
        "OUT.pub. Keep the private key secret; hand out the .pub.",
    )
    keygen.add_argument("out", type=Path, metavar="OUT")
    keygen.add_argument("--force", action="store_true", help="replace existing key files")
    keygen.set_defaults(func=cmd_keygen)


# -- commands ------------------------------------------------------------------------------------
def cmd_card_init(args) -> int:
    path = init_card(args.checkpoint, name=args.name, force=args.force)
    print(f"wrote {path}")
    print("review every TODO in it, then: kpmodel sign " + str(path) + " --key PRIVATE")
    return 0


def cmd_sign(args) -> int:
    _require_file(args.key, "private key")
    sig = sign_card(args.card, args.key, force=args.force)
    print(f"signed {args.card} -> {sig}")
    return 0


def cmd_verify(args) -> int:
    card_path = resolve_card_path(args.card)
    for k in args.key:
        load_public_key(k)  # a missing or unreadable key is a usage error (2), not a finding
    if args.base is not None:
        resolve_card_path(args.base)
    card = load_card(card_path, check_files=False)
    result = check_provenance(
        card,
        sha256=True,
        signature=True,
        trusted_keys=args.key,
        sources=args.source,
        base=args.base,
        files="exact" if args.exact else "named",
    )
    for f in result.findings:
        label = {"fail": "FAIL", "warn": "warn", "info": "ok  "}[f.severity]
        if f.severity == "info" and f.check != "provenance.signature":
            label = "info"
        print(f"{label} {f.check}: {f.message}")
    if result.passed:
        print(f"verified: {card_path}")
        return 0
    print(f"verification failed: {card_path}", file=sys.stderr)
    return 1


def cmd_diff(args) -> int:
    if args.top < 1:
        raise UsageError("--top must be >= 1")
    d = diff_cards(args.card_a, args.card_b, allow_code=args.allow_code, flops=not args.no_flops)
    if args.json == "-":
        print(json.dumps(d.to_json(), indent=2))
        return 0
    print(d.render(top=args.top))
    if args.json:
        Path(args.json).write_text(json.dumps(d.to_json(), indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


def cmd_keygen(args) -> int:
    private, public = generate_keypair(args.out, force=args.force)
    print(f"private key: {private}  (keep secret; kpmodel sign --key {private})")
    print(f"public key:  {public}  (share; kpmodel verify --key {public})")
    return 0


def _require_file(path: Path, what: str) -> None:
    if not path.is_file():
        raise UsageError(f"{path}: {what} not found")
