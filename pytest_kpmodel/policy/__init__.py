"""May we use this model, and will it run here? Licenses, dependencies, vulnerabilities, SBOM.

Entry points (plain Python, no pytest)::

    from pytest_kpmodel.policy import kp_license, kp_dependencies, write_sbom
    kp_license(card, allow=[...], copyleft=False, ...)        # -> PolicyResult
    kp_dependencies(card, python=">=3.10", cuda=">=12.0", ...)  # -> PolicyResult
    write_sbom(path, card)                                     # -> SbomWritten (CycloneDX 1.6)

``evaluate_kp_license`` / ``evaluate_kp_dependencies`` / ``write_session_sbom`` do the same for
the run's ``KpSession`` (``checks.EVALUATORS`` and the plugin call them).

Both checks return a ``PolicyResult``: a ``CheckResult`` whose ``subchecks`` say, for each thing
asked, whether it passed, failed or was skipped here (and why); see :mod:`.result`.
``result.summary()`` reads e.g.
``"python passed, requires passed, cuda skipped (no CUDA GPU is available ...)"``.

Finding ``check`` names: ``license``, ``license.dependencies``, ``dependencies.python``,
``dependencies.requires``, ``dependencies.cuda``, ``dependencies.gpu_arch``, ``dependencies.os``,
``dependencies.custom_ops``, ``dependencies.vulnerabilities``. Severities: ``fail`` fails the
test; ``warn`` and ``info`` are reported only.

Modules: ``marker`` (the run's side), ``license`` (``kp_license``), ``spdx`` (SPDX expressions,
license classes, the adopter's ``LicensePolicy``), ``dist_license`` (an installed distribution's
license from its metadata), ``dependencies`` (``kp_dependencies`` and its sub-checks),
``machine`` (the ``Platform`` compared against), ``distributions`` (installed distributions and
requirements), ``custom_ops`` (ops and layers from outside torch), ``osv`` (offline
vulnerability matching), ``sbom`` (the CycloneDX SBOM), ``result`` (``PolicyResult``).

May import: the standard library, ``packaging``, ``license-expression``, ``cyclonedx`` (inside
functions), torch (inside functions only), and from this project ``card``, ``errors``,
``findings``, ``provenance.digests`` and the package's ``__version__`` (the SBOM's tool entry).
Never pytest, ``session`` or ``plugin``. Importing the package does not import torch.
"""

from __future__ import annotations

from .dependencies import kp_dependencies
from .license import kp_license
from .machine import Platform, probe_platform
from .marker import evaluate_kp_dependencies, evaluate_kp_license, write_session_sbom
from .result import PolicyResult, SubCheck
from .sbom import SbomWritten, write_sbom
from .spdx import LicensePolicy

__all__ = [
    "LicensePolicy",
    "Platform",
    "PolicyResult",
    "SbomWritten",
    "SubCheck",
    "evaluate_kp_dependencies",
    "evaluate_kp_license",
    "kp_dependencies",
    "kp_license",
    "probe_platform",
    "write_sbom",
    "write_session_sbom",
]
