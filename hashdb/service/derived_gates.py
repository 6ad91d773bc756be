"""The gates a derived hash's match must pass (service/matching.py applies them): how close, in
what colours, corroborated by what, each threshold with the measurement that set it."""

from __future__ import annotations

import math
from collections.abc import Sequence

from hashdb.hashing.colour import colour_gap
from hashdb.hashing.derived import CONTENT, DESKEWED, PART_SPLIT
from hashdb.types import DerivedHash

BITS_64 = ("phash", "dhash")

# Two derived hashes of regions covering the same share of their images (within 5 %) say the
# two images have the same layout; if they were the same picture, their whole-image PDQs
# would then be close too. Without that, such a match is a part two different pictures share:
# icons of one theme (the same glyph above different captions), card faces, pictograms.
# Measured on the full evaluation (BENCHMARKS.md, "Matching quality"): of the
# derived-to-derived matches of same-share regions, 702 of 704 that named the right image had
# whole-image PDQs within 63 bits, and 7 of the 9 false positives 64 bits or more apart.
SAME_SHARE = 0.05
WHOLE_CORROBORATION = 64

# Corner-masked hashes (hashing/masked.py) leave 80 % of the picture; that part must be all but
# unchanged. Measured on the full evaluation (BENCHMARKS.md, "Matching quality"): at 5 bits
# corner logos went 0.68/0.39 -> 0.94/0.79 (small/large) with one false positive added (two
# repeating warning patterns whose whole images are 32 bits apart); at 8 bits logos reached
# 0.95/0.85 but two moon phases matched a new moon (the covered corner held the lit part).
# The whole images must also be within 96 bits (a logo moved them by 50 at the median;
# unrelated pictures sit at 110 and more): at 8 bits that bound took out one false positive
# at no cost in recall.
MASKED_RADIUS = 5
MASKED_CORROBORATION = 96

# Two derived hashes that match must agree in colour too (hashing/colour.py): PDQ reads
# brightness only, and the derived hashes' false positives in the evaluation were mostly
# pictures that differ in colour alone: the flags of Ireland and Guinea through their trimmed
# regions (a colour gap of 55), a blue and a green folder icon (33), warning stripes on orange
# and on grey through the corner-masked hashes (61). A copy, and a copy greyed, brightened or
# saturated (colour.colour_gap scales the stored colours to fit), sits under 10; a hue turned
# by up to 28 degrees under 21. Measured on the evaluation (BENCHMARKS.md, "Matching quality"):
# any gap from 15 to 30 gives the same counts (false positives 6 -> 3 of 5,000, recall
# unchanged); the right matches' largest gap was 19.1 (full run) and 20.7 (medium).
# A whole-image PDQ carries no colours: a match through it, on either side, is not gated.
COLOUR_GAP = 25.0


# A lookup's windows (hashing/crops.py) are 18 tries at a stored picture's centred crops: each
# more try lets a look-alike whose whole image is just past PDQ's 31 bits (two clocks by one
# author, two flags of one layout, an emoji and its neighbour: whole images 32 to 48 bits
# apart) match through some window. Measured on the full evaluation (BENCHMARKS.md, "Matching
# quality"): windows against any stored crop no larger, within 31 bits, colours agreeing,
# took false positives 3 -> 11 of 5,000; against crops smaller than the window only (the
# same-size pairs were 5 of the 8 and no crop query's match), 5; within 28 bits too, 3 (main's,
# no window among them), with crop_95_90 0.769 -> 0.819 and crop_85 0.550 -> 0.613, two
# queries fewer each than at 31 bits (replayed on the first run's logged matches).
WINDOW_RADIUS = 28

# Enlarged copies of small images (hashing/enlarged.py). A small query's enlarged copy against
# a stored image's whole-image PDQ (or a query's whole image against a stored enlarged copy)
# compares two readings through a filter of a few pixels only when the whole-image side is not
# small itself (has no enlarged copy): a small whole image's PDQ reads its pixels unsmoothed,
# 20 to 40 bits from its own enlarged copy; such pairs gave a false positive (two person icons
# of one theme at 30 bits) and no right match another pair did not give too. Two enlarged
# copies are the same picture read the same way: most right matches sit at 0 to 12 bits, but
# small look-alikes meet too (two checker patterns at 14 bits, tiles of one series at 28 and
# 30, two muffin drawings at 24), whose whole images are 90 to 104 bits apart (the muffins 32).
# From 12 to 22 bits the whole images must be within WHOLE_CORROBORATION, as for regions of the
# same share. Measured on the full evaluation (BENCHMARKS.md, "Matching quality"): every pair
# within 31 bits (colours agreeing) took resize 0.850 -> 0.956 and false positives 4 -> 9 of
# 5,000; these rules resize 0.944, false positives 4 (main's), mean recall 0.863 -> 0.869;
# 12 bits alone 0.931; the corroborated band to 24 bits lets the muffins in.
ENLARGED_RADIUS = 12
ENLARGED_CORROBORATED = 22

# A query's trimmed or content region whose PDQ is within this many bits of the query's own
# whole-image PDQ (a trim of a pixel or two) says what the whole image says: matched at up to
# 31 bits, it would let the whole image match at up to 31 + this. Measured on the full
# evaluation (BENCHMARKS.md, "Matching quality"): at 20, 24, 28 or 32 bits it took out one
# false positive (a card whose 2-pixel trim matched another card at 26 bits, the whole
# images 36 apart) and no query's match.
NEAR_WHOLE = 24

# A part of a composite picture (DerivedHash.part: one of two pictograms side by side, one
# glyph of an icon) can be the same picture as the stored image only if the stored side cut
# out the same part (records stored before stored images kept no parts, see
# derived.PART_SPLIT, or a picture under bands that is no larger): a stored content region
# small enough to be such a part (a block with
# a runner-up of PART_SPLIT its length holds at most 1 / (1 + PART_SPLIT) of the picture),
# or a region of the same share whose whole image corroborates it (see SAME_SHARE). Against
# a whole image, a trimmed region or a large content region, the part is one picture found
# inside another: a barber's pictogram naming the sign that pairs it with a beauty salon's,
# an icon's question mark naming another icon's cross. Measured on the full evaluation (BENCHMARKS.md,
# "Matching quality"): 3 false positives went (4 with NEAR_WHOLE's), no query's match; with
# no bound on the stored share, only 1.
PART_SHARE = 1 / (1 + PART_SPLIT)


def colours_differ(query: str | None, stored: str | None) -> bool:
    # Unknown on either side (a row stored before layouts were kept, an older client): no gate.
    return query is not None and stored is not None and colour_gap(query, stored) > COLOUR_GAP


def could_be_part(stored_via: str, stored_share: float | None) -> bool:
    return stored_via == CONTENT and (stored_share is None or stored_share <= PART_SHARE)


def near(hexv: str, others: Sequence[int], bits: int) -> bool:
    value = int(hexv, 16)
    return any((value ^ other).bit_count() <= bits for other in others)


def same_share(query: float | None, stored: float | None) -> bool:
    if not query or not stored:
        return False  # unknown (a row stored before shares were kept, a partner's older client)
    return abs(math.log(query / stored)) <= SAME_SHARE


def fits_window(window: float | None, stored: float | None) -> bool:
    # A window of the query is a crop of what the query kept of the picture, so it holds less
    # of the picture than its own share: a stored crop as large (within SAME_SHARE) says the
    # query is the whole picture, which its whole-image PDQ answers, and a larger one is
    # another part of the picture. See WINDOW_RADIUS for what the same-size pairs cost.
    if not window or not stored:
        return False
    return math.log(stored / window) < -SAME_SHARE


def deskewed_crop(derived: DerivedHash) -> bool:
    return derived.via == DESKEWED and derived.share is not None
