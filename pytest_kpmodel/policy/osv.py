"""Offline vulnerability matching against a local OSV export (``--kp-osv-db``).

The database is the PyPI ecosystem export as published by OSV (``PyPI/all.zip`` from the
``osv-vulnerabilities`` bucket), a folder holding OSV JSON files (searched recursively), or one
such file. Nothing is downloaded.

Matching follows the OSV schema for the ``PyPI`` ecosystem:

- package names are compared after PEP 503 normalisation (``Foo_Bar`` == ``foo-bar``);
- an advisory with ``withdrawn`` set is ignored;
- ``affected[].versions`` lists exact affected versions (compared as PEP 440 versions);
- ``ranges`` of type ``ECOSYSTEM`` (and ``SEMVER``, read the same way) are walked in version order:
  ``introduced`` is inclusive (``"0"`` means "since the first release"), ``fixed`` is exclusive,
  ``last_affected`` is inclusive; a version is affected when any range includes it. ``GIT``
  ranges (commit hashes) cannot be compared with an installed version and are not used.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from ..errors import KpModelError
from ..findings import Finding

ECOSYSTEM = "PyPI"
_NAME_RX = re.compile(rb'"name"\s*:\s*"([^"\\]+)"')


@dataclass(frozen=True)
class Advisory:
    id: str
    aliases: tuple[str, ...]
    summary: str
    affected: tuple[dict[str, Any], ...]  # the PyPI entries of ``affected``
    severity: str | None = None
    source: str = ""  # file name inside the database


@dataclass
class OsvDatabase:
    path: Path
    by_package: dict[str, list[Advisory]] = field(default_factory=dict)
    files: int = 0
    unreadable: list[str] = field(default_factory=list)
    withdrawn: int = 0

    def advisories(self, package: str) -> list[Advisory]:
        return self.by_package.get(canonicalize_name(package), [])


# -- loading ---------------------------------------------------------------------------------------------
def load_database(
    path: str | os.PathLike[str], packages: Iterable[str] | None = None
) -> OsvDatabase:
    """Read the advisories (for ``packages`` only, when given: much faster on the full export)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise KpModelError(f"--kp-osv-db: {p} does not exist (a PyPI all.zip or a folder of JSON)")
    wanted = frozenset(canonicalize_name(n) for n in packages) if packages is not None else None
    stat = p.stat()
    return _load_cached(str(p.resolve()), stat.st_mtime_ns, stat.st_size, wanted)


@lru_cache(maxsize=4)
def _load_cached(path: str, _mtime: int, _size: int, wanted: frozenset[str] | None) -> OsvDatabase:
    db = OsvDatabase(Path(path))
    for name, raw in _records(Path(path)):
        db.files += 1
        if wanted is not None and not any(
            canonicalize_name(m.decode("utf-8", "replace")) in wanted for m in _NAME_RX.findall(raw)
        ):
            continue  # cheap pre-filter: no affected package we care about is named in the file
        try:
            record = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            db.unreadable.append(name)
            continue
        if not isinstance(record, dict) or not isinstance(record.get("id"), str):
            db.unreadable.append(name)
            continue
        if record.get("withdrawn"):
            db.withdrawn += 1
            continue
        _index(db, record, name, wanted)
    return db


def _records(path: Path) -> Iterator[tuple[str, bytes]]:
    if path.is_dir():
        for f in sorted(path.rglob("*.json")):
            yield str(f.relative_to(path)), f.read_bytes()
    elif zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as zf:
                for info in zf.infolist():
                    if not info.is_dir() and info.filename.endswith(".json"):
                        yield info.filename, zf.read(info)
        except zipfile.BadZipFile as exc:
            raise KpModelError(f"--kp-osv-db: {path} is not a readable zip: {exc}") from None
    elif path.suffix == ".json":
        yield path.name, path.read_bytes()
    else:
        raise KpModelError(
            f"--kp-osv-db: {path} is neither a zip, a folder, nor a .json file of OSV records"
        )


def _index(db: OsvDatabase, record: dict[str, Any], source: str, wanted) -> None:
    per_package: dict[str, list[dict[str, Any]]] = {}
    for entry in record.get("affected") or []:
        pkg = entry.get("package") or {}
        if str(pkg.get("ecosystem", "")).split(":")[0] != ECOSYSTEM or not pkg.get("name"):
            continue
        name = canonicalize_name(pkg["name"])
        if wanted is None or name in wanted:
            per_package.setdefault(name, []).append(entry)
    if not per_package:
        return
    aliases = tuple(a for a in record.get("aliases") or [] if isinstance(a, str))
    summary = record.get("summary") or (record.get("details") or "").strip().split("\n")[0]
    severity = (record.get("database_specific") or {}).get("severity")
    for name, entries in per_package.items():
        db.by_package.setdefault(name, []).append(
            Advisory(record["id"], aliases, str(summary)[:200], tuple(entries), severity, source)
        )


# -- matching --------------------------------------------------------------------------------------------
class _Unparseable(Exception):
    pass


def _version(text: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion:
        raise _Unparseable(text) from None


def range_affects(version: Version, events: list[dict[str, str]]) -> bool:
    """OSV's evaluation of one ECOSYSTEM range: events sorted by version, last one decides."""
    keyed = []
    for evt in events:
        for kind in ("introduced", "fixed", "last_affected"):
            if kind in evt:
                value = str(evt[kind])
                # "0" sorts before every version; among equal versions, introduced comes first
                order = Version("0") if value == "0" else _version(value)
                keyed.append((order, value == "0", kind, value))
    keyed.sort(key=lambda k: (k[0], not k[1], {"introduced": 0, "last_affected": 1,
                                                 "fixed": 2}[k[2]]))  # fmt: skip
    affected = False
    for order, is_zero, kind, _ in keyed:
        if kind == "introduced" and (is_zero or version >= order):
            affected = True
        elif (kind == "fixed" and version >= order) or (
            kind == "last_affected" and version > order
        ):
            affected = False
    return affected


@dataclass(frozen=True)
class Match:
    package: str
    version: str
    advisory: Advisory
    fixed: tuple[str, ...]  # versions that fix it, from the matching ranges
    how: str  # "range" | "versions"


def affected_by(advisory: Advisory, version: str) -> tuple[bool, str, tuple[str, ...], list[str]]:
    """(affected, how, fixed versions, notes about what could not be compared)."""
    notes: list[str] = []
    try:
        v = Version(version)
    except InvalidVersion:
        v = None
        notes.append(f"installed version {version!r} is not PEP 440; only exact versions compared")
    fixed: list[str] = []
    for entry in advisory.affected:
        for listed in entry.get("versions") or []:
            if listed == version or (v is not None and _same_version(listed, v)):
                return True, "versions", tuple(_fixed(entry)), notes
        if v is None:
            continue
        for rng in entry.get("ranges") or []:
            if rng.get("type") not in ("ECOSYSTEM", "SEMVER"):
                continue
            try:
                hit = range_affects(v, list(rng.get("events") or []))
            except _Unparseable as exc:
                notes.append(f"{advisory.id}: range with version {exc} cannot be compared")
                continue
            if hit:
                fixed = [e["fixed"] for e in rng.get("events") or [] if "fixed" in e]
                return True, "range", tuple(fixed), notes
    return False, "", (), notes


def _same_version(listed: str, v: Version) -> bool:
    try:
        return Version(listed) == v
    except InvalidVersion:
        return False


def _fixed(entry: Mapping[str, Any]) -> list[str]:
    return [
        e["fixed"]
        for r in entry.get("ranges") or []
        if r.get("type") in ("ECOSYSTEM", "SEMVER")
        for e in r.get("events") or []
        if "fixed" in e
    ]


def match(db: OsvDatabase, installed: Mapping[str, str]) -> tuple[list[Match], list[str]]:
    """Installed ``{name: version}`` against the database: matches, and comparison notes."""
    matches, notes = [], []
    for name, version in sorted(installed.items()):
        for adv in db.advisories(name):
            hit, how, fixed, n = affected_by(adv, version)
            notes.extend(n)
            if hit:
                matches.append(Match(name, version, adv, fixed, how))
    return matches, sorted(set(notes))


def check_vulnerabilities(
    db_path: str | os.PathLike[str],
    installed: Mapping[str, str],
    ignore: Iterable[str] = (),
) -> list[Finding]:
    """One failing finding per (package, advisory); ``ignore`` lists accepted ids or aliases."""
    db = load_database(db_path, installed.keys())
    ignored = {i.upper() for i in ignore}
    matches, notes = match(db, installed)
    findings = []
    for m in matches:
        ids = {m.advisory.id.upper(), *(a.upper() for a in m.advisory.aliases)}
        accepted = bool(ids & ignored)
        also = f" ({', '.join(m.advisory.aliases)})" if m.advisory.aliases else ""
        fix = f"; fixed in {', '.join(m.fixed)}" if m.fixed else "; no fixed version known"
        findings.append(
            Finding(
                "dependencies.vulnerabilities",
                f"{m.package} {m.version} is affected by {m.advisory.id}{also}: "
                f"{m.advisory.summary or 'no summary'}{fix}" + (" (ignored)" if accepted else ""),
                severity="info" if accepted else "fail",
                details={
                    "package": m.package,
                    "version": m.version,
                    "id": m.advisory.id,
                    "aliases": list(m.advisory.aliases),
                    "summary": m.advisory.summary,
                    "fixed": list(m.fixed),
                    "severity": m.advisory.severity,
                    "matched_by": m.how,
                    "ignored": accepted,
                },
            )
        )
    for note in notes:
        findings.append(Finding("dependencies.vulnerabilities", note, severity="warn"))
    if db.unreadable:
        findings.append(
            Finding(
                "dependencies.vulnerabilities",
                f"{len(db.unreadable)} file(s) in {db.path} are not OSV records and were skipped",
                severity="warn",
                details={"files": db.unreadable[:20]},
            )
        )
    if db.files == 0:
        findings.append(
            Finding(
                "dependencies.vulnerabilities",
                f"--kp-osv-db {db.path} holds no OSV JSON records: nothing was matched",
                details={"path": str(db.path)},
            )
        )
    return findings
