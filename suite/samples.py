"""Small request ingredients shared by the behaviour and the property tests."""

from __future__ import annotations

__all__ = ["BLUE_PNG_DATA_URL", "PIPELINE_TEMPLATE", "PNG_DATA_URL"]

#: A 2x2 red PNG (made with Pillow) as a data: URL: a real image, no outbound fetch needed.
PNG_DATA_URL = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGM8ISfHwMDAxMDA"
    "wMDAAAANBAEIfXHKZgAAAABJRU5ErkJggg=="
)

#: A 2x2 pure blue PNG (0, 0, 255) the same way: clearly another image than the red one, for tests that
#: need a pipeline's output to depend on its input.
BLUE_PNG_DATA_URL = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGNkYPjPwMDAxMDA"
    "wMDAAAALHwEDmIWXfgAAAABJRU5ErkJggg=="
)

#: The pipeline template 000 documents.
PIPELINE_TEMPLATE = "design-analysis"
