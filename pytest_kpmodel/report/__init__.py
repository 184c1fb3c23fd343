"""Run reports: the JSON file CI gates read, the HTML page people read, the terminal summary.

Modules, bottom up (import them directly; this package imports nothing, so importing it never
pulls matplotlib, PIL or torch):

- ``json_report``: ``kp-report.json`` from a run (``build``, ``write``; stable keys, ``schema``).
- ``assets``: artifact entries (images beside the JSON), writing them, inlining them as
  ``data:`` URIs.
- ``plots``: the page's charts (matplotlib, Agg canvas) as ``data:image/png`` URIs.
- ``gallery``, ``feature_maps``: drawing sample predictions and backbone features into
  artifacts.
- ``markup``, ``verdicts``, ``page``: HTML pieces, what checks and gates say per section, the
  report being rendered.
- ``sections``: one module per page section; ``html``: the page (``render``, ``write_html``).
- ``write``: a finished run -> its report folder (what ``--kp-report`` writes).
- ``terminal``: the summary pytest prints; ``cli``: ``kpmodel report DIR`` re-renders the page.

May import: ``errors``, ``environment`` (the JSON's environment), ``data`` (images for the
gallery), ``metrics.oks`` (the gallery's per-person OKS), ``gates`` (metric names), ``header``
(the run's header line in the Markdown summary); the run only through what it is handed
(``write``, ``json_report`` and ``markdown`` take the session: they read what it holds and ask
it ``computed(piece)``, never computing anything). Everything else reads only the report dict. Never pytest, ``session`` or ``plugin``.
"""
