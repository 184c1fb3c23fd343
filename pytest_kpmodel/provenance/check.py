"""``kp_provenance``: is this the model the vendor published, unaltered, signed, from a trusted source?

``check_provenance(card, ...)`` returns a ``CheckResult`` named ``kp_provenance`` whose findings
use these check names:

``provenance.files``
    Every file the card names (``ModelCard.named_files()``: weights, signature, license text) is
    present and a regular file; neither it nor any folder between it and the card's folder is a
    symlink (``lstat`` on the path *as written in the card*, so ``sub/../w`` checks ``sub``); its
    real path stays inside the card's folder. With ``files="exact"`` the folder holds nothing else
    (the card, the named files and the signature are expected; every other file, symlink or
    sub-folder entry is listed). A model whose ``python`` factory module sits beside the card
    therefore needs ``files="named"``.
``provenance.sha256``
    The weights file's full sha256 equals the card's ``[model.sha256]``; a card without one fails.
``provenance.signature``
    The signature file verifies offline with one of ``trusted_keys`` and covers the card and every
    file it names (see :mod:`.signing` and :mod:`.verify`). With ``signature=True`` a missing
    signature, a missing key list or a failed verification fails; with ``signature=False`` a
    missing signature is an info finding "unsigned", and a signature that is present is still
    verified when keys are given (a failure is then a warning).
``provenance.source``
    ``[provenance] source`` matches one of ``sources`` (fnmatch patterns). For URL patterns
    (``scheme://host/path``) scheme, host and path are matched separately, so the ``*`` in
    ``https://*.example.org/*`` never reaches across the host into the path; URLs with a user
    part (``https://a@b/``) never match. ``sources=None`` skips the check; a card without a source
    fails when sources are given.
``provenance.base``
    With ``base=`` (a card or its folder): the card's ``[provenance] base`` must resolve to that
    same card file, or name a card whose weights have the digest the spec's base card pins
    (``[model.sha256]``; the base's actual weights digest when it pins none) — the same base model
    kept at another path. Weights byte-identical to the base's give a warning (nothing modified).

Digests are computed once per call (pass ``digests={}`` to share them across calls). Relative
``trusted_keys`` and ``base`` paths are taken relative to ``root`` (default: the working folder).
"""

from __future__ import annotations

import fnmatch
import os
import stat
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..card import ModelCard, load_card, resolve_card_path
from ..errors import KpModelError
from ..findings import CheckResult, Finding
from .digests import cached_sha256
from .keys import SigningError
from .paths import relative_posix, symlinks_on_path
from .verify import verify_card

FILES_MODES = ("named", "exact")
_KEY_SECTIONS = {
    "model.weights": ("model", "weights"),
    "provenance.signature": ("provenance", "signature"),
    "license.file": ("license", "file"),
}


def check_provenance(
    card: ModelCard | str | Path,
    *,
    sha256: bool = True,
    signature: bool = True,
    trusted_keys: Iterable[str | Path | bytes] | str | Path = (),
    sources: Iterable[str] | str | None = None,
    base: str | Path | None = None,
    files: str = "named",
    root: str | Path | None = None,
    digests: dict[Path, str] | None = None,
) -> CheckResult:
    """Evaluate ``kp_provenance`` for ``card``; every problem becomes one finding."""
    if files not in FILES_MODES:
        raise KpModelError(f"kp_provenance(files={files!r}): use 'named' or 'exact'")
    if not isinstance(card, ModelCard):
        card = load_card(card, check_files=False)
    root_dir = Path(root) if root is not None else Path.cwd()
    if isinstance(trusted_keys, str | Path | bytes):
        trusted_keys = [trusted_keys]
    keys = [_rooted(k, root_dir) for k in trusted_keys]
    if isinstance(sources, str):
        sources = [sources]
    digests = {} if digests is None else digests
    findings: list[Finding] = []
    findings += check_files(card, exact=files == "exact")
    if sha256:
        findings += check_sha256(card, digests)
    findings += check_signature(card, required=signature, trusted_keys=keys, digests=digests)
    if sources is not None:
        findings += check_source(card, list(sources))
    if base is not None:
        findings += check_base(card, _rooted(base, root_dir), digests)
    return CheckResult("kp_provenance", findings)


# -- files ---------------------------------------------------------------------------------------
def written_paths(card: ModelCard) -> dict[str, tuple[str, Path]]:
    """Named files by card key -> (the value as written in the card, that path unnormalised)."""
    try:
        raw = tomllib.loads(card.path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        raw = {}
    out = {}
    for key, path in card.named_files().items():
        section, name = _KEY_SECTIONS.get(key, (None, None))
        value = raw.get(section, {}).get(name) if section else None
        if isinstance(value, str):
            p = Path(value).expanduser()
            out[key] = (value, p if p.is_absolute() else card.folder / p)
        else:
            out[key] = (relative_posix(path, card.folder), path)
    return out


def check_files(card: ModelCard, *, exact: bool = False) -> list[Finding]:
    findings = []
    for key, (value, written) in written_paths(card).items():
        findings += _file_findings(card, key, value, written)
    if exact:
        extra = unexpected_files(card)
        if extra:
            shown = ", ".join(extra[:10]) + (
                f" and {len(extra) - 10} more" if len(extra) > 10 else ""
            )
            findings.append(
                Finding(
                    "provenance.files",
                    f"{len(extra)} unexpected file(s) in the model folder {card.folder} "
                    f"(files='exact' allows only the card and the files it names): {shown}",
                    details={"unexpected": extra},
                )
            )
    return findings


def _file_findings(card: ModelCard, key: str, value: str, written: Path) -> list[Finding]:
    """One named file: no symlink on its way, present, regular, inside the card's folder."""
    folder = card.folder
    where = f"{value!r} named by [{key}]"
    details: dict[str, Any] = {"key": key, "path": str(written)}
    findings = []
    links = symlinks_on_path(written, folder)
    if links:
        target = os.path.realpath(links[0])
        what = "is a symlink" if links[0] == written else f"passes through symlink {links[0]}"
        findings.append(
            Finding(
                "provenance.files",
                f"{where} {what} (-> {target}); a model's files must be regular files in "
                "its own folder",
                details={**details, "symlink": str(links[0]), "target": target},
            )
        )
    if not os.path.lexists(written):
        return [*findings, Finding("provenance.files", f"{where} is missing: {written}",
                                   details=details)]  # fmt: skip
    try:
        mode = os.stat(written).st_mode
    except OSError as exc:
        return [*findings, Finding("provenance.files", f"{where} cannot be read: {exc.strerror}",
                                   details=details)]  # fmt: skip
    if not stat.S_ISREG(mode):
        findings.append(
            Finding(
                "provenance.files", f"{where} is not a regular file: {written}", details=details
            )  # fmt: skip
        )
    real = Path(os.path.realpath(written))
    if not real.is_relative_to(Path(os.path.realpath(folder))):
        findings.append(
            Finding(
                "provenance.files",
                f"{where} resolves to {real}, outside the card's folder {folder}",
                details={**details, "resolved": str(real)},
            )
        )
    return findings


def unexpected_files(card: ModelCard) -> list[str]:
    """Files in the card's folder (recursively) that are neither the card nor a file it names.

    POSIX paths relative to the folder; a symlinked folder is listed as ``name/`` and not entered.
    """
    folder = card.folder
    expected = {card.path.name} | {relative_posix(p, folder) for p in card.named_files().values()}
    extra = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        here = Path(dirpath)
        for d in list(dirnames):
            if os.path.islink(here / d):
                extra.append(relative_posix(here / d, folder) + "/")
                dirnames.remove(d)
        extra += [r for f in filenames if (r := relative_posix(here / f, folder)) not in expected]
    return sorted(extra)


# -- digest --------------------------------------------------------------------------------------
def check_sha256(card: ModelCard, digests: dict[Path, str]) -> list[Finding]:
    weights = card.model.weights
    if weights is None:
        return [
            Finding(
                "provenance.sha256",
                f"format {card.model.format!r} without a weights file: no weights digest to check",
                "info",
            )
        ]
    if not weights.is_file():
        return []  # reported by provenance.files
    actual = cached_sha256(weights, digests)
    pinned = card.model.sha256
    if pinned is None:
        return [
            Finding(
                "provenance.sha256",
                f"{card.path}: the card pins no [model.sha256]; the weights {weights.name} have "
                f"sha256 {actual} — pin it to detect tampering",
                details={"actual": actual},
            )
        ]
    if actual != pinned:
        return [
            Finding(
                "provenance.sha256",
                f"{weights}: sha256 {actual} does not match the card's [model.sha256] {pinned}",
                details={"actual": actual, "pinned": pinned, "path": str(weights)},
            )
        ]
    return []


# -- signature -----------------------------------------------------------------------------------
def check_signature(
    card: ModelCard,
    *,
    required: bool,
    trusted_keys: list,
    digests: dict[Path, str] | None = None,
) -> list[Finding]:
    sig = card.provenance.signature
    severity = "fail" if required else "info"
    if sig is None or not os.path.lexists(sig):
        why = (
            f"{card.path} names no [provenance] signature"
            if sig is None
            else f"the signature file {sig} named by [provenance.signature] is missing"
        )
        hint = "; kp_provenance(signature=True) requires one (`kpmodel sign`)" if required else ""
        return [Finding("provenance.signature", f"unsigned: {why}{hint}", severity)]
    if not trusted_keys:
        if required:
            return [
                Finding(
                    "provenance.signature",
                    f"kp_provenance(signature=True) needs trusted_keys=[...] (public key files) "
                    f"to verify {sig}",
                )
            ]
        return [
            Finding(
                "provenance.signature",
                f"signed ({sig.name}) but not verified: no trusted_keys given",
                "info",
            )
        ]
    try:
        result = verify_card(card, trusted_keys, digests)
    except SigningError as exc:
        return [Finding("provenance.signature", f"trusted_keys: {exc}")]
    details = {"key_id": result.key_id, "covered": list(result.covered), "scheme": result.scheme}
    details.update(result.details)
    if result.ok:
        return [Finding("provenance.signature", result.reason, "info", details)]
    return [Finding("provenance.signature", result.reason, "fail" if required else "warn", details)]


# -- source --------------------------------------------------------------------------------------
def source_matches(source: str, pattern: str) -> bool:
    """fnmatch-style; URL patterns match scheme, host[:port] and path separately."""
    if "://" not in pattern:
        return fnmatch.fnmatchcase(source, pattern)
    if "://" not in source:
        return False
    try:
        s, p = urlsplit(source), urlsplit(pattern)
        s_port, p_netloc = s.port, p.netloc
    except ValueError:
        return False
    if "@" in s.netloc or s.hostname is None:
        return False
    host = s.hostname + (f":{s_port}" if s_port is not None else "")
    s_rest = s.path + (f"?{s.query}" if s.query else "") + (f"#{s.fragment}" if s.fragment else "")
    p_rest = p.path + (f"?{p.query}" if p.query else "") + (f"#{p.fragment}" if p.fragment else "")
    return (
        fnmatch.fnmatchcase(s.scheme.lower(), p.scheme.lower())
        and fnmatch.fnmatchcase(host, p_netloc.lower())
        and fnmatch.fnmatchcase(s_rest or "/", p_rest or "/")
    )


def check_source(card: ModelCard, sources: list[str]) -> list[Finding]:
    allowed = ", ".join(repr(s) for s in sources) or "(none)"
    src = card.provenance.source
    if src is None:
        return [
            Finding(
                "provenance.source",
                f"{card.path} names no [provenance] source; the spec allows only {allowed}",
                details={"allowed": sources},
            )
        ]
    if any(source_matches(src, pat) for pat in sources):
        return []
    return [
        Finding(
            "provenance.source",
            f"source {src!r} matches none of the allowed sources {allowed}",
            details={"source": src, "allowed": sources},
        )
    ]


# -- base ----------------------------------------------------------------------------------------
def check_base(card: ModelCard, base: Path, digests: dict[Path, str]) -> list[Finding]:
    def fail(message: str, **details: Any) -> list[Finding]:
        return [Finding("provenance.base", message, details=details)]

    try:
        base_card = load_card(base, check_files=False)
    except KpModelError as exc:
        return fail(f"kp_provenance(base=...): {exc}")
    declared = card.provenance.base
    if declared is None:
        return fail(
            f"{card.path} names no [provenance] base; the spec expects {base_card.path}",
            expected=str(base_card.path),
        )
    try:
        declared_path = resolve_card_path(declared)
    except KpModelError as exc:
        return fail(f"[provenance.base] {exc}", declared=str(declared))
    findings: list[Finding] = []
    if not _same_file(declared_path, base_card.path):
        try:
            declared_card = load_card(declared_path, check_files=False)
        except KpModelError as exc:
            return fail(f"[provenance.base] {exc}", declared=str(declared_path))
        expected = base_card.model.sha256 or _weights_digest(base_card, digests)
        got = _weights_digest(declared_card, digests)
        if expected is None or got is None or got != expected:
            return fail(
                f"[provenance.base] {declared_path} is not the spec's base {base_card.path}: "
                f"its weights have sha256 {got or 'missing'}, the base pins {expected or 'none'}",
                declared=str(declared_path),
                expected=str(base_card.path),
                declared_sha256=got,
                expected_sha256=expected,
            )
    own = _weights_digest(card, digests)
    if own is not None and own == _weights_digest(base_card, digests):
        findings.append(
            Finding(
                "provenance.base",
                f"{card.model.weights} is byte-identical to the base model's weights "
                f"{base_card.model.weights} (sha256 {own[:12]}…): nothing was modified",
                "warn",
            )
        )
    return findings


# -- helpers -------------------------------------------------------------------------------------
def _rooted(p, root: Path):
    if isinstance(p, bytes) or hasattr(p, "public_bytes"):
        return p
    if isinstance(p, str) and p.lstrip().startswith("-----BEGIN"):
        return p
    path = Path(p).expanduser()
    return path if path.is_absolute() else root / path


def _weights_digest(card: ModelCard, digests: dict[Path, str]) -> str | None:
    w = card.model.weights
    if w is None or not w.is_file():
        return None
    return cached_sha256(w, digests)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
