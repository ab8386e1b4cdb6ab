"""Pipeline templates are data, checked when loaded: every mistake is refused naming template and step."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from reference_server.app import create_app
from reference_server.config import ServerConfig
from reference_server.engines.sim import SimChatEngine, SimEmbedEngine
from reference_server.pipeline import TemplateError, load_templates, parse_template
from reference_server.pipeline.templates import render


def _steps(*steps: str) -> dict[str, Any]:
    return {"steps": [yaml.safe_load(s) for s in steps]}


def test_shipped_templates_load():
    templates = load_templates()
    design = templates["design-analysis"]
    assert [(s.id, s.model) for s in design.steps] == [("scan", "42-vision"), ("plan", "42-think")]
    assert design.inputs == ("image_url",)
    assert design.steps[0].image_input == "image_url"
    assert templates["draft-review"].inputs == ("text",)


BAD_TEMPLATES = {
    "unknown-step": (
        _steps("{id: a, model: 42-logic, prompt: '{{ghost.content}}'}"),
        "step 'a': reference {{ghost.content}} names unknown step 'ghost'",
    ),
    "forward-reference": (
        _steps("{id: a, model: 42-logic, prompt: '{{b.content}}'}", "{id: b, model: 42-logic, prompt: x}"),
        "step 'a': forward reference {{b.content}}: step 'b' runs later",
    ),
    "cycle": (
        _steps("{id: a, model: 42-logic, prompt: '{{a.content}}'}"),
        "step 'a': reference {{a.content}} refers to the step itself (a cycle)",
    ),
    "unknown-model": (_steps("{id: a, model: 42-nope, prompt: x}"), "step 'a': unknown model '42-nope'"),
    "embedding-model": (_steps("{id: a, model: 42-embed, prompt: x}"), "step 'a': unknown model '42-embed'"),
    "image-on-text-model": (
        _steps("{id: a, model: 42-logic, prompt: x, image: '{{input.img}}'}"),
        "step 'a': model 42-logic does not accept images",
    ),
    "image-from-a-step": (
        _steps(
            "{id: a, model: 42-logic, prompt: x}",
            "{id: b, model: 42-vision, prompt: x, image: '{{a.content}}'}",
        ),
        "step 'b': image must be one input reference",
    ),
    "malformed-reference": (
        _steps("{id: a, model: 42-logic, prompt: '{{ nope }}'}"),
        "step 'a': malformed reference",
    ),
    "unknown-member": (
        _steps("{id: a, model: 42-logic, prompt: x}", "{id: b, model: 42-logic, prompt: '{{a.output}}'}"),
        "step 'b': reference {{a.output}}: a step only offers .content",
    ),
    "duplicate-id": (
        _steps("{id: a, model: 42-logic, prompt: x}", "{id: a, model: 42-logic, prompt: y}"),
        "step 'a': id used twice",
    ),
    "unknown-field": (
        _steps("{id: a, model: 42-logic, prompt: x, temperature: 1}"),
        "step 'a': unknown field(s) temperature",
    ),
    "missing-prompt": (_steps("{id: a, model: 42-logic}"), "step 'a': prompt must be a non-empty string"),
    "bad-max-tokens": (
        _steps("{id: a, model: 42-logic, prompt: x, max_tokens: 0}"),
        "step 'a': max_tokens must be a positive integer",
    ),
    "step-id-input": (_steps("{id: input, model: 42-logic, prompt: x}"), "step 1: id must be a name"),
    "no-steps": ({"steps": []}, "steps must be a non-empty list"),
    "not-a-mapping": (["a"], "expected a mapping with steps"),
}


@pytest.mark.parametrize(("data", "message"), BAD_TEMPLATES.values(), ids=BAD_TEMPLATES.keys())
def test_bad_template_is_refused_naming_template_and_step(data, message):
    with pytest.raises(TemplateError) as info:
        parse_template("demo", data)
    assert str(info.value).startswith("pipeline template 'demo'")
    assert message in str(info.value)


def test_inputs_are_collected_from_prompts_and_images():
    template = parse_template(
        "t",
        _steps(
            "{id: a, model: 42-vision, prompt: '{{input.q}}', image: '{{input.pic}}'}",
            "{id: b, model: 42-logic, system: '{{input.role}}', prompt: '{{a.content}} {{input.q}}'}",
        ),
    )
    assert set(template.inputs) == {"q", "pic", "role"}


def test_render_fills_inputs_and_outputs():
    assert render("{{input.x}} then {{ a.content }}", {"x": "1"}, {"a": "2"}) == "1 then 2"


def test_extra_template_folder_adds_templates(tmp_path):
    (tmp_path / "mine.yaml").write_text("steps:\n  - {id: a, model: 42-logic, prompt: hi}\n")
    assert {"design-analysis", "draft-review", "mine"} <= set(load_templates(tmp_path))


def test_invalid_yaml_names_the_template(tmp_path):
    (tmp_path / "broken.yaml").write_text("steps: [\n")
    with pytest.raises(TemplateError, match=r"pipeline template 'broken'.*not valid YAML"):
        load_templates(tmp_path)


def test_server_refuses_to_start_with_a_broken_template(tmp_path):
    (tmp_path / "bad.yaml").write_text("steps:\n  - {id: a, model: 42-logic, prompt: '{{b.content}}'}\n")
    with pytest.raises(TemplateError, match="'bad', step 'a'"):
        create_app(ServerConfig(pipeline_dir=tmp_path), SimChatEngine(), SimEmbedEngine())
