"""Torch containers and the pickles in them, one module per format:

* :mod:`.torch_zip` - zip archives: ``torch.save`` files (since torch 1.6), TorchScript, numpy
  ``.npz``; :mod:`.pt2` - torch.export archives inside them;
* :mod:`.legacy` - the legacy non-zip format (``_use_new_zipfile_serialization=False``);
* :mod:`.tar` - legacy tar checkpoints (torch < 0.1.10), always ``unverifiable``;
* :mod:`.pickles` - plain pickles, and pickles stacked after another one or after the end of
  a container;
* :mod:`.salvage` - the members of archives that are already a finding, still scanned so that
  what they import is named.

Each scanner takes a :class:`..context.ScanContext` and the byte range it covers, adds its
findings to the context's collector and returns the kind it found. This package imports the
format parsers beside it (:mod:`..zip_scan`, :mod:`..pickle_scan`, :mod:`..numpy_scan`,
:mod:`..numpy_pickle`, :mod:`..inert`), never :mod:`..scan` or :mod:`..dispatch`.
"""
