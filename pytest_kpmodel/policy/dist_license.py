"""What an installed distribution's metadata says about its license, read as SPDX.

``distribution_license(dist)`` tries, in order, the PEP 639 ``License-Expression``, the free-text
``License`` field (only when it is a valid SPDX expression of known ids, or one of the common
spellings in ``_FREE_TEXT``) and the ``License ::`` trove classifiers. What cannot be classified
is reported as such (``tree`` is None), never guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .spdx import (
    COMMERCIAL,
    PERMISSIVE,
    STRONG,
    UNKNOWN,
    WEAK,
    LicenseSyntaxError,
    Node,
    Term,
    make_term,
    parse,
    terms,
)

# Trove classifiers ("License :: ...") -> SPDX id, or (label, class) when the classifier names a
# family but not a version.
_CLASSIFIERS: dict[str, str | tuple[str, str]] = {
    "MIT License": "MIT",
    "MIT No Attribution License (MIT-0)": "MIT-0",
    "Apache Software License": ("Apache (unversioned)", PERMISSIVE),
    "BSD License": ("BSD (variant not stated)", PERMISSIVE),
    "ISC License (ISCL)": "ISC",
    "Python Software Foundation License": "PSF-2.0",
    "Python License (CNRI Python License)": "CNRI-Python",
    "The Unlicense (Unlicense)": "Unlicense",
    "zlib/libpng License": "Zlib",
    "Boost Software License 1.0 (BSL-1.0)": "BSL-1.0",
    "Universal Permissive License (UPL)": "UPL-1.0",
    "Historical Permission Notice and Disclaimer (HPND)": "HPND",
    "Academic Free License (AFL)": ("AFL (unversioned)", PERMISSIVE),
    "Zope Public License": ("ZPL (unversioned)", PERMISSIVE),
    "CC0 1.0 Universal (CC0 1.0) Public Domain Dedication": "CC0-1.0",
    "Public Domain": ("Public Domain", PERMISSIVE),
    "GNU General Public License (GPL)": ("GPL (unversioned)", STRONG),
    "GNU General Public License v2 (GPLv2)": "GPL-2.0-only",
    "GNU General Public License v2 or later (GPLv2+)": "GPL-2.0-or-later",
    "GNU General Public License v3 (GPLv3)": "GPL-3.0-only",
    "GNU General Public License v3 or later (GPLv3+)": "GPL-3.0-or-later",
    "GNU Affero General Public License v3": "AGPL-3.0-only",
    "GNU Affero General Public License v3 or later (AGPLv3+)": "AGPL-3.0-or-later",
    "GNU Lesser General Public License v2 (LGPLv2)": "LGPL-2.0-only",
    "GNU Lesser General Public License v2 or later (LGPLv2+)": "LGPL-2.0-or-later",
    "GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0-only",
    "GNU Lesser General Public License v3 or later (LGPLv3+)": "LGPL-3.0-or-later",
    "GNU Library or Lesser General Public License (LGPL)": ("LGPL (unversioned)", WEAK),
    "Mozilla Public License 1.0 (MPL)": "MPL-1.0",
    "Mozilla Public License 1.1 (MPL 1.1)": "MPL-1.1",
    "Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "Eclipse Public License 1.0 (EPL-1.0)": "EPL-1.0",
    "Eclipse Public License 2.0 (EPL-2.0)": "EPL-2.0",
    "Common Development and Distribution License 1.0 (CDDL-1.0)": "CDDL-1.0",
    "European Union Public Licence 1.1 (EUPL 1.1)": "EUPL-1.1",
    "European Union Public Licence 1.2 (EUPL 1.2)": "EUPL-1.2",
    "Open Software License 3.0 (OSL-3.0)": "OSL-3.0",
    "Artistic License": ("Artistic (unversioned)", WEAK),
    "Other/Proprietary License": ("Other/Proprietary License", COMMERCIAL),
}

# Exact (case-insensitive) free-text License fields seen in the wild, and their SPDX ids.
_FREE_TEXT = {
    "bsd": ("BSD (variant not stated)", PERMISSIVE),
    "bsd license": ("BSD (variant not stated)", PERMISSIVE),
    "new bsd": "BSD-3-Clause", "new bsd license": "BSD-3-Clause",
    "modified bsd": "BSD-3-Clause", "modified bsd license": "BSD-3-Clause",
    "3-clause bsd license": "BSD-3-Clause", "bsd 3-clause license": "BSD-3-Clause",
    "bsd 3-clause": "BSD-3-Clause", "bsd-3": "BSD-3-Clause", "bsd 2-clause license": "BSD-2-Clause",
    "simplified bsd": "BSD-2-Clause", "freebsd": "BSD-2-Clause",
    "mit license": "MIT", "the mit license": "MIT", "mit/x11": "MIT",
    "apache 2.0": "Apache-2.0", "apache 2": "Apache-2.0", "apache-2": "Apache-2.0",
    "apache license 2.0": "Apache-2.0", "apache license, version 2.0": "Apache-2.0",
    "apache license version 2.0": "Apache-2.0", "apache software license 2.0": "Apache-2.0",
    "apache software license": ("Apache (unversioned)", PERMISSIVE),
    "psf": "PSF-2.0", "psfl": "PSF-2.0", "psf license": "PSF-2.0",
    "public domain": ("Public Domain", PERMISSIVE),
    "gplv2": "GPL-2.0-only", "gplv3": "GPL-3.0-only", "lgplv3": "LGPL-3.0-only",
    "mpl 2.0": "MPL-2.0", "mozilla public license 2.0": "MPL-2.0",
}  # fmt: skip


@dataclass(frozen=True)
class DistLicense:
    """What a distribution's metadata says about its license, and where it says it."""

    tree: Term | Node | None  # None: cannot classify
    source: str  # "License-Expression" | "License" | "classifiers" | "none"
    raw: str  # the text it was read from (shortened)
    notes: tuple[str, ...] = ()


def _term_from(value: str | tuple[str, str]) -> Term:
    if isinstance(value, tuple):
        return Term(value[0], value[1])
    return make_term(value)


def _strict_spdx(text: str) -> Term | Node | None:
    """The text as an SPDX expression whose ids are all known (or LicenseRef); else None."""
    try:
        tree = parse(text)
    except LicenseSyntaxError:
        return None
    return tree if all(t.cls != UNKNOWN for t in terms(tree)) else None


def _free_text(text: str) -> Term | Node | None:
    lines = [ln.strip(" =-*#\t") for ln in text.strip().splitlines()]
    first = next((ln for ln in lines if ln), "")
    if not first:
        return None
    if "\n" not in text.strip() and len(first) <= 100:
        tree = _strict_spdx(first)
        if tree is not None:
            return tree
    key = re.sub(r"\s+", " ", first).lower()
    if key in _FREE_TEXT:
        return _term_from(_FREE_TEXT[key])
    if re.search(r"\bproprietary\b", key) and len(key) <= 100:
        return Term(first, COMMERCIAL)
    return None


def distribution_license(dist) -> DistLicense:
    """License-Expression (PEP 639), then License, then ``License ::`` classifiers."""
    md = dist.metadata
    notes = []
    expr = (md.get("License-Expression") or "").strip()
    if expr:
        try:
            return DistLicense(parse(expr), "License-Expression", expr)
        except LicenseSyntaxError as exc:
            notes.append(f"License-Expression {expr!r} is invalid: {exc}")
    text = (md.get("License") or "").strip()
    if text and text.upper() != "UNKNOWN":
        tree = _free_text(text)
        if tree is not None:
            return DistLicense(tree, "License", _short(text), tuple(notes))
        notes.append(f"License field {_short(text)!r} is not an SPDX expression")
    classifiers = [
        c.split("::", 1)[1].strip()
        for c in md.get_all("Classifier") or []
        if c.startswith("License ::")
    ]
    found = []
    for c in classifiers:
        name = c.split("::")[-1].strip()
        if name == "OSI Approved":
            continue  # says nothing about which license
        found.append(_term_from(_CLASSIFIERS[name]) if name in _CLASSIFIERS else Term(c, UNKNOWN))
    if found:
        # Several license classifiers do not say whether they are alternatives or cumulative;
        # reading them as AND is the conservative choice.
        tree = found[0] if len(found) == 1 else Node("AND", tuple(found))
        return DistLicense(tree, "classifiers", "; ".join(classifiers), tuple(notes))
    return DistLicense(None, "none", _short(text), tuple(notes))


def _short(text: str, n: int = 80) -> str:
    one = " ".join(text.split())
    return one if len(one) <= n else one[: n - 1] + "…"
