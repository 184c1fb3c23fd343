"""``kpmodel init``: an acceptance-spec folder for a received model, from a measured first run.

``measure`` runs the model once through the plugin's own session (the same prediction, metric
and timing code a spec run uses) and returns what it measured; ``spec_files`` turns that into one
test file per concern, each threshold the measured value minus the user's margin with a comment
saying where it came from, and a ``pytest.ini``; ``cli`` is the command, which never overwrites a
file. No pytest here: the scaffolded spec is what pytest runs.
"""
