"""Hex <-> codes, input checking with typed errors, the factory, and FAISS in forked workers."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest
from _index_data import random_codes
from hypothesis import given
from hypothesis import strategies as st

from hashdb.bits import codes_to_hex, hex_to_codes, popcount, popcount_by_table
from hashdb.errors import HashDBError, InvalidHash, InvalidInput
from hashdb.index._bits import bit_field
from hashdb.index.base import HashIndex
from hashdb.index.faiss_index import FaissIndex, set_threads
from hashdb.index.linear import LinearIndex
from hashdb.index.registry import LINEAR_MAX_SIZE, make_index


@given(bits=st.sampled_from((64, 256)), data=st.data())
def test_hex_round_trip_and_bit_order(bits: int, data: st.DataObject) -> None:
    raw = data.draw(st.lists(st.binary(min_size=bits // 8, max_size=bits // 8), max_size=20))
    hexes = [r.hex() for r in raw]
    codes = hex_to_codes(hexes, bits)
    assert codes.shape == (len(raw), bits // 8) and codes.dtype == np.uint8
    assert codes_to_hex(codes) == hexes
    assert hex_to_codes([h.upper() for h in hexes], bits).tobytes() == codes.tobytes()
    for h, row in zip(hexes, codes):
        # The hex's first bit is the most significant bit of byte 0.
        assert int.from_bytes(row.tobytes(), "big") == int(h, 16)
        assert (row[0] >> 7) == int(h[0], 16) >> 3


@given(data=st.binary(min_size=32, max_size=32), start=st.integers(0, 255), width=st.integers(1, 32))
def test_bit_field_matches_python_ints(data: bytes, start: int, width: int) -> None:
    width = min(width, 256 - start)
    code = np.frombuffer(data, dtype=np.uint8).reshape(1, 32)
    expected = (int.from_bytes(data, "big") >> (256 - start - width)) & ((1 << width) - 1)
    assert int(bit_field(code, start, width)[0]) == expected


@pytest.mark.parametrize(
    "hexes",
    [
        ["ab" * 31],  # too short
        ["ab" * 33],  # too long
        ["ab" * 32, "ab" * 31],  # one bad length among good ones
        ["zz" * 32],  # not hex
        ["ab" * 15 + "a b" + "c" * 31],  # whitespace inside, right length
        ["\uff10" * 64],  # fullwidth digits
        [b"ab" * 32],  # bytes, not str
    ],
)
def test_bad_hex_is_invalid_hash(hexes: list[str]) -> None:
    with pytest.raises(InvalidHash):
        hex_to_codes(hexes, 256)


def test_empty_hex_list_and_bad_bits() -> None:
    assert hex_to_codes([], 256).shape == (0, 32)
    with pytest.raises(InvalidInput):
        hex_to_codes(["ab"], 12)


@pytest.fixture(params=["linear", "faiss"])
def index(request: pytest.FixtureRequest) -> HashIndex:
    if request.param == "linear":
        return LinearIndex(256)
    return FaissIndex(256)


@pytest.mark.parametrize(
    "ids, codes",
    [
        ([1, 2], np.zeros((3, 32), dtype=np.uint8)),  # count mismatch
        ([1], np.zeros((1, 8), dtype=np.uint8)),  # 64-bit codes into a 256-bit index
        ([1], np.zeros((1, 32), dtype=np.int64)),  # wrong dtype
        ([1], np.zeros(32, dtype=np.uint8)),  # 1-D
        ([1], [[0] * 32]),  # not an array
        ([-1], np.zeros((1, 32), dtype=np.uint8)),  # negative id
        ([1.5], np.zeros((1, 32), dtype=np.uint8)),  # not an integer
        ([True], np.zeros((1, 32), dtype=np.uint8)),  # bool is not an id
        (np.array([1.0]), np.zeros((1, 32), dtype=np.uint8)),
    ],
)
def test_bad_add_is_a_typed_error(index: HashIndex, ids: object, codes: object) -> None:
    with pytest.raises(HashDBError):
        index.add(ids, codes)  # type: ignore[arg-type]
    assert len(index) == 0


@pytest.mark.parametrize("radius", [-1, 257, 3.0, True, "31", None])
def test_bad_radius_is_a_typed_error(index: HashIndex, radius: object) -> None:
    index.add([1], np.zeros((1, 32), dtype=np.uint8))
    with pytest.raises(InvalidInput):
        index.search(np.zeros((1, 32), dtype=np.uint8), radius)  # type: ignore[arg-type]


def test_empty_inputs(index: HashIndex) -> None:
    assert index.search(np.zeros((2, 32), dtype=np.uint8), 31) == [[], []]
    index.add([], np.zeros((0, 32), dtype=np.uint8))
    index.remove([])
    index.remove([5, 6])  # unknown ids are ignored
    assert len(index) == 0
    assert index.search(np.zeros((0, 32), dtype=np.uint8), 31) == []
    with pytest.raises(InvalidInput):
        index.remove([-3])


def test_both_implementations_satisfy_the_protocol() -> None:
    assert isinstance(LinearIndex(64), HashIndex)
    assert isinstance(FaissIndex(64), HashIndex)


def test_make_index_chooses_by_expected_size() -> None:
    assert isinstance(make_index(256, 10), LinearIndex)
    assert isinstance(make_index(256, LINEAR_MAX_SIZE), LinearIndex)
    big = make_index(256, LINEAR_MAX_SIZE + 1)
    assert isinstance(big, FaissIndex) and big.bits == 256
    assert make_index(64, 10**7).bits == 64


def test_set_threads_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        set_threads(0)


# Python >= 3.12 warns about fork() in a process with threads (numpy's BLAS pool); the point of
# this test is exactly a fork, as gunicorn does with a preloaded app.
@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_index_searched_in_parent_still_works_in_a_forked_child() -> None:
    rng = np.random.default_rng(0)
    codes = random_codes(rng, 5_000, 256)
    index = FaissIndex(256)  # default threads: the gunicorn-safe setting
    index.add(np.arange(5_000), codes)
    expected = index.search(codes[:20], 31)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: answer, report, exit without running pytest's teardown
        status = 1
        try:
            signal.alarm(20)
            status = 0 if index.search(codes[:20], 31) == expected else 2
        finally:
            os.write(write, bytes([status]))
            os._exit(status)
    os.close(write)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("search in the forked child hung")
    assert os.read(read, 1) == b"\x00"
    os.close(read)
    assert os.waitstatus_to_exitcode(status) == 0


@given(st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=50))
def test_popcount_paths_match_python(values: list[int]) -> None:
    words = np.array(values, dtype=np.uint64)
    expected = [v.bit_count() for v in values]
    assert popcount(words).tolist() == expected
    assert popcount_by_table(words).tolist() == expected  # the numpy < 2.0 path
