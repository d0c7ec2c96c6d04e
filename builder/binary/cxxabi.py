"""Which libstdc++ string/list ABI a library's exported C++ symbols use, without demangling.

PyTorch's binary check pipes ``nm | c++filt`` through regexes: on libtorch_cpu.so that
demangles 520k static symbols (~4 s), and the regexes only see what c++filt prints (no
return types for plain functions, ``std::string`` vs ``std::basic_string<``).  This module
reads the Itanium mangling of the *exported* (dynamic) symbols directly (~0.1 s):

* **namespace membership** is a prefix test on the mangled name: entities nested in ``c10``
  are ``_ZN3c10...`` (``_ZNK3c10`` for const methods, ``_ZTVN3c10`` for vtables,
  ``_ZThn8_N3c10`` for thunks, ``_ZZN3c10`` for function-local statics, ...).  The length
  prefix makes the test exact: ``3c10`` can never match ``c101``.
* **cxx11 ABI**: the new-ABI types live in ``std::__cxx11`` (``NSt7__cxx11``) and functions
  returning them carry the ``B5cxx11`` ABI tag.  Neither can occur inside a C++ identifier,
  so a substring test is exact.
* **pre-cxx11 ABI**: the old ``std::string`` is the abbreviation ``Ss`` (``Sb`` for other
  ``std::basic_string``), the old ``std::list`` is ``St4list``.  ``Ss``/``Sb`` *can* occur
  inside identifiers (``_ZN3c105ClassSs...``), so names that contain them are re-checked by a
  small scanner that skips length-prefixed identifiers and numeric fields.  Only those few
  candidates pay for the scan.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from builder.binary.elf import dynamic_symbols

__all__ = [
    "TORCH_NAMESPACES",
    "AbiCounts",
    "abi_markers",
    "count_abi_symbols",
    "namespace_matcher",
]

TORCH_NAMESPACES: tuple[str, ...] = ("c10", "at", "torch", "caffe2")

_CXX11_MARKERS = ("St7__cxx11", "B5cxx11")
_OLD_CANDIDATES = re.compile(r"S[sb]|St4list")
# Expression operators whose operand lists are closed by 'E'.
_LIST_OPERATORS = frozenset({"cl", "il", "tl", "nw", "na"})

# Special-name prefixes (vtables, typeinfo, thunks, guard variables, ...) before the entity.
_CALL_OFFSET = r"(?:hn?\d+_|vn?\d+_n?\d+_)"
_SPECIAL = rf"(?:T[VTISWHC]|G[VR]|T{_CALL_OFFSET}|Tc{_CALL_OFFSET}{_CALL_OFFSET})"


@dataclass(frozen=True)
class AbiCounts:
    """Exported symbols of the given namespaces, by the string/list ABI they mention.

    A symbol that mentions both ABIs counts in both.  ``unparsed`` counts names holding an
    old-ABI look-alike that the scanner could not follow; they are not counted as pre-cxx11.
    """

    cxx11: int
    pre_cxx11: int
    total: int = 0
    unparsed: int = 0


def namespace_matcher(namespaces: Sequence[str]) -> Callable[[str], bool]:
    """A predicate: is this mangled name an entity (or its vtable, thunk, ...) in a namespace?

    ``namespaces`` are C++ spellings: ``"c10"``, ``"torch::jit"``, ``"std"``.
    """
    if not namespaces:
        raise ValueError("namespace_matcher needs at least one namespace")
    alternatives = []
    for ns in namespaces:
        parts = [p for p in ns.split("::") if p]
        if not parts or not all(re.fullmatch(r"[A-Za-z_]\w*", p) for p in parts):
            raise ValueError(f"not a C++ namespace name: {ns!r}")
        if parts[0] == "std":  # std has its own abbreviation and may appear un-nested
            tail = "".join(f"{len(p)}{p}" for p in parts[1:])
            alternatives.append(f"N[rVK]*[RO]?St{tail}|St{tail}" if tail else "N[rVK]*[RO]?St|St")
        else:
            alternatives.append("N[rVK]*[RO]?" + "".join(f"{len(p)}{p}" for p in parts))
    pattern = re.compile(rf"_Z{_SPECIAL}?Z*(?:{'|'.join(alternatives)})")
    return lambda name: pattern.match(name) is not None


def abi_markers(mangled: str) -> tuple[bool, bool | None]:
    """(uses cxx11 string/list, uses pre-cxx11 string/list) for one mangled name.

    The second value is None when the name holds an old-ABI look-alike that the scanner
    could not follow.
    """
    cxx11 = any(marker in mangled for marker in _CXX11_MARKERS)
    if _OLD_CANDIDATES.search(mangled) is None:
        return cxx11, False
    try:
        return cxx11, _Scanner(mangled).has_old_abi()
    except (IndexError, ValueError):
        return cxx11, None


def count_abi_symbols(path: str | os.PathLike[str], namespaces: Sequence[str]) -> AbiCounts:
    """Count the defined dynamic symbols of ``namespaces`` that use each libstdc++ ABI."""
    in_namespace = namespace_matcher(namespaces)
    cxx11 = old = total = unparsed = 0
    for name in dynamic_symbols(path, defined_only=True):
        if not in_namespace(name):
            continue
        total += 1
        new_abi, old_abi = abi_markers(name)
        cxx11 += new_abi
        old += old_abi is True
        unparsed += old_abi is None
    return AbiCounts(cxx11=cxx11, pre_cxx11=old, total=total, unparsed=unparsed)


@dataclass
class _Frame:
    """An open construct that 'E' (or '_' for C and A) closes; for literals (L) and
    construction vtables (C), whether the type was read, so that digits are a value."""

    kind: str
    typed: bool = False


class _Scanner:
    """Walks an Itanium mangled name far enough to tell identifiers from abbreviations.

    It is not a demangler: it only needs to know, at each position, whether digits are an
    identifier length (skip the identifier) or a number (seq-ids, template parameter
    indices, literal values, discriminators, array bounds, thunk offsets).  Literal values
    follow a type inside ``L...E``, hence the frame stack.
    """

    def __init__(self, mangled: str) -> None:
        self.s = mangled.split(".", 1)[0]  # ".cold", ".isra.0": clone suffixes, not mangling
        self.i = 2  # past "_Z"
        self.frames: list[_Frame] = []
        self.after_std = False

    def has_old_abi(self) -> bool:
        if not self.s.startswith("_Z"):
            return False
        self._special_prefix()
        while self.i < len(self.s):
            if self._step():
                return True
        return False

    # -- helpers -------------------------------------------------------------------------
    def _peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.s[j] if j < len(self.s) else ""

    def _skip_to_underscore(self, start: int) -> None:
        j = self.s.index("_", start)  # ValueError if absent: unparsable
        self.i = j + 1

    def _skip_number(self) -> None:
        if self._peek() == "n":
            self.i += 1
        while self._peek().isdigit():
            self.i += 1

    def _typed(self) -> None:
        if self.frames and self.frames[-1].kind in "LC":
            self.frames[-1].typed = True

    def _in_literal_value(self) -> bool:
        return bool(self.frames) and self.frames[-1].kind in "LC" and self.frames[-1].typed

    def _call_offset(self) -> None:
        kind = self._peek()
        self.i += 1
        for _ in range(2 if kind == "v" else 1):
            self._skip_number()
            if self._peek() != "_":
                raise ValueError("bad call offset")
            self.i += 1

    def _special_prefix(self) -> None:
        two = self.s[2:4]
        if two in ("TV", "TT", "TI", "TS", "TH", "TW", "GV", "GR"):
            self.i = 4
        elif two in ("Th", "Tv"):
            self.i = 3
            self._call_offset()
        elif two == "Tc":
            self.i = 4
            self._call_offset()
            self._call_offset()
        elif two == "TC":  # construction vtable: <type> <number> _ <type>
            self.i = 4
            self.frames.append(_Frame("C"))

    # -- one token -----------------------------------------------------------------------
    def _step(self) -> bool:
        c = self._peek()
        after_std, self.after_std = self.after_std, False
        if c.isdigit():
            return self._digits(after_std)
        if c == "S":
            return self._substitution()
        if c == "E":
            self._end()
        elif c == "_":
            self._underscore()
        elif c in "NIFXJZ":
            self.frames.append(_Frame(c))
            self.i += 1
        elif c == "L":
            lz = self.s.startswith("_Z", self.i + 1)
            self.frames.append(_Frame("z" if lz else "L"))
            self.i += 3 if lz else 1
        elif c in "TDCAUf":
            self._prefixed(c)
        else:
            self._other(c)
        return False

    def _other(self, c: str) -> None:
        pair = self.s[self.i:self.i + 2]
        if pair == "sZ":  # sizeof...(pack): not the 'Z' of a local name
            self.i += 2
        elif pair in _LIST_OPERATORS and self.frames and self.frames[-1].kind == "X":
            self.frames.append(_Frame("X"))  # call/init-list/new expressions end with E
            self.i += 2
        else:
            if c.islower():
                self._typed()
            self.i += 1

    def _digits(self, after_std: bool) -> bool:
        j = self.i
        while j < len(self.s) and self.s[j].isdigit():
            j += 1
        if self._in_literal_value():
            self.i = j
            return False
        length = int(self.s[self.i:j])
        if length == 0 or j + length > len(self.s):
            raise ValueError("bad identifier length")
        self.i = j + length
        self._typed()
        return after_std and self.s[j:j + length] == "list"

    def _substitution(self) -> bool:
        nxt = self._peek(1)
        if nxt in ("s", "b"):
            return True
        if nxt == "t":
            self.after_std = True
            self.i += 2
            return False
        if nxt in ("a", "i", "o", "d"):
            self.i += 2
        else:
            j = self.s.index("_", self.i + 1)
            if not all(ch.isdigit() or ch.isupper() for ch in self.s[self.i + 1:j]):
                raise ValueError("bad substitution")
            self.i = j + 1
        self._typed()
        return False

    def _end(self) -> None:
        kind = self.frames.pop().kind  # IndexError when unbalanced: unparsable
        self.i += 1
        if kind == "U":  # closure type: Ul <signature> E [<number>] _
            self._skip_number()
            if self._peek() != "_":
                raise ValueError("bad closure")
            self.i += 1
        elif kind == "Z" and self._peek() == "d":  # default-argument scope: d [<number>] _
            self.i += 1
            self._skip_to_underscore(self.i)
        self._typed()

    def _underscore(self) -> None:
        top = self.frames[-1] if self.frames else None
        if top is not None and ((top.kind == "C" and top.typed) or top.kind == "A"):
            self.frames.pop()
            self.i += 1
        elif self._peek(1).isdigit():  # discriminator _<digit>
            self.i += 2
        elif self._peek(1) == "_":  # discriminator __<number>_
            self._skip_to_underscore(self.i + 2)
        else:
            self.i += 1

    def _prefixed(self, c: str) -> None:
        nxt = self._peek(1)
        if c == "T" and (nxt == "_" or nxt.isdigit()):  # template parameter T_ / T0_
            self._skip_to_underscore(self.i + 1)
            self._typed()
        elif c == "D" and nxt.isdigit():  # destructor D0/D1/D2
            self.i += 2
        elif c == "D" and nxt in "vFBU" and self._peek(2).isdigit():  # Dv4_, DF16_, DB8_
            self._skip_to_underscore(self.i + 2)
            self._typed()
        elif c == "D" and nxt in "tTOw":  # decltype / exception specs, closed by E
            self.frames.append(_Frame("X"))
            self.i += 2
        elif c == "D":
            self.i += 2
            if nxt != "p":
                self._typed()
        elif c == "C":  # constructors C1..C5, inheriting CI1/CI2; else complex prefix
            self.i += 3 if nxt == "I" else (2 if nxt.isdigit() else 1)
        elif c == "A" and (nxt.isdigit() or nxt == "_"):
            self._skip_to_underscore(self.i + 1)
        elif c == "A":  # array bound is an expression (e.g. T_), closed by '_'
            self.frames.append(_Frame("A"))
            self.i += 1
        elif c == "U":
            self._prefixed_u(nxt)
        elif c == "f":
            self._prefixed_f(nxt)
        else:  # other T-prefixed forms (Ty, Tn, Tt, Tp: lambda template parameters)
            self.i += 2

    def _prefixed_u(self, nxt: str) -> None:
        if nxt == "l":
            self.frames.append(_Frame("U"))
            self.i += 2
        elif nxt == "t":  # unnamed type Ut [<number>] _
            self._skip_to_underscore(self.i + 2)
            self._typed()
        else:  # vendor qualifier: an identifier follows
            self.i += 1

    def _prefixed_f(self, nxt: str) -> None:
        if nxt in ("p", "L"):  # function parameter reference fp.._ / fL..p.._
            self._skip_to_underscore(self.i + 2)
        else:
            self.i += 1
            self._typed()
