"""Pipeline templates: YAML data, checked completely when loaded so a bad template never half-runs.

A template is a file ``<name>.yaml`` holding an optional ``description`` and a list of ``steps``; each
step has an ``id``, a chat ``model``, a ``prompt``, and optionally ``system``, ``max_tokens`` and (for a
vision model) ``image``. Prompts refer to the request's inputs as ``{{input.NAME}}`` and to an earlier
step's answer as ``{{STEP.content}}``. ``image`` must be exactly one ``{{input.NAME}}``: an image comes
from the caller, never from a model's text.

Steps run in order, so a reference may only point backwards. Loading refuses, naming template and step:
an unknown step, a forward reference, a step referring to itself (the only possible cycle), an unknown
or non-chat model, an image on a non-vision model, and any malformed reference or field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import yaml

from reference_server.models import MODELS

__all__ = ["Step", "Template", "TemplateError", "load_templates", "parse_template", "render"]

DEFAULT_STEP_MAX_TOKENS = 256
_STEP_KEYS = {"id", "model", "prompt", "system", "max_tokens", "image"}
_TEMPLATE_KEYS = {"description", "steps"}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_ANY_REF = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_REF = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9_-]*)\.([A-Za-z0-9_]+)\s*")


class TemplateError(ValueError):
    """A template that cannot be used; the message names the template and, where it applies, the step."""


@dataclass(frozen=True)
class Step:
    id: str
    model: str
    prompt: str
    system: str | None
    max_tokens: int
    #: Name of the input holding this step's image URL.
    image_input: str | None


@dataclass(frozen=True)
class Template:
    name: str
    description: str
    steps: tuple[Step, ...]
    #: Every ``input.NAME`` the steps use: a request must supply each as a string.
    inputs: tuple[str, ...]


def _references(text: str, where: str) -> list[tuple[str, str]]:
    refs = []
    for match in _ANY_REF.finditer(text):
        ref = _REF.fullmatch(match.group(1))
        if ref is None:
            raise TemplateError(
                f"{where}: malformed reference {match.group(0)!r}; use {{{{input.NAME}}}} "
                "or {{STEP.content}}"
            )
        refs.append((ref.group(1), ref.group(2)))
    return refs


def _check_ref(
    source: str,
    member: str,
    where: str,
    step_id: str,
    order: Mapping[str, int],
    index: int,
    inputs: list[str],
) -> None:
    if source == "input":
        if member not in inputs:
            inputs.append(member)
        return
    if member != "content":
        raise TemplateError(f"{where}: reference {{{{{source}.{member}}}}}: a step only offers .content")
    if source == step_id:
        raise TemplateError(
            f"{where}: reference {{{{{source}.content}}}} refers to the step itself (a cycle)"
        )
    if source not in order:
        raise TemplateError(f"{where}: reference {{{{{source}.content}}}} names unknown step {source!r}")
    if order[source] > index:
        raise TemplateError(
            f"{where}: forward reference {{{{{source}.content}}}}: step {source!r} runs "
            "later; a step may only use the steps before it"
        )


def _text(raw: Mapping[str, Any], key: str, where: str, *, required: bool) -> str | None:
    value = raw.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise TemplateError(f"{where}: {key} must be a non-empty string")
    return value


def _parse_step(raw: Any, index: int, name: str, order: Mapping[str, int], inputs: list[str]) -> Step:
    where = f"pipeline template {name!r}, step {index + 1}"
    if not isinstance(raw, dict):
        raise TemplateError(f"{where}: expected a mapping with id, model and prompt")
    step_id = raw.get("id")
    if not isinstance(step_id, str) or not _NAME.fullmatch(step_id) or step_id == "input":
        raise TemplateError(f"{where}: id must be a name of letters, digits, '-' or '_' (not 'input')")
    where = f"pipeline template {name!r}, step {step_id!r}"
    unknown = sorted(set(raw) - _STEP_KEYS)
    if unknown:
        raise TemplateError(f"{where}: unknown field(s) {', '.join(unknown)}")
    model_id = raw.get("model")
    model = MODELS.get(model_id) if isinstance(model_id, str) else None
    if model is None or model.kind != "chat":
        chat = ", ".join(m.id for m in MODELS.values() if m.kind == "chat")
        raise TemplateError(f"{where}: unknown model {model_id!r}; a step runs one of {chat}")
    prompt = _text(raw, "prompt", where, required=True)
    system = _text(raw, "system", where, required=False)
    max_tokens = raw.get("max_tokens", DEFAULT_STEP_MAX_TOKENS)
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise TemplateError(f"{where}: max_tokens must be a positive integer")
    image = _text(raw, "image", where, required=False)
    image_input = None
    if image is not None:
        ref = _REF.fullmatch(image.strip().removeprefix("{{").removesuffix("}}"))
        if not (image.strip().startswith("{{") and ref is not None and ref.group(1) == "input"):
            raise TemplateError(f"{where}: image must be one input reference such as {{{{input.image_url}}}}")
        if not model.vision:
            raise TemplateError(f"{where}: model {model.id} does not accept images; use a vision model")
        image_input = ref.group(2)
        if image_input not in inputs:
            inputs.append(image_input)
    for text in (prompt, system):
        for source, member in _references(text or "", where):
            _check_ref(source, member, where, step_id, order, index, inputs)
    assert prompt is not None
    return Step(step_id, model.id, prompt, system, max_tokens, image_input)


def parse_template(name: str, data: Any) -> Template:
    """Check a template's parsed YAML and build it; TemplateError says what is wrong where."""
    if not isinstance(data, dict):
        raise TemplateError(f"pipeline template {name!r}: expected a mapping with steps")
    unknown = sorted(set(data) - _TEMPLATE_KEYS)
    if unknown:
        raise TemplateError(f"pipeline template {name!r}: unknown field(s) {', '.join(unknown)}")
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise TemplateError(f"pipeline template {name!r}: steps must be a non-empty list")
    # Positions of all step ids first, so a reference to a later step reads "forward", not "unknown".
    order: dict[str, int] = {}
    for index, raw in enumerate(raw_steps):
        step_id = raw.get("id") if isinstance(raw, dict) else None
        if isinstance(step_id, str):
            if step_id in order:
                raise TemplateError(f"pipeline template {name!r}, step {step_id!r}: id used twice")
            order[step_id] = index
    inputs: list[str] = []
    steps = tuple(_parse_step(raw, index, name, order, inputs) for index, raw in enumerate(raw_steps))
    description = data.get("description", "")
    if not isinstance(description, str):
        raise TemplateError(f"pipeline template {name!r}: description must be a string")
    return Template(name, description, steps, tuple(inputs))


def _load_file(path: Path | Traversable, name: str) -> Template:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise TemplateError(f"pipeline template {name!r} ({path}): not valid YAML: {exc}") from None
    return parse_template(name, data)


def load_templates(extra_dir: Path | None = None) -> dict[str, Template]:
    """The templates shipped in ``reference_server/pipelines``, plus (overriding) those in ``extra_dir``."""
    shipped = resources.files("reference_server") / "pipelines"
    found: dict[str, Path | Traversable] = {
        entry.name.removesuffix(".yaml"): entry for entry in shipped.iterdir() if entry.name.endswith(".yaml")
    }
    if extra_dir is not None:
        if not extra_dir.is_dir():
            raise TemplateError(f"pipeline template folder {extra_dir} does not exist")
        found.update({path.stem: path for path in extra_dir.glob("*.yaml")})
    return {name: _load_file(path, name) for name, path in sorted(found.items())}


def render(text: str, inputs: Mapping[str, str], outputs: Mapping[str, str]) -> str:
    """``text`` with its (already validated) references replaced by input values and step outputs."""

    def value(match: re.Match[str]) -> str:
        ref = _REF.fullmatch(match.group(1))
        assert ref is not None  # parse_template refused anything else
        source = ref.group(1)
        return inputs[ref.group(2)] if source == "input" else outputs[source]

    return _ANY_REF.sub(value, text)
