"""The ``kpmodel`` hypothesis settings profile, registered lazily.

Hypothesis runs the functions of its ``hypothesis`` entry-point group when it is imported
(``hypothesis.entry_points``); ``pyproject.toml`` names :func:`register` there. So the profile
exists whenever hypothesis does (``--hypothesis-profile=kpmodel`` works), and a pytest run
that never imports hypothesis never pays for it. The plugin loads the profile (unless the
user picked one) only when a collected test uses hypothesis.

This module imports hypothesis inside :func:`register` only; neither pytest nor torch.
"""

from __future__ import annotations

PROFILE = "kpmodel"
# The plugin's fixtures whose probes draw with hypothesis.
HYPOTHESIS_FIXTURES = frozenset({"kp_stability", "kp_trigger_scan"})
# Set by load_on_import: the entry point then loads the profile as hypothesis is imported.
_LOAD_ON_IMPORT = False


def register(name: str = PROFILE, *, max_examples: int = 20, load: bool = False) -> str:
    """Register the ``kpmodel`` settings profile and return its name.

    Derandomized (the same examples on every run, so CI is reproducible), no deadline (one
    example runs a model), a bounded number of examples, no example database, and the too-slow
    health check off. The function-scoped-fixture check stays on: the plugin's fixtures are
    session scoped. ``load=True`` also makes it the active profile.
    """
    from hypothesis import HealthCheck, settings

    settings.register_profile(
        name,
        derandomize=True,
        deadline=None,
        max_examples=max_examples,
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    if load or (_LOAD_ON_IMPORT and name == PROFILE):
        settings.load_profile(name)
    return name


def load_on_import() -> None:
    """Make the profile the active one as soon as hypothesis is imported (now, if it is
    already). A test's own ``@settings(...)`` inherits the profile active when its module is
    imported, during collection: loaded only after collection, such a test would run
    randomized and replay its example database, not the profile's fixed examples."""
    import sys

    global _LOAD_ON_IMPORT
    _LOAD_ON_IMPORT = True
    if "hypothesis" in sys.modules:
        register(load=True)


def load_if_used(fixtures_per_test: list[set[str]]) -> bool:
    """Load the profile when a collected test uses hypothesis (its module imported it) or a
    robustness fixture that does; other runs never import hypothesis. True when loaded."""
    import sys

    if "hypothesis" in sys.modules or any(f & HYPOTHESIS_FIXTURES for f in fixtures_per_test):
        register(load=True)
        return True
    return False
