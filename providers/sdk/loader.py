"""Loads provider folders in Dify's model-plugin layout.

    <folder>/
      manifest.yaml                   (optional, ignored: Dify's plugin manifest)
      provider/<name>.yaml            the provider: labels, model types, credential forms
      provider/<name>.py              optional ModelProvider subclass
      models/<type>/*.yaml            predefined models (or the globs in `models.<type>.predefined`)
      models/<type>/_position.yaml    their display order
      models/<type>/<type>.py         the model class (or `extra.python.model_sources`)

Every problem is reported as a SchemaError that names the file and the key.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import sys
import types
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import pydantic
import yaml

from providers.sdk.entities.schema import AIModelEntity, FetchFrom, ModelType, ProviderEntity
from providers.sdk.errors import SchemaError
from providers.sdk.model_types import BASE_CLASS_BY_MODEL_TYPE, AIModel
from providers.sdk.provider import ModelProvider

E = TypeVar("E", bound=pydantic.BaseModel)
C = TypeVar("C")

BUILTIN_ROOT = Path(__file__).resolve().parent.parent
_NOT_PROVIDERS = {"sdk", "__pycache__"}


def builtin_provider_folders() -> list[Path]:
    return sorted(
        p
        for p in BUILTIN_ROOT.iterdir()
        if p.is_dir() and p.name not in _NOT_PROVIDERS and (p / "provider").is_dir()
    )


def provider_folders(paths: Iterable[Path]) -> list[Path]:
    """Each path is a provider folder, or a folder of provider folders."""
    folders: list[Path] = []
    for path in paths:
        if (path / "provider").is_dir():
            folders.append(path)
        elif path.is_dir():
            folders.extend(sorted(p for p in path.iterdir() if (p / "provider").is_dir()))
        else:
            raise SchemaError(f"{path}: not a provider folder (no provider/ inside)")
    return folders


def load_provider(folder: Path) -> ModelProvider:
    folder = folder.resolve()
    yaml_path = _provider_yaml(folder)
    raw = _read_mapping(yaml_path)
    # `models` in a plugin's YAML holds globs; the entity's `models` is filled from them below.
    entity = _validate(ProviderEntity, {k: v for k, v in raw.items() if k != "models"}, yaml_path)
    entity.models = _predefined_models(folder, raw, entity, yaml_path)
    package = _package_for(folder, entity.provider)

    python = _mapping(raw.get("extra"), yaml_path, "extra").get("python") or {}
    sources = _mapping(python, yaml_path, "extra.python")
    model_sources = [str(s) for s in sources.get("model_sources") or []]
    models: dict[ModelType, AIModel] = {}
    for model_type in entity.supported_model_types:
        source = _model_source(folder, model_type, model_sources)
        model_class = _find_subclass(package, folder, source, BASE_CLASS_BY_MODEL_TYPE[model_type])
        models[model_type] = model_class(entity)

    provider_class: type[ModelProvider] = ModelProvider
    provider_source = sources.get("provider_source") or f"provider/{yaml_path.stem}.py"
    if (folder / str(provider_source)).is_file():
        provider_class = _find_subclass(package, folder, Path(str(provider_source)), ModelProvider)
    return provider_class(entity, models)


def load_model_yaml(path: Path, model_type: ModelType | None = None) -> AIModelEntity:
    raw = _read_mapping(path)
    # Predefined models are predefined, whatever the file says (as in Dify).
    raw["fetch_from"] = FetchFrom.PREDEFINED_MODEL.value
    entity = _validate(AIModelEntity, raw, path)
    if model_type is not None and entity.model_type is not model_type:
        raise SchemaError(
            f"{path}: model_type: {entity.model_type.value!r} in a {model_type.value} folder"
        )
    return entity


# ---- YAML ------------------------------------------------------------------------------------


def _provider_yaml(folder: Path) -> Path:
    candidates = sorted((folder / "provider").glob("*.yaml"))
    named = folder / "provider" / f"{folder.name}.yaml"
    if named in candidates:
        return named
    if len(candidates) == 1:
        return candidates[0]
    raise SchemaError(
        f"{folder / 'provider'}: expected one provider YAML, found "
        f"{len(candidates)}: {', '.join(p.name for p in candidates) or 'none'}"
    )


def _read_mapping(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SchemaError(f"{path}: not valid YAML: {exc}") from exc
    except OSError as exc:
        raise SchemaError(f"{path}: cannot be read: {exc.strerror}") from exc
    if not isinstance(data, dict):
        raise SchemaError(f"{path}: expected a mapping at the top level")
    return data


def _mapping(value: Any, path: Path, key: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SchemaError(f"{path}: {key}: expected a mapping, got {type(value).__name__}")
    return value


def _validate(entity: type[E], raw: dict[str, Any], path: Path) -> E:
    try:
        return entity.model_validate(raw)
    except pydantic.ValidationError as exc:
        problems = "; ".join(f"{_key_path(error['loc'])}: {error['msg']}" for error in exc.errors())
        raise SchemaError(f"{path}: {problems}") from None


def _key_path(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif not re.fullmatch(r"[a-z]+\[.*\]|function-after.*|function-before.*", str(item)):
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "(top level)"


def _predefined_models(
    folder: Path, raw: dict[str, Any], entity: ProviderEntity, yaml_path: Path
) -> list[AIModelEntity]:
    declared = _mapping(raw.get("models"), yaml_path, "models")
    models: list[AIModelEntity] = []
    for model_type in entity.supported_model_types:
        spec = _mapping(declared.get(model_type.folder), yaml_path, f"models.{model_type.folder}")
        patterns = spec.get("predefined")
        if patterns is None:
            files = sorted((folder / "models" / model_type.folder).glob("*.yaml"))
        else:
            if not isinstance(patterns, list):
                raise SchemaError(
                    f"{yaml_path}: models.{model_type.folder}.predefined: expected a list of globs"
                )
            files = sorted({p for pattern in patterns for p in folder.glob(str(pattern))})
        position: list[str] = []
        typed: list[AIModelEntity] = []
        for file in files:
            if file.name == "_position.yaml":
                position = _read_position(file)
            elif not file.name.startswith("_"):
                typed.append(load_model_yaml(file, model_type))
        order = {name: i for i, name in enumerate(position)}
        typed.sort(key=lambda m: (order.get(m.model, len(order)), m.model))
        models.extend(typed)
    return models


def _read_position(path: Path) -> list[str]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    if not isinstance(data, list):
        raise SchemaError(f"{path}: expected a list of model names")
    return [str(name) for name in data]


# ---- Python ----------------------------------------------------------------------------------


def _package_for(folder: Path, provider: str) -> str:
    """The import name of the folder: the built-in package, or a synthetic one for a folder
    from elsewhere, so that modules inside it can import each other relatively."""
    if folder.parent == BUILTIN_ROOT:
        return f"providers.{folder.name}"
    name = "modelruntime_provider_" + re.sub(r"\W", "_", provider)
    existing = sys.modules.get(name)
    if existing is None or list(getattr(existing, "__path__", [])) != [str(folder)]:
        # A different folder under the same provider name: forget the old one's modules.
        for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[module]
        package = types.ModuleType(name)
        package.__path__ = [str(folder)]
        sys.modules[name] = package
    return name


def _model_source(folder: Path, model_type: ModelType, model_sources: list[str]) -> Path:
    conventional = Path("models") / model_type.folder / f"{model_type.folder}.py"
    if (folder / conventional).is_file():
        return conventional
    for source in model_sources:
        if Path(source).parent.name == model_type.folder and (folder / source).is_file():
            return Path(source)
    raise SchemaError(
        f"{folder}: supports {model_type.value} but has no {conventional} for its model class"
    )


def _find_subclass(package: str, folder: Path, source: Path, base: type[C]) -> type[C]:
    module_name = ".".join([package, *source.with_suffix("").parts])
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise SchemaError(f"{folder / source}: cannot be imported: {exc!r}") from exc
    found = [
        value
        for _, value in inspect.getmembers(module, inspect.isclass)
        if issubclass(value, base) and value is not base and value.__module__ == module.__name__
    ]
    # A module may define helper bases too; the model class is the one nothing derives from.
    leaves = [c for c in found if not any(o is not c and issubclass(o, c) for o in found)]
    if len(leaves) == 1:
        return leaves[0]
    if leaves:
        names = ", ".join(c.__name__ for c in leaves)
        raise SchemaError(f"{folder / source}: several {base.__name__} classes: {names}")
    raise SchemaError(f"{folder / source}: defines no subclass of {base.__name__}")
