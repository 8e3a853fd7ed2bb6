"""Recognise the image formats the web app accepts from their first bytes, never the file name."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ImageFormat:
    name: str
    extension: str
    media_type: str


JPEG = ImageFormat("JPEG", "jpg", "image/jpeg")
PNG = ImageFormat("PNG", "png", "image/png")
WEBP = ImageFormat("WebP", "webp", "image/webp")
GIF = ImageFormat("GIF", "gif", "image/gif")
ACCEPTED_FORMATS = (JPEG, PNG, WEBP, GIF)


def sniff(data: bytes) -> ImageFormat | None:
    """The format `data` is in, from its magic number; None for anything else."""
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return GIF
    return None


def accepted_names() -> str:
    """'JPEG, PNG, WebP or GIF', for messages and the upload page."""
    names = [fmt.name for fmt in ACCEPTED_FORMATS]
    return ", ".join(names[:-1]) + " or " + names[-1]
