"""A static pickle scanner that follows CPython's ``_pickle`` unpickler, never executing it.

The scanner is a symbolic stack machine: it runs every opcode of protocols 0-5 the way the C
unpickler does (the stack, MARK fences, the memo with PUT/GET/MEMOIZE indirection, FRAME,
protocol-dependent ``fix_imports`` name mapping, C-string parsing of text literals, what
built-in objects do when APPEND/SETITEM/BUILD/REDUCE reach them) but instead of importing and
calling, it pushes symbolic values. It reads the stream like ``pickle.loads(bytes)``; where an
opcode crosses the end of a FRAME, ``pickle.load(file)`` - how torch.load reads data.pkl -
reads different bytes, so such a stream is a ``framing`` finding and is read a second time the
way the file reader does (see ``machine.VM.straddle``). tests/security/pickle_scan/
test_differential.py checks the machine against CPython's own unpickler.

So a ``STACK_GLOBAL`` whose module and name come from the memo or
from protocol-0 ``STRING`` opcodes is resolved exactly as CPython would resolve it; a GLOBAL
inside a FRAME is seen like any other; ``APPEND``/``SETITEMS``/``BUILD`` on objects that are
not plain lists/dicts (which CPython turns into attribute lookups and calls) are findings.

Policy on top of the machine (for torch files):

* opcodes: only those torch.save (protocol 2) emits - the same set torch's ``weights_only``
  unpickler accepts. Others (INST, OBJ, NEWOBJ_EX, EXT*, FRAME, STACK_GLOBAL, MEMOIZE, text
  opcodes, buffers...) are findings, and are still executed symbolically so that what they
  hide is reported too.
* globals: exact ``(module, name)`` match against :mod:`.allowlist` after the same
  ``_compat_pickle`` mapping CPython applies for protocol < 3. Dotted names, submodules and
  aliases never match.
* calls: REDUCE/NEWOBJ of allow-listed callables only, with their arguments checked: tensor
  rebuilds get storage bounds checks (offset, sizes, strides within the storage).
* persistent ids: ``('storage', type, key, location, numel)`` (zip) or the legacy 6-tuple
  with view metadata; the storages are handed back for the container to check.
* resource limits: opcode count, memo size/index, nesting and MARK depth, literal sizes.

Anything malformed stops the scan with an ``unverifiable`` finding (CPython would raise at the
same point - but only after running what came before, which has already been reported). Each
finding's label (unsafe / unverifiable / unsupported) is in :data:`..report.LABELS`.

Modules, one job each (this package imports only :mod:`..allowlist` and :mod:`..report`; the
rest of :mod:`pytest_kpmodel.security` imports it through the names below):

* :mod:`.opcodes` - the opcode table and the opcode sets torch files may use (data);
* :mod:`.values` - the symbolic values pushed instead of objects;
* :mod:`.rules` - :class:`PickleRules` and the torch presets (:func:`make_rules`);
* :mod:`.machine` - the machine: reading and framing, stack, memo, imports and calls, and
  :func:`scan_pickle` (one stream inside a buffer);
* :mod:`.stack`, :mod:`.literals`, :mod:`.structures`, :mod:`.imports` - the opcode handlers,
  joined in :mod:`.dispatch`;
* :mod:`.call_checks` - the arguments of allow-listed calls (tensor rebuilds and bounds);
* :mod:`.storages` - persistent ids (:class:`StorageTable`, :class:`StorageRef`);
* :mod:`.errors` - where a step stops (:class:`~.errors.Fatal`, :class:`~.errors.BadArgs`).
"""

from __future__ import annotations

from .machine import PickleResult, scan_pickle
from .opcodes import HEADER_OPCODES, OPCODES, TORCH_OPCODES
from .rules import PickleRules, make_rules
from .storages import StorageTable
from .values import OPAQUE, Blob, Container, Global, Obj, Opaque, StorageRef

__all__ = [
    "OPAQUE",
    "OPCODES",
    "TORCH_OPCODES",
    "HEADER_OPCODES",
    "PickleRules",
    "PickleResult",
    "StorageRef",
    "StorageTable",
    "make_rules",
    "scan_pickle",
    "Global",
    "Container",
    "Obj",
    "Opaque",
    "Blob",
]
