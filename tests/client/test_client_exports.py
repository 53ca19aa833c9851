"""The public surface: everything public is exported from `modelruntime.client`, and only that."""

from __future__ import annotations

import ast
import importlib
import inspect
import pathlib
import types

import modelruntime.client as mr

# Modules whose every public top-level name is part of the API. `_common` also holds helpers
# the two clients share, so its public names are listed instead.
API_MODULES = ["_aio", "_sync", "_convert", "_errors"]
EXPORTED_FROM_COMMON = {
    "USE_CLIENT_DEFAULT",
    "UseClientDefault",
    "Timeout",
    "Metadata",
    "ChannelOptions",
}


def _top_level_names(module: types.ModuleType) -> set[str]:
    tree = ast.parse(pathlib.Path(inspect.getfile(module)).read_text())
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return {name for name in names if not name.startswith("_")}


def test_all_matches_the_package_namespace() -> None:
    public = {
        name
        for name, value in vars(mr).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert set(mr.__all__) == public
    assert len(mr.__all__) == len(set(mr.__all__))


def test_every_public_name_of_the_api_modules_is_exported() -> None:
    for module_name in API_MODULES:
        module = importlib.import_module(f"modelruntime.client.{module_name}")
        missing = _top_level_names(module) - set(mr.__all__)
        assert not missing, f"{module_name} defines {sorted(missing)} but does not export them"
    assert set(mr.__all__) >= EXPORTED_FROM_COMMON


def test_every_exception_is_exported() -> None:
    pending: list[type[mr.ModelRuntimeError]] = [mr.ModelRuntimeError]
    while pending:
        cls = pending.pop()
        assert getattr(mr, cls.__name__) is cls
        pending.extend(cls.__subclasses__())


def test_public_objects_show_the_public_module() -> None:
    assert mr.InvokeRateLimitError.__module__ == "modelruntime.client"
    assert mr.ModelRuntimeClient.__module__ == "modelruntime.client"
    assert mr.user_message.__module__ == "modelruntime.client"
