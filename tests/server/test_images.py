"""Image parts for 42-vision: described in text with Pillow, from accepted sources only."""

from __future__ import annotations

import base64
import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from reference_server.auth import DEMO_KEYS
from reference_server.config import ServerConfig
from reference_server.errors import ApiError
from reference_server.gateway import gateway_of
from reference_server.images import MAX_IMAGE_BYTES, describe_image

URL = "/v1/chat/completions"


def png_bytes(size=(40, 20), colour=(255, 0, 0)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def data_url(raw: bytes, media="image/png") -> str:
    return f"data:{media};base64,{base64.b64encode(raw).decode()}"


def image_message(url: str, text="What is in this image?"):
    return [
        {
            "role": "user",
            "content": [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": url}}],
        }
    ]


def assert_rejected(url, image_dir=None):
    with pytest.raises(ApiError) as caught:
        describe_image(url, image_dir)
    assert caught.value.status == 400
    assert caught.value.error_type == "invalid_request_error"


def test_data_url_description_names_format_size_and_colour():
    description = describe_image(data_url(png_bytes((40, 20), (255, 0, 0))), None)
    assert "PNG" in description
    assert "40x20" in description
    assert "#ff0000" in description and "red" in description


def test_description_lists_the_most_frequent_colour_first():
    image = Image.new("RGB", (30, 30), (0, 0, 255))
    image.paste((255, 255, 255), (0, 0, 30, 5))  # a white strip, one sixth of the image
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    colours = describe_image(data_url(buffer.getvalue()), None).split("Dominant colours:")[1]
    assert colours.index("#0000ff") < colours.index("#ffffff")


def test_http_urls_are_not_fetched():
    assert_rejected("https://example.com/design.png")
    assert_rejected("http://127.0.0.1/secret.png")


def test_file_urls_are_refused_without_an_image_folder(tmp_path):
    (tmp_path / "a.png").write_bytes(png_bytes())
    assert_rejected((tmp_path / "a.png").as_uri())


def test_path_traversal_out_of_the_image_folder_is_refused(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    (tmp_path / "outside.png").write_bytes(png_bytes())
    assert_rejected("../outside.png", folder)
    assert_rejected("file:../outside.png", folder)
    assert_rejected((tmp_path / "outside.png").as_uri(), folder)


def test_symlink_out_of_the_image_folder_is_refused(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    (tmp_path / "outside.png").write_bytes(png_bytes())
    (folder / "link.png").symlink_to(tmp_path / "outside.png")
    assert_rejected("link.png", folder)


def test_files_inside_the_image_folder_are_described(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.png").write_bytes(png_bytes((7, 9)))
    assert "7x9" in describe_image("sub/a.png", tmp_path)
    assert "7x9" in describe_image((tmp_path / "sub" / "a.png").as_uri(), tmp_path)


def test_missing_file_is_refused(tmp_path):
    assert_rejected("nope.png", tmp_path)


def test_data_that_is_not_an_image_is_refused():
    assert_rejected(data_url(b"this is text, not pixels"))
    assert_rejected("data:image/png;base64,@@@not-base64@@@")
    assert_rejected(data_url(png_bytes()[:40]))  # truncated


def test_non_image_data_url_type_is_refused():
    assert_rejected(data_url(png_bytes(), media="text/plain"))


def test_images_over_ten_megabytes_are_refused(tmp_path):
    big = b"\0" * (MAX_IMAGE_BYTES + 1)
    assert_rejected(data_url(big))
    (tmp_path / "big.png").write_bytes(big)
    assert_rejected("big.png", tmp_path)


def test_vision_chat_with_an_image_part_works_for_pro(client, headers_for):
    body = {"model": "42-vision", "messages": image_message(data_url(png_bytes()))}
    response = client.post(URL, headers=headers_for("pro"), json=body)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"]


def test_image_description_reaches_the_engine_as_text(client, headers_for):
    # The sim counts prompt words: the description adds words beyond the text part's own.
    headers = headers_for("pro")
    plain = [{"role": "user", "content": "What is in this image?"}]
    with_image = image_message(data_url(png_bytes()))
    tokens = [
        client.post(URL, headers=headers, json={"model": "42-vision", "messages": m}).json()["usage"][
            "prompt_tokens"
        ]
        for m in (plain, with_image)
    ]
    assert tokens[1] > tokens[0]


def test_image_part_on_a_text_model_is_400(client, headers_for):
    body = {"model": "42-logic", "messages": image_message(data_url(png_bytes()))}
    response = client.post(URL, headers=headers_for("pro"), json=body)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_remote_image_url_in_a_chat_is_400_and_frees_its_slot(client, headers_for):
    body = {"model": "42-vision", "messages": image_message("https://example.com/design.png")}
    response = client.post(URL, headers=headers_for("pro"), json=body)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    gateway = gateway_of(client.app)
    caller = gateway.auth.keystore.lookup(DEMO_KEYS["pro"])
    assert caller is not None
    assert gateway.limiter.in_flight(caller.key_id) == 0


def test_vision_chat_reads_the_configured_image_folder(make_app, token_headers, tmp_path):
    (tmp_path / "design.png").write_bytes(png_bytes())
    with TestClient(make_app(ServerConfig(image_dir=tmp_path))) as client:
        body = {"model": "42-vision", "messages": image_message("design.png")}
        response = client.post(URL, headers=token_headers(client, "pro"), json=body)
    assert response.status_code == 200, response.text
