"""Every number the address matcher scores with, named and explained in one place.

A score is a similarity of the names (1.0 as typed, less for a spelling variant, an alias or a sound-alike)
plus adjustments for how well the rest of the text fits (the place stated, the doorplate, the building
number). Answers below ``LOW_CONFIDENCE`` or within ``AMBIGUITY_MARGIN`` of another place are flagged
``ambiguous``. The caps below keep answers that may name a place the library does not hold under 0.9, the
level at which answers were right 99.9 % of the time on the open-world evaluation
(``bench/address_eval_open.py``, docs/benchmarks.md).
"""

from __future__ import annotations

from typing import Final

# flags ------------------------------------------------------------------------------------------
AMBIGUITY_MARGIN: Final = 0.06
"""Two different places within this much of each other: the answer is flagged ambiguous."""
LOW_CONFIDENCE: Final = 0.75
"""Below this, an answer is flagged ambiguous whatever the others score."""

# names: how alike the text's name is to a known one --------------------------------------------
SUBSTITUTED_NAME_CAP: Final = 0.74
"""The most a known name can score for a text that may name another place (``_another_name``): a distinctive
part (the name without 小区/家园/路 …) of the same length with characters that do not sound the same (建设新村
for 建业新村), or another generic ending (万和家园 for 万和公寓). That is as likely a place the library does not
hold as a slip, so it stays below ``LOW_CONFIDENCE``: flagged, never a confident building of a neighbouring
compound (issue #12). Likewise a name whose distinctive part shares no character with the known one (子京 for
紫荆: alike by sound or shape only), one with two or more characters glued after a known name (长青门第 where
长青小区 is known), and a known name followed by another compound ending, also one the stems keep (丁香里 where
丁香小区 is known: ``matcher.COMPOUND_ENDINGS``); see ``matcher._another_name``. Homophones of a character (风林
for 丰林), missing and doubled characters, and a dropped ending (丰林 for 丰林小区) are not capped."""
SWAPPED_NAME_SIM: Final = SUBSTITUTED_NAME_CAP
"""Similarity of a name whose two-character distinctive part is read backwards, ending unchanged (荣光小区 for
光荣小区, 兴华 for 华兴): sibling compounds are named so (华兴小区 and 兴华家园 stand in one town), so it is as
often another place as a slip: the building is a candidate, the answer not confident. It is the score of such
a name, not a floor: a floor let four-character names (whose plain similarity is 0.75) and the stated
community's bonus lift them over ``LOW_CONFIDENCE`` (issue #12). Other swaps (水局利 for 水利局, 蔷薇区小) garble
a name rather than name another, and score at least this (it was 0.86, answered unflagged, until the
open-world evaluation showed swapped invented names answered as a neighbour's building)."""
PINYIN_SCORE_CAP: Final = 0.89
"""The most an answer read from pinyin can score: keyboard slips in pinyin (bajiaziang) land on other
compounds' names often enough (1.7 % of such answers on the open-world evaluation) that none is worth 0.9."""
OTHER_PLACE_PENALTY: Final = 0.3
"""Score taken from a building outside the county, town or community the text states: it stays a
candidate (the text may name the wrong community) but never beats one inside."""
STATED_PLACE_BONUS: Final = 0.02
"""Score added to a building inside the community the text states; not to a compound whose name matched with
less than ``LOW_CONFIDENCE``, which it would lift over the flag (``matcher.AddressMatcher._adj``)."""

STEM_WEIGHT: Final = 0.97
"""A match of the distinctive parts only (丰林 for 丰林小区) counts a little less than of the whole names."""
SOUND_WEIGHT: Final = 0.95
"""A match by sound (风林 for 丰林) counts a little less than one by characters."""
ALIAS_WEIGHT: Final = 0.98
"""A name matched through an alias counts a little less than the standard name itself."""
DROPPED_XIAOQU_SIM: Final = 0.97
"""A compound's name typed without its ending 小区 (the ending most often dropped)."""
DROPPED_ENDING_SIM: Final = 0.965
"""A compound's name typed without another ending (花园, 家园 …)."""
ROAD_ALIAS_SIM: Final = 0.97
"""A road typed by an alias (府前 for 府前街, another suffix)."""
FUZZY_FLOOR: Final = 0.6
"""The least similarity at which a known name is looked at as what a misspelt name may mean."""
REGION_FUZZY_FLOOR: Final = 0.72
"""The least similarity at which a misspelt town or community name is taken for a known one."""
FIX_FLOOR: Final = 0.7
"""The least similarity at which characters no known name covers are read as a misspelt known name."""
FIX_BRIDGE_FLOOR: Final = 0.75
"""The same, for a stretch bridging two known names (the typo sits between them)."""
DOUBLED_FLOOR: Final = 0.8
"""The same, for a doubled or stray character next to a known name (临晋路路)."""
FIX_KEEP_MARGIN: Final = 0.12
"""Spelling variants kept: those within this much of the best (a doorplate may tell them apart)."""

# fit: how well the rest of the text agrees with a candidate ---------------------------------------
AREA_SCORE: Final = 0.9
"""A place the text states (its community, town or county) when nothing more precise is known; also a point
of interest (a station or unit) named in the text."""
DOORPLATE_AGREES_BONUS: Final = 0.03
"""The compound typed and the doorplate typed lead to the same place."""
DOORPLATE_DISAGREES_PENALTY: Final = 0.1
"""The doorplate typed is another compound's (or the compound typed is not the one at the doorplate)."""
UNKNOWN_NUMBER_PENALTY: Final = 0.25
"""The compound is known but not the building number typed: answered at compound level."""
LONE_BUILDING_PENALTY: Final = 0.05
"""A single-building compound (or a doorplate's compound) answered without a building number typed."""
BARE_DOORPLATE_PENALTY: Final = 0.03
"""A doorplate's building answered without any compound typed."""
TYPED_AT_DOORPLATE_BONUS: Final = 0.02
"""The compound typed is the one at the doorplate typed."""
BARE_ROAD_PENALTY: Final = 0.15
"""A road typed without a number: answered at road level."""
NEAREST_DOOR_WEIGHT: Final = 0.75
"""A road whose number the library does not hold: the road's similarity counts for this much."""
LABEL_ONLY_SCORE: Final = 0.8
"""A bare building number (3号楼) that only one building of the area stated has."""
LABEL_SHARED_SCORE: Final = 0.5
"""A bare building number that several buildings of the area have: their area answers."""
