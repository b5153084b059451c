"""Address parsing, normalisation and matching against the standard address library (issue #3).

Public API::

    normalize(text) -> str
    parse(text, gazetteer=None) -> ParsedAddress
    check_address(text) -> str            # raises gridmap.errors.InvalidInput
    AddressMatcher.from_layers(layers) -> AddressMatcher
    AddressMatcher.match(text) -> MatchResult
"""

from gridmap.address.matcher import (
    AddressMatcher,
    BuildingRef,
    Candidate,
    MatchResult,
    check_address,
)
from gridmap.address.normalize import normalize
from gridmap.address.parse import FIELDS, ParsedAddress, parse

__all__ = [
    "AddressMatcher",
    "BuildingRef",
    "Candidate",
    "FIELDS",
    "MatchResult",
    "ParsedAddress",
    "check_address",
    "normalize",
    "parse",
]
