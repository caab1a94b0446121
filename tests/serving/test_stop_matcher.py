import itertools

from hypothesis import given
from hypothesis import strategies as st

from serving.stop_matcher import StopMatcher


def feed(stops: tuple[str, ...], pieces: list[str]) -> tuple[str, bool]:
    matcher = StopMatcher(stops)
    out = ""
    for piece in pieces:
        text, stopped = matcher.push(piece)
        out += text
        if stopped:
            return out, True
    return out + matcher.flush(), False


def test_stop_split_across_pieces_is_never_emitted() -> None:
    assert feed(("END",), ["abc E", "N", "D tail"]) == ("abc ", True)


def test_partial_match_is_held_then_released() -> None:
    matcher = StopMatcher(("END",))
    assert matcher.push("abc EN") == ("abc ", False)
    assert matcher.push("X") == ("ENX", False)


def test_earliest_of_several_stops_wins() -> None:
    assert feed(("world", "lo"), ["hello world"]) == ("hel", True)


def test_held_text_is_flushed_at_the_end() -> None:
    assert feed(("END",), ["x E"]) == ("x E", False)


@given(
    text=st.text(alphabet="abE ND", max_size=30),
    cuts=st.lists(st.integers(min_value=0, max_value=30), max_size=6),
)
def test_any_split_gives_the_text_up_to_the_first_stop(text: str, cuts: list[int]) -> None:
    points = sorted({min(cut, len(text)) for cut in cuts} | {0, len(text)})
    pieces = [text[a:b] for a, b in itertools.pairwise(points)]
    index = text.find("END")
    expected = (text, False) if index < 0 else (text[:index], True)
    assert feed(("END",), pieces) == expected
