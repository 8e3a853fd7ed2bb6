import pytest

from plantops_webapp.images import GIF, JPEG, PNG, WEBP, accepted_names, sniff
from tests.support import photo

pytestmark = pytest.mark.unit


def test_a_real_photo_is_recognised_as_jpeg():
    assert sniff(photo().read_bytes()) == JPEG


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 8, PNG),
        (b"RIFF\x10\0\0\0WEBPVP8 ", WEBP),
        (b"GIF89a\x01\x00", GIF),
        (b"GIF87a\x01\x00", GIF),
    ],
)
def test_formats_are_known_by_their_first_bytes(head, expected):
    assert sniff(head) == expected


@pytest.mark.parametrize("data", [b"", b"hello, I am text", b"%PDF-1.7", b"<html><script>"])
def test_anything_else_is_not_an_image(data):
    assert sniff(data) is None


def test_the_accepted_formats_read_as_a_sentence():
    assert accepted_names() == "JPEG, PNG, WebP or GIF"
