"""Image inputs for 42-vision, turned into text.

The reference server's engines are text-only models. This module is how it gives 42-vision "vision":
each ``image_url`` part is replaced by a plain-text description computed with Pillow (format, size,
mode and dominant colours), and the model reads that description. It is a description, not
understanding: the model cannot read text in the image or recognise objects. That is enough for the
conformance suite, which checks the API contract (image parts accepted, a text answer returned), not
the quality of the answer.

Only two sources are accepted, because a gateway that fetched arbitrary URLs would let any caller make
it issue requests (SSRF) or read its files:

* ``data:image/...;base64,...`` URLs;
* when the server has an image folder, ``file:`` URLs or relative paths that resolve inside it.

Everything else (http/https URLs, other schemes, missing files, non-images, inputs over
:data:`MAX_IMAGE_BYTES` or :data:`MAX_IMAGE_PIXELS`) is a 400 ``invalid_request_error``.
"""

from __future__ import annotations

import base64
import binascii
import io
from pathlib import Path
from urllib.parse import unquote, urlparse

from PIL import Image, UnidentifiedImageError

from reference_server.errors import ApiError

__all__ = ["MAX_IMAGE_BYTES", "MAX_IMAGE_PIXELS", "colour_name", "describe_image", "load_image_bytes"]

MAX_IMAGE_BYTES = 10 * 1024 * 1024
#: Below Pillow's own decompression-bomb threshold (~89 Mpx), so our clear 400 comes first.
MAX_IMAGE_PIXELS = 40_000_000
_THUMBNAIL = (64, 64)

# Coarse reference colours: the nearest one gives a word a reader (or a model) can use.
_NAMED_COLOURS: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("black", (0, 0, 0)),
    ("white", (255, 255, 255)),
    ("gray", (128, 128, 128)),
    ("light gray", (200, 200, 200)),
    ("dark gray", (64, 64, 64)),
    ("red", (220, 20, 20)),
    ("dark red", (128, 0, 0)),
    ("orange", (255, 140, 0)),
    ("yellow", (240, 220, 30)),
    ("olive", (128, 128, 0)),
    ("green", (30, 170, 30)),
    ("dark green", (0, 90, 0)),
    ("light green", (150, 230, 150)),
    ("cyan", (0, 200, 200)),
    ("teal", (0, 128, 128)),
    ("blue", (30, 60, 220)),
    ("navy", (0, 0, 128)),
    ("light blue", (150, 190, 240)),
    ("purple", (128, 0, 128)),
    ("magenta", (230, 0, 230)),
    ("pink", (255, 170, 190)),
    ("brown", (140, 80, 30)),
    ("beige", (230, 215, 180)),
)


def _bad(message: str) -> ApiError:
    return ApiError(400, message, "invalid_request_error")


def colour_name(rgb: tuple[int, int, int]) -> str:
    """The nearest of a few named colours (squared RGB distance)."""
    return min(_NAMED_COLOURS, key=lambda nc: sum((a - b) ** 2 for a, b in zip(nc[1], rgb, strict=True)))[0]


def _from_data_url(url: str) -> bytes:
    header, sep, payload = url.partition(",")
    if not sep:
        raise _bad("Invalid image data URL: no ',' separating header and data")
    media = header[len("data:") :]
    params = media.split(";")
    if not params[0].lower().startswith("image/") or "base64" not in (p.lower() for p in params[1:]):
        raise _bad("Image data URLs must have the form data:image/<type>;base64,<data>")
    # Base64 is 4 characters per 3 bytes: refuse oversized input before decoding it.
    if len(payload) * 3 // 4 > MAX_IMAGE_BYTES + 3:
        raise _bad(f"Image is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise _bad("Image data URL is not valid base64") from None
    if len(data) > MAX_IMAGE_BYTES:
        raise _bad(f"Image is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB")
    return data


def _from_image_dir(url: str, image_dir: Path) -> bytes:
    if url.lower().startswith("file:"):
        parsed = urlparse(url)
        if parsed.netloc not in ("", "localhost"):
            raise _bad("file: URLs must name a local file")
        # file:///abs/path and file:relative/path both arrive here as a path.
        raw_path = unquote(parsed.path)
    else:
        raw_path = url
    root = image_dir.resolve()
    # An absolute path is kept as is (joining ignores root) and must still land inside the folder.
    # resolve() follows symlinks and '..', so the containment check sees the real target.
    target = (root / raw_path).resolve()
    if not target.is_relative_to(root):
        raise _bad("Image path is outside the server's image folder")
    if not target.is_file():
        raise _bad(f"Image file not found: {url}")
    if target.stat().st_size > MAX_IMAGE_BYTES:
        raise _bad(f"Image is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB")
    return target.read_bytes()


def load_image_bytes(url: str, image_dir: Path | None) -> bytes:
    """The bytes an image URL names, from the sources this server accepts; 400 for anything else."""
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "data":
        return _from_data_url(url)
    if scheme in ("http", "https"):
        raise _bad(
            "Remote image URLs are not fetched by this server; send the image as a data: URL "
            "(data:image/png;base64,...)"
        )
    if image_dir is None:
        raise _bad("Only data:image/...;base64 URLs are accepted as image_url on this server")
    # Windows drive letters aside, any other scheme (ftp:, gopher:, ...) is refused outright.
    if scheme and scheme != "file":
        raise _bad(f"Unsupported image URL scheme: {scheme}")
    return _from_image_dir(url, image_dir)


def describe_image(url: str, image_dir: Path | None) -> str:
    """A plain-text description of the image ``url`` names (format, size, mode, dominant colours)."""
    data = load_image_bytes(url, image_dir)
    try:
        with Image.open(io.BytesIO(data)) as img:
            # open() reads only the header; check the pixel count before decoding anything.
            width, height = img.size
            if width * height > MAX_IMAGE_PIXELS:
                raise _bad(f"Image has too many pixels ({width}x{height})")
            fmt = img.format or "unknown"
            mode = img.mode
            frames = getattr(img, "n_frames", 1)
            thumb = img.copy()
            thumb.thumbnail(_THUMBNAIL)
    except ApiError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _bad("image_url does not contain a supported image") from None
    except (OSError, ValueError, SyntaxError):
        # Truncated or corrupt files fail while decoding, after the header was accepted.
        raise _bad("image_url contains a corrupt or truncated image") from None
    colours = _dominant_colours(thumb)
    parts = [f"{fmt} image, {width}x{height} pixels, mode {mode}"]
    if frames > 1:
        parts.append(f"{frames} frames (first described)")
    described = ", ".join(
        f"#{r:02x}{g:02x}{b:02x} ({colour_name((r, g, b))}, {share}%)" for (r, g, b), share in colours
    )
    return "; ".join(parts) + f". Dominant colours: {described}."


def _dominant_colours(thumb: Image.Image) -> list[tuple[tuple[int, int, int], int]]:
    """Up to three (rgb, percent) pairs, most frequent first, from a median-cut palette of the thumbnail."""
    if thumb.mode in ("RGBA", "LA", "PA") or (thumb.mode == "P" and "transparency" in thumb.info):
        # Transparent pixels have no colour of their own; show them against white, as viewers do.
        rgba = thumb.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        rgb = Image.alpha_composite(background, rgba).convert("RGB")
    else:
        rgb = thumb.convert("RGB")
    quantized = rgb.quantize(colors=8, method=Image.Quantize.MEDIANCUT)
    palette = quantized.getpalette() or []
    counts = quantized.getcolors() or []
    total = sum(c for c, _ in counts) or 1
    result: list[tuple[tuple[int, int, int], int]] = []
    for count, index in sorted(counts, key=lambda ci: ci[0], reverse=True)[:3]:
        assert isinstance(index, int)  # a "P" image's getcolors() yields palette indices
        r, g, b = palette[3 * index : 3 * index + 3]
        result.append(((r, g, b), round(100 * count / total)))
    return result
