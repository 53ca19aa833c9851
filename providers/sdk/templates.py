"""Parameter-rule templates (`use_template`) with the defaults and ranges Dify uses.

A rule naming a template starts from a copy of it and every key the rule sets explicitly wins,
including 0 and false (Dify's customizable path overwrote those with the template's values: a
known fault we do not repeat).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PARAMETER_RULE_TEMPLATES: dict[str, dict[str, Any]] = {
    "temperature": {
        "label": {"en_US": "Temperature", "zh_Hans": "温度"},
        "type": "float",
        "help": {
            "en_US": "Controls randomness: lower values make the output more focused and "
            "deterministic, higher values more varied.",
            "zh_Hans": "控制随机性:较低的值使输出更集中和确定,较高的值更多样。",
        },
        "required": False,
        "default": 0.0,
        "min": 0.0,
        "max": 1.0,
        "precision": 2,
    },
    "top_p": {
        "label": {"en_US": "Top P", "zh_Hans": "Top P"},
        "type": "float",
        "help": {
            "en_US": "Nucleus sampling: only the tokens within this cumulative probability are "
            "considered.",
            "zh_Hans": "核采样:只考虑累计概率在此范围内的标记。",
        },
        "required": False,
        "default": 1.0,
        "min": 0.0,
        "max": 1.0,
        "precision": 2,
    },
    "top_k": {
        "label": {"en_US": "Top K", "zh_Hans": "Top K"},
        "type": "int",
        "help": {
            "en_US": "Only the K most likely tokens are considered at each step.",
            "zh_Hans": "每一步只考虑概率最高的 K 个标记。",
        },
        "required": False,
        "default": 50,
        "min": 1,
        "max": 100,
        "precision": 0,
    },
    "presence_penalty": {
        "label": {"en_US": "Presence Penalty", "zh_Hans": "存在惩罚"},
        "type": "float",
        "help": {
            "en_US": "Penalises tokens that already appeared, encouraging new topics.",
            "zh_Hans": "惩罚已出现过的标记,鼓励谈论新话题。",
        },
        "required": False,
        "default": 0.0,
        "min": 0.0,
        "max": 1.0,
        "precision": 2,
    },
    "frequency_penalty": {
        "label": {"en_US": "Frequency Penalty", "zh_Hans": "频率惩罚"},
        "type": "float",
        "help": {
            "en_US": "Penalises tokens by how often they already appeared, reducing repetition.",
            "zh_Hans": "按标记已出现的频率进行惩罚,减少重复。",
        },
        "required": False,
        "default": 0.0,
        "min": 0.0,
        "max": 1.0,
        "precision": 2,
    },
    "max_tokens": {
        "label": {"en_US": "Max Tokens", "zh_Hans": "最大标记"},
        "type": "int",
        "help": {
            "en_US": "The most tokens the model may generate.",
            "zh_Hans": "模型最多可生成的标记数。",
        },
        "required": False,
        "default": 64,
        "min": 1,
        "max": 2048,
        "precision": 0,
    },
    "response_format": {
        "label": {"en_US": "Response Format", "zh_Hans": "回复格式"},
        "type": "string",
        "help": {
            "en_US": "The format the model must answer in.",
            "zh_Hans": "模型回复必须遵循的格式。",
        },
        "required": False,
        "options": ["JSON", "XML"],
    },
    "json_schema": {
        "label": {"en_US": "JSON Schema", "zh_Hans": "JSON Schema"},
        "type": "text",
        "help": {
            "en_US": "A JSON schema the answer must follow.",
            "zh_Hans": "回复必须遵循的 JSON Schema。",
        },
        "required": False,
    },
}


def apply_template(rule: Mapping[str, Any]) -> dict[str, Any]:
    """The rule with its `use_template` merged under it; an unknown template is ignored, as in
    Dify, so the rule must then say its own type."""
    template = PARAMETER_RULE_TEMPLATES.get(str(rule.get("use_template") or ""))
    if template is None:
        return dict(rule)
    return {**template, **{k: v for k, v in rule.items() if v is not None}}
