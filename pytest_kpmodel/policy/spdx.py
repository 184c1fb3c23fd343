"""SPDX license expressions: parse, classify each license, and judge them against a policy.

Parsing uses ``license-expression`` with the SPDX license list (ids are normalised: ``mit`` ->
``MIT``, deprecated ``GPL-2.0+`` -> ``GPL-2.0-or-later``). The expression is evaluated with real
SPDX semantics: ``A OR B`` is acceptable when either choice is; ``A AND B`` needs both;
``A WITH E`` is judged as ``A`` (an exception only adds permissions) except that a linking
exception (Classpath, GCC runtime, LLVM, ``*linking*``...) turns strong copyleft into weak: it
lets other code link with the licensed work, but the work itself stays copyleft.

Classes, each accepted by exactly one ``LicensePolicy`` flag (``allow`` overrides, ``deny`` wins):

===================  =====================================================  =====================
class                examples                                               accepted when
===================  =====================================================  =====================
permissive           MIT, BSD-3-Clause, Apache-2.0, CC0-1.0, CC-BY-4.0      always
weak-copyleft        LGPL-*, MPL-2.0, EPL-2.0, CDDL-1.0 (file- or library-  ``weak_copyleft=True``
                     level share-alike), GPL-* WITH a linking exception     or ``copyleft=True``
                     (Classpath, GCC runtime)
strong-copyleft      GPL-*, AGPL-*, SSPL-1.0, EUPL-*, OSL-3.0, CC-BY-SA-*   ``copyleft=True``
non-commercial       CC-BY-NC-*, PolyForm-Noncommercial, ...                ``noncommercial=True``
use-restricted       OpenRAIL family, Llama licenses, BUSL-1.1, Elastic-2.0 ``restricted=True``
                     CC-BY-ND-* (no derivatives), Hippocratic, JSON
commercial           ``LicenseRef-*`` and other proprietary/custom terms     ``commercial=True``
unknown              anything we cannot classify                            ``unknown=True``
===================  =====================================================  =====================

(CC-BY-SA counts as strong copyleft: share-alike covers the whole adapted work.) Ids are
classified by the curated rules below first, then by the ScanCode LicenseDB category that ships
with ``license-expression``; ids outside the SPDX list (other than ``LicenseRef-*`` and a few
well-known model licenses such as ``openrail``) are ``unknown`` — never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import Any

from ..errors import KpModelError

PERMISSIVE = "permissive"
WEAK = "weak-copyleft"
STRONG = "strong-copyleft"
NONCOMMERCIAL = "non-commercial"
RESTRICTED = "use-restricted"
COMMERCIAL = "commercial"
UNKNOWN = "unknown"

# Curated rules on SPDX ids (case-insensitive regex, first match wins). Order matters: NC and ND
# variants of CC licenses before the plain ones.
_RULES: tuple[tuple[str, str], ...] = (
    (r"^CC-BY-NC|^PolyForm-Noncommercial|^PolyForm-Strict|^NCGL-", NONCOMMERCIAL),
    (
        r"^CC-BY-ND-|^BUSL-|^Elastic-|^Hippocratic-|^JSON$|^PolyForm-|^C-UDA-|^Commons-Clause$",
        RESTRICTED,
    ),
    (r"^AGPL-|^SSPL-|^RPL-|^CPAL-|^OSL-|^EUPL-|^Parity-", STRONG),  # network/"use" clauses
    (r"^GPL-|^CC-BY-SA-|^ODbL-|^copyleft-next|^Sleepycat$|^CECILL-[12]|^GFDL-|^QPL-", STRONG),
    (
        r"^LGPL|^MPL-|^EPL-|^CDDL-|^CPL-|^MS-RL$|^APSL-|^CECILL-C$|^OFL-|^CDLA-Sharing|"
        r"^Artistic-|^NPL-|^ErlPL-|^IPL-|^SPL-|^OSET-|^LPPL",
        WEAK,
    ),
    (
        r"^MIT|^BSD-|^0BSD$|^Apache-|^ISC$|^Zlib|^Unlicense$|^CC0-|^CC-BY-\d|^PSF-|^Python-|"
        r"^BSL-1\.0$|^WTFPL$|^X11|^UPL-|^NCSA$|^HPND|^PostgreSQL$|^Unicode-|^CDLA-Permissive|"
        r"^BlueOak-|^AFL-|^ZPL-|^curl$|^libpng|^OpenSSL",
        PERMISSIVE,
    ),
)
_NETWORK = re.compile(r"^AGPL-|^SSPL-|^RPL-|^CPAL-|^OSL-|^EUPL-|^Parity-", re.IGNORECASE)
_COMPILED = tuple((re.compile(p, re.IGNORECASE), cls) for p, cls in _RULES)

# Well-known model licenses that are not on the SPDX list (Hugging Face / vendor names).
MODEL_LICENSES: dict[str, str] = {
    "openrail": RESTRICTED, "openrail++": RESTRICTED, "openrail-m": RESTRICTED,
    "creativeml-openrail-m": RESTRICTED, "bigscience-openrail-m": RESTRICTED,
    "bigscience-bloom-rail-1.0": RESTRICTED, "bigcode-openrail-m": RESTRICTED,
    "llama2": RESTRICTED, "llama3": RESTRICTED, "llama3.1": RESTRICTED, "llama3.2": RESTRICTED,
    "llama3.3": RESTRICTED, "llama4": RESTRICTED, "gemma": RESTRICTED,
    "deepfloyd-if-license": RESTRICTED, "apple-amlr": NONCOMMERCIAL,
    "fair-noncommercial-research-license": NONCOMMERCIAL,
}  # fmt: skip

# ScanCode LicenseDB categories -> our classes (fallback for SPDX ids no rule covers).
_SCANCODE = {
    "Permissive": PERMISSIVE, "Public Domain": PERMISSIVE, "Copyleft Limited": WEAK,
    "Copyleft": STRONG, "Source-available": RESTRICTED, "Free Restricted": RESTRICTED,
    "Proprietary Free": COMMERCIAL, "Commercial": COMMERCIAL,
}  # fmt: skip

# Exceptions that let non-copyleft code link with the licensed code.
_LINKING_EXCEPTION = re.compile(
    r"classpath|gcc|llvm|linking|libtool|autoconf|bison|font|ecos|wxwindows|fltk|"
    r"universal-foss|syscall|gnat|gnu-compiler|openjdk-assembly|qt-gpl|qt-lgpl|swift|runtime",
    re.IGNORECASE,
)


_DESCRIBE = {
    PERMISSIVE: "permissive",
    WEAK: "weak copyleft",
    STRONG: "strong copyleft",
    NONCOMMERCIAL: "non-commercial",
    RESTRICTED: "use-restricted",
    COMMERCIAL: "commercial/custom terms",
    UNKNOWN: "not a license this plugin can classify",
}


class LicenseSyntaxError(ValueError):
    """The expression cannot be parsed; the message is the parser's reason."""


# -- terms and trees ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Term:
    """One license (optionally WITH an exception), classified."""

    id: str  # normalised SPDX id, LicenseRef-..., or a label such as "BSD License (classifier)"
    cls: str
    exception: str | None = None
    network: bool = False  # strong copyleft whose obligations reach network use (AGPL, SSPL...)

    @property
    def text(self) -> str:
        return f"{self.id} WITH {self.exception}" if self.exception else self.id

    def describe(self) -> str:
        kind = _DESCRIBE[self.cls]
        if self.network:
            kind += " (network clause)"
        if self.cls == WEAK and self.exception:
            kind += " (the exception lets other code link with it; the work stays copyleft)"
        return f"{self.text} is {kind}"


@dataclass(frozen=True)
class Node:
    op: str  # "AND" | "OR"
    args: tuple[Any, ...]  # Term | Node


def _licensing():
    return _spdx()[0]


@lru_cache(maxsize=1)
def _spdx():
    from license_expression import get_license_index, get_spdx_licensing

    licensing = get_spdx_licensing()
    categories = {}
    for entry in get_license_index():
        cat = entry.get("category")
        for key in [entry.get("spdx_license_key"), *(entry.get("other_spdx_license_keys") or [])]:
            if key:
                categories.setdefault(key.lower(), cat)
    known = {k.lower() for k in licensing.known_symbols}
    return licensing, categories, known


def classify_id(key: str) -> tuple[str, bool]:
    """(class, network) for one normalised license id."""
    _, categories, known = _spdx()
    low = key.lower()
    if "licenseref-" in low:
        return COMMERCIAL, False
    if low in MODEL_LICENSES:
        return MODEL_LICENSES[low], False
    if low not in known:
        return UNKNOWN, False
    for rx, cls in _COMPILED:
        if rx.search(key):
            return cls, cls == STRONG and bool(_NETWORK.search(key))
    cls = _SCANCODE.get(categories.get(low, ""), UNKNOWN)
    return cls, False


def make_term(key: str, exception: str | None = None) -> Term:
    cls, network = classify_id(key)
    if exception and cls == STRONG and _LINKING_EXCEPTION.search(exception):
        cls, network = WEAK, False
    return Term(key, cls, exception, network)


def parse(expression: str) -> Term | Node:
    """SPDX expression -> tree of classified terms; ``LicenseSyntaxError`` with the reason."""
    from license_expression import (
        AND,
        OR,
        ExpressionError,
        LicenseSymbol,
        LicenseWithExceptionSymbol,
    )

    if not expression or not expression.strip():
        raise LicenseSyntaxError("empty license expression")
    licensing = _licensing()
    try:
        parsed = licensing.parse(expression, validate=False, strict=False)
    except ExpressionError as exc:
        raise LicenseSyntaxError(str(exc)) from None
    if parsed is None:
        raise LicenseSyntaxError("empty license expression")
    # validate() reports misuse such as a license in the WITH position; unknown ids are not an
    # error here (they classify as unknown, or LicenseRef-* as commercial).
    errors = [e for e in licensing.validate(expression).errors if "Unknown license key" not in e]
    if errors:
        raise LicenseSyntaxError("; ".join(errors))
    model_names = {k.lower(): k for k in MODEL_LICENSES}

    def convert(node) -> Term | Node:
        if isinstance(node, LicenseWithExceptionSymbol):
            return make_term(node.license_symbol.key, node.exception_symbol.key)
        if isinstance(node, LicenseSymbol):
            key = model_names.get(node.key.lower(), node.key)
            return make_term(key)
        if isinstance(node, AND | OR):
            return Node(
                "AND" if isinstance(node, AND) else "OR", tuple(convert(a) for a in node.args)
            )
        raise LicenseSyntaxError(f"unexpected element {node!r}")

    return convert(parsed)


def normalized(expression: str) -> str | None:
    """The expression as SPDX spells it (``gpl-2.0+`` -> ``GPL-2.0-or-later``), or None."""
    try:
        return str(_licensing().parse(expression, validate=False))
    except Exception:
        return None


def render(tree: Term | Node, top: bool = True) -> str:
    if isinstance(tree, Term):
        return tree.text
    inner = f" {tree.op} ".join(render(a, top=False) for a in tree.args)
    return inner if top else f"({inner})"


def terms(tree: Term | Node) -> list[Term]:
    if isinstance(tree, Term):
        return [tree]
    return [t for a in tree.args for t in terms(a)]


# -- policy ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LicensePolicy:
    """What an adopter accepts. See the module docstring for the classes each flag admits.

    ``allow``/``deny``: SPDX ids (``"Apache-2.0"``, deprecated spellings are normalised),
    ``"ID WITH EXCEPTION"`` or shell globs (``"LicenseRef-acme-*"``, ``"AGPL-*"``),
    case-insensitive. ``deny`` always wins; ``allow`` accepts an id whatever its class (allowing
    ``GPL-2.0-only`` also allows it ``WITH`` any exception). Entries without a glob must be known
    ids: a typo must not silently disable a rule.
    """

    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    copyleft: bool | str = False  # True: weak and strong copyleft; False / "none": neither
    weak_copyleft: bool = False  # True: weak copyleft (LGPL, MPL, GPL WITH Classpath...) too
    commercial: bool = False
    noncommercial: bool = False
    restricted: bool = False
    unknown: bool = False

    @classmethod
    def build(
        cls,
        allow: Iterable[str] | str = (),
        deny: Iterable[str] | str = (),
        copyleft: bool | str = False,
        commercial: bool = False,
        noncommercial: bool = False,
        restricted: bool = False,
        unknown: bool = False,
        weak_copyleft: bool = False,
    ) -> LicensePolicy:
        if copyleft not in (True, False, "none"):
            raise KpModelError(
                f"kp_license: copyleft={copyleft!r}; use False (no copyleft; weak copyleft "
                "with weak_copyleft=True) or True (any copyleft)"
            )
        for name, flag in (("commercial", commercial), ("noncommercial", noncommercial),
                           ("restricted", restricted), ("unknown", unknown),
                           ("weak_copyleft", weak_copyleft)):  # fmt: skip
            if not isinstance(flag, bool):
                raise KpModelError(f"kp_license: {name}={flag!r} must be True or False")
        if weak_copyleft and copyleft == "none":
            raise KpModelError(
                "kp_license: weak_copyleft=True contradicts copyleft='none' (no copyleft at all)"
            )
        return cls(
            allow=_patterns(allow, "allow"),
            deny=_patterns(deny, "deny"),
            copyleft=copyleft,
            weak_copyleft=weak_copyleft,
            commercial=commercial,
            noncommercial=noncommercial,
            restricted=restricted,
            unknown=unknown,
        )


def _patterns(entries: Iterable[str] | str, key: str) -> tuple[str, ...]:
    if isinstance(entries, str):
        entries = [entries]
    out = []
    for entry in entries:
        if not isinstance(entry, str) or not entry.strip():
            raise KpModelError(f"kp_license: {key} entries must be license ids, got {entry!r}")
        entry = entry.strip()
        if any(ch in entry for ch in "*?["):
            out.append(entry)
            continue
        try:
            tree = parse(entry)
        except LicenseSyntaxError as exc:
            raise KpModelError(f"kp_license: {key} entry {entry!r}: {exc}") from None
        if not isinstance(tree, Term):
            raise KpModelError(
                f"kp_license: {key} entry {entry!r} must be one license id, not an expression"
            )
        if tree.cls == UNKNOWN:
            raise KpModelError(
                f"kp_license: {key} entry {entry!r} is not a known SPDX license id "
                "(use a LicenseRef-... id for custom terms, or a glob)"
            )
        out.append(tree.text)
    return tuple(out)


def _matches(patterns: Iterable[str], term: Term) -> str | None:
    names = {term.id.lower(), term.text.lower()}
    for pat in patterns:
        p = pat.lower()
        if any(fnmatchcase(n, p) for n in names):
            return pat
    return None


@dataclass
class Verdict:
    ok: bool
    reasons: list[str] = field(default_factory=list)  # why not, one per failing part
    accepted: list[Term] = field(default_factory=list)  # the terms an acceptable route uses
    notes: list[str] = field(default_factory=list)


_FLAG_FOR = {
    STRONG: "copyleft=True",
    WEAK: "weak_copyleft=True",
    NONCOMMERCIAL: "noncommercial=True",
    RESTRICTED: "restricted=True",
    COMMERCIAL: "commercial=True",
    UNKNOWN: "unknown=True",
}


def judge_term(term: Term, policy: LicensePolicy) -> Verdict:
    denied = _matches(policy.deny, term)
    if denied:
        return Verdict(False, [f"{term.text} is denied (deny={denied!r})"])
    allowed = _matches(policy.allow, term)
    if allowed:
        return Verdict(True, accepted=[term], notes=[f"{term.text} explicitly allowed"])
    ok = {
        PERMISSIVE: True,
        WEAK: policy.copyleft is True or policy.weak_copyleft,
        STRONG: policy.copyleft is True,
        NONCOMMERCIAL: policy.noncommercial,
        RESTRICTED: policy.restricted,
        COMMERCIAL: policy.commercial,
        UNKNOWN: policy.unknown,
    }[term.cls]
    if ok:
        return Verdict(True, accepted=[term])
    if term.cls == WEAK and policy.copyleft == "none":
        why = "which copyleft='none' forbids"
    else:
        why = f"which needs {_FLAG_FOR[term.cls]}"
        if " " not in term.id:
            why += f" or allow=[{term.id!r}]"
        if term.cls == NONCOMMERCIAL:
            why += " (non-commercial terms do not cover use in a product)"
    return Verdict(False, [f"{term.describe()}, {why}"])


def evaluate(tree: Term | Node, policy: LicensePolicy) -> Verdict:
    if isinstance(tree, Term):
        return judge_term(tree, policy)
    parts = [evaluate(a, policy) for a in tree.args]
    if tree.op == "AND":
        ok = all(p.ok for p in parts)
        return Verdict(
            ok,
            [r for p in parts for r in p.reasons],
            [t for p in parts for t in p.accepted] if ok else [],
            [n for p in parts for n in p.notes],
        )
    for p in parts:  # OR: the first acceptable choice, in the order written
        if p.ok:
            return p
    choices = "; ".join(
        f"({i + 1}) {render(a)}: {', '.join(p.reasons)}"
        for i, (a, p) in enumerate(zip(tree.args, parts, strict=True))
    )
    return Verdict(False, [f"none of the choices is acceptable: {choices}"])


def check_expression(expression: str, policy: LicensePolicy) -> tuple[Verdict, Term | Node | None]:
    """Parse and judge; a syntax error is a failing verdict with the parser's reason."""
    try:
        tree = parse(expression)
    except LicenseSyntaxError as exc:
        return Verdict(False, [f"{expression!r} is not a valid SPDX expression: {exc}"]), None
    return evaluate(tree, policy), tree
