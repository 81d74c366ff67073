import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.emv.errors import EmvError, TlvError
from devices.emv.tlv import Tlv, decode, encode, encode_one, find, flatten


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def test_decode_opens_nested_templates():
    # a PSE answer: FCI template, proprietary template, issuer discretionary data
    fci = h("6F20840E315041592E5359532E4444463031A50E8801015F2D027A68BF0C03DF6100")
    (template,) = decode(fci)
    assert template.tag == 0x6F and template.constructed
    assert [child.tag for child in template.children] == [0x84, 0xA5]
    assert find([template], 0xDF61) == Tlv(0xDF61, b"")  # three templates deep
    assert find([template], 0x9F38) is None
    assert flatten([template]) == {
        0x84: b"1PAY.SYS.DDF01",
        0x88: h("01"),
        0x5F2D: b"zh",
        0xDF61: b"",
    }


def test_primitive_object_has_no_children():
    assert Tlv(0x5A, h("6228000100001F")).children == []
    assert not Tlv(0x9F02, h("000000000100")).constructed


def test_flatten_keeps_first_occurrence():
    items = decode(h("70059F360200019F3602AAAA"))
    assert flatten(items) == {0x9F36: h("0001")}


def test_padding_between_and_around_objects_is_skipped():
    assert decode(h("00FF5A0112FF00009C0100FF")) == [Tlv(0x5A, h("12")), Tlv(0x9C, h("00"))]


@pytest.mark.parametrize(
    ("length", "header"),
    [(0x7F, "7F"), (0x80, "8180"), (0xFF, "81FF"), (0x100, "820100"), (0x10000, "83010000")],
)
def test_lengths_use_shortest_long_form(length, header):
    encoded = encode_one(0x9F4B, bytes(length))
    assert encoded[:2] == h("9F4B")
    assert encoded[2 : 2 + len(header) // 2] == h(header)
    assert decode(encoded) == [Tlv(0x9F4B, bytes(length))]


def test_non_minimal_long_form_length_is_accepted():
    # some cards send 81 xx for short values; BER allows it
    assert decode(h("9F36810200A1")) == [Tlv(0x9F36, h("00A1"))]


@pytest.mark.parametrize(
    "stream",
    [
        "9F",  # tag cut after its first byte
        "9F81",  # tag cut inside a continuation
        "9F02",  # no length
        "5A81",  # long-form length without its byte
        "5A820100",  # two-byte length cut short
        "5A0512",  # value shorter than the length
        "5A80",  # indefinite length is not EMV
        "5A8401000000",  # four length bytes
        "1F8181818101",  # five-byte tag
        "6F035A0212",  # fine at the top, truncated inside the template (checked below)
    ],
)
def test_malformed_streams_raise_tlv_error(stream):
    with pytest.raises(TlvError):
        for item in decode(h(stream)):
            item.children  # noqa: B018 - opening the template is the point


@pytest.mark.parametrize("tag", [0, 0x1F, 0x9F, 0x9F80, 0xFF01, 0x5F8101FF, 0x1F81818101])
def test_malformed_tags_are_refused(tag):
    with pytest.raises(TlvError):
        Tlv(tag, b"")
    with pytest.raises(TlvError):
        encode_one(tag, b"")


def test_hostile_nesting_raises_tlv_error_not_recursion_error():
    nested = Tlv(0x5A, b"\x12")
    for _ in range(2000):
        nested = Tlv(0x70, encode([nested]))
    data = encode([nested])
    with pytest.raises(TlvError):
        find(decode(data), 0x5A)
    with pytest.raises(TlvError):
        flatten(decode(data))


def test_value_longer_than_three_length_bytes_is_refused():
    with pytest.raises(TlvError):
        encode_one(0x5A, bytes(0x1000000))


def _single(constructed: bool) -> st.SearchStrategy[int]:
    bit = 0x20 if constructed else 0x00
    return st.sampled_from([b for b in range(1, 0xFF) if b & 0x20 == bit and b & 0x1F != 0x1F])


def _multi(constructed: bool) -> st.SearchStrategy[int]:
    """Tags of class 1F/5F/9F/DF (or their constructed forms) with one to three more bytes."""
    firsts = [c | 0x1F | (0x20 if constructed else 0) for c in (0x00, 0x40, 0x80, 0xC0)]
    firsts = [b for b in firsts if b != 0xFF]  # FF is padding, never a tag
    return st.builds(
        lambda first, middle, last: int.from_bytes(bytes([first, *middle, last]), "big"),
        st.sampled_from(firsts),
        st.lists(st.integers(0x81, 0xFF), max_size=2),
        st.integers(0x01, 0x7F),
    )


def _tags(constructed: bool) -> st.SearchStrategy[int]:
    return _single(constructed) | _multi(constructed)


primitives = st.builds(Tlv, _tags(False), st.binary(max_size=300))
trees = st.recursive(
    primitives,
    lambda children: st.builds(
        lambda tag, kids: Tlv(tag, encode(kids)), _tags(True), st.lists(children, max_size=4)
    ),
    max_leaves=12,
)


def _same_tree(decoded: list[Tlv], expected: list[Tlv]) -> bool:
    return decoded == expected and all(
        _same_tree(a.children, b.children) for a, b in zip(decoded, expected, strict=True)
    )


@given(st.lists(trees, max_size=5))
def test_encode_then_decode_returns_the_same_tree(items):
    assert _same_tree(decode(encode(items)), items)


@given(trees)
def test_find_reaches_every_object_in_a_tree(item):
    def walk(node: Tlv) -> list[Tlv]:
        return [node] + [n for child in node.children for n in walk(child)]

    for node in walk(item):
        found = find([item], node.tag)
        assert found is not None and found.tag == node.tag


@given(st.binary(max_size=200))
def test_random_bytes_raise_nothing_but_emv_errors(data):
    def walk(items: list[Tlv]) -> None:
        for item in items:
            walk(item.children)

    try:
        items = decode(data)
        walk(items)
        flatten(items)
        find(items, 0x9F26)
    except EmvError:
        pass
