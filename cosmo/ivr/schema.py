"""The JSON Schema of flow files (``cosmo flows schema``), from the step models.

Editors that know JSON Schema (VS Code's YAML extension, JetBrains IDEs) check
and complete flow files with it: a node is an object with exactly one
property, the step.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import ConfigDict, Field, create_model

from cosmo.ivr.steps import NODE_NAME, STEP_MODELS, FlowHeader, GotoStep

__all__ = ["flow_json_schema"]

_FIELD_NAMES = {"return": "return_", "set": "set_"}


def flow_json_schema() -> dict[str, Any]:
    """A JSON Schema (draft 2020-12) of flow files, for editors that check and complete YAML."""
    fields: dict[str, Any] = {}
    for kind, model in STEP_MODELS.items():
        annotation: Any = Annotated[str, Field(pattern=NODE_NAME)] if model is GotoStep else model
        fields[_FIELD_NAMES.get(kind, kind)] = (annotation | None, Field(None, alias=kind))
    node = create_model(
        "Node", __config__=ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1, "maxProperties": 1}),
        **fields)
    flow = create_model(
        "Flow", __base__=FlowHeader, nodes=(dict[Annotated[str, Field(pattern=NODE_NAME)], node],
                                            Field(min_length=1)))
    schema: dict[str, Any] = flow.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Cosmo IVR flow"
    schema["description"] = "An IVR flow: ivr_flows/<name>.yaml (see docs/IVR.md)."
    return schema
