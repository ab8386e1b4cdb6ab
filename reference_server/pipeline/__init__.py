"""Model-chaining pipelines: templates as YAML data (templates), and running them (runner)."""

from __future__ import annotations

from reference_server.pipeline.runner import run_pipeline
from reference_server.pipeline.templates import Step, Template, TemplateError, load_templates, parse_template

__all__ = ["Step", "Template", "TemplateError", "load_templates", "parse_template", "run_pipeline"]
