"""Commodity lists: parsing, unknown values and harmonisation (METHOD.md, Data model).

METHOD.md: a commodity value is a comma list; empty, NULL, ``NA`` and whitespace-only values mean
"unknown"; names not in the harmonisation table are kept trimmed as they are, never dropped. So
"None", "null", "n/a" or "Lead;Zinc" are names like any other. Where METHOD.md is silent (see
core/API.md): ``NA`` is recognised in any case ("na", "Na"), a float NaN (a missing value of a
numeric column) is NULL, and an empty or ``NA`` item of a list ("Gold,,NA") is skipped.

:func:`split_tokens` is the more lenient reading that the harmonise algorithm applies to raw
source data (';' separates too, "n/a", "null", "none", "nan" are missing); it is not used here.
"""
from __future__ import annotations

import re
from typing import Iterable, Mapping, Optional

#: Values that mean "unknown" (METHOD.md), compared trimmed and case-folded; None too.
UNKNOWN_TOKENS = frozenset({"", "na"})

#: Spellings of a missing value in raw source data, for :func:`split_tokens` (harmonise).
RAW_MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none"})

_RAW_SEPARATORS = re.compile(r"[,;]")


def normalise_key(name: str) -> str:
    """The identity of a commodity name: trimmed, inner whitespace collapsed, case-folded."""
    return " ".join(str(name).split()).casefold()


def _prepare_table(harmonisation: Optional[Mapping[str, str]]):
    if not harmonisation:
        return {}
    table = {}
    for raw, harmonised in harmonisation.items():
        if raw is None:
            continue
        table[normalise_key(raw)] = "" if harmonised is None else str(harmonised).strip()
    return table


def split_names(text) -> list:
    """The names of a comma list (METHOD.md), trimmed; unknown values and items removed."""
    if text is None:
        return []
    if isinstance(text, float) and text != text:  # NaN: a missing value of a numeric column
        return []
    out = []
    for token in str(text).split(","):
        token = " ".join(token.split())
        if token.casefold() not in UNKNOWN_TOKENS:
            out.append(token)
    return out


def split_tokens(text) -> list:
    """Raw source reading (harmonise): the names of a comma or semicolon separated list, trimmed;
    missing values ("", NA, N/A, nan, null, none) removed."""
    if text is None:
        return []
    if isinstance(text, float) and text != text:  # NaN from a numeric column
        return []
    out = []
    for token in _RAW_SEPARATORS.split(str(text)):
        token = " ".join(token.split())
        if token.casefold() not in RAW_MISSING_TOKENS:
            out.append(token)
    return out


def parse_commodities(text, harmonisation: Optional[Mapping[str, str]] = None) -> tuple:
    """Harmonised commodity names of one attribute value, sorted by identity, without duplicates.

    ``harmonisation`` maps raw names to harmonised names (keys compared trimmed and case-folded);
    names not in it are kept trimmed; a name mapped to an empty value is not a commodity and is
    dropped; a harmonised value may itself be a list ("Lead, Zinc").

    >>> parse_commodities(" Gold, copper ,NA", {"copper": "Copper"})
    ('Copper', 'Gold')
    """
    table = _prepare_table(harmonisation)
    return _parse(text, table)


def _parse(text, table) -> tuple:
    return tuple(name for name, _from_table in _parse_marked(text, table))


def _parse_marked(text, table) -> tuple:
    """(name, came from the table) pairs, one per commodity, sorted by identity."""
    names = {}
    for token in split_names(text):
        mapped = table.get(token.casefold(), token) if table else token
        from_table = mapped != token or token.casefold() in table
        for name in split_names(mapped) if mapped != token else [token]:
            key = name.casefold()
            rank = (not from_table, name)  # the table's spelling first, then the one sorting first
            if key not in names or rank < names[key]:
                names[key] = rank
    return tuple((names[k][1], not names[k][0]) for k in sorted(names))


class Vocabulary:
    """Commodity names seen in a data set, as integer codes.

    Two names that differ only in case are one commodity; its display name is the table's
    harmonised name when the table gave it, or else the spelling that sorts first, so the result
    does not depend on the order of the features.
    """

    def __init__(self, harmonisation: Optional[Mapping[str, str]] = None):
        self._table = _prepare_table(harmonisation)
        self._display = {}
        self._seen = {}

    def parse(self, text) -> tuple:
        """Keys (case-folded names) of one attribute value; remembers display names. A value
        seen before gives what it gave then (the display names it named are already in): real
        inventories repeat a few hundred values over tens of thousands of mines."""
        seen = (type(text), text)         # 1, 1.0 and True are equal keys, not equal texts
        try:
            return self._seen[seen]
        except (KeyError, TypeError):     # new, or not hashable
            pass
        keys = self._parse(text)
        try:
            self._seen[seen] = keys
        except TypeError:
            pass
        return keys

    def _parse(self, text) -> tuple:
        out = []
        for name, from_table in _parse_marked(text, self._table):
            key = name.casefold()
            rank = (not from_table, name)
            if key not in self._display or rank < self._display[key]:
                self._display[key] = rank
            out.append(key)
        return tuple(out)

    def freeze(self):
        """Sorted display names and a key -> code mapping."""
        shown = {k: rank[1] for k, rank in self._display.items()}
        keys = sorted(shown, key=lambda k: (shown[k].casefold(), shown[k]))
        return [shown[k] for k in keys], {k: i for i, k in enumerate(keys)}


def join_names(names: Iterable[str]) -> Optional[str]:
    """Sorted, comma-separated names; None for an empty set."""
    names = sorted(names, key=lambda s: (s.casefold(), s))
    return ",".join(names) if names else None
