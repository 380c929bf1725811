"""Plugins: user modules that register envs (``envs.register_env``), evaluation algorithms
(``agents.eval.algorithms.register_algorithm``) or anything else at import time.

A plugin is a dotted module path (``my_pkg.my_envs``, importable from the working directory or
``sys.path``) or a ``.py`` file. A file's folder is put on ``sys.path`` first, so the file imports its
sibling modules as usual. Every failure is one :class:`PluginError` line naming the plugin.

While a plugin is being imported, :func:`current_plugin` names it (``envs.registry`` records it with
each env registered then, so that a saved config or checkpoint names the plugin its env came from).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

_LOADED: dict[str, ModuleType] = {}  # canonical spec (module name or resolved file path) -> module
_CURRENT: list[str] = []  # stack of plugins being imported


class PluginError(ValueError):
    """A plugin that cannot be found or fails to import; the message is one line."""


def is_file_plugin(spec: str) -> bool:
    return spec.endswith(".py") or os.sep in spec or "/" in spec


def canonical(spec: str) -> str:
    """The form a saved config keeps: an absolute path for files, the dotted name for modules."""
    spec = str(spec).strip()
    return str(Path(spec).expanduser().resolve()) if is_file_plugin(spec) else spec


def current_plugin() -> str | None:
    """The plugin whose import is running (innermost), or None."""
    return _CURRENT[-1] if _CURRENT else None


@contextmanager
def _importing(spec: str) -> Iterator[None]:
    _CURRENT.append(spec)
    try:
        yield
    finally:
        _CURRENT.pop()


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0]}" if text else type(e).__name__


def import_plugin(spec: str) -> ModuleType:
    """Import one plugin (once per process) and return its module."""
    if not isinstance(spec, str) or not spec.strip():
        raise PluginError(f"plugin {spec!r} is invalid; give a module path (my_pkg.my_envs) or a .py file")
    key = canonical(spec)
    if key in _LOADED:
        return _LOADED[key]
    if is_file_plugin(spec):
        module = _import_file(spec, Path(key))
    else:
        module = _import_module(spec)
    _LOADED[key] = module
    return module


def import_plugins(specs: Sequence[str]) -> list[ModuleType]:
    return [import_plugin(s) for s in specs]


def _import_file(spec: str, path: Path) -> ModuleType:
    if path.suffix != ".py" or not path.is_file():
        raise PluginError(
            f"plugin file {spec!r} not found (resolved to {str(path)!r}); give an existing .py file"
        )
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # sibling imports (``from helpers import x``) work as in a script
    # A private module name: a file called e.g. ``envs.py`` must not shadow srmt's own packages.
    name = f"srmt_plugin_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise PluginError(f"plugin file {spec!r} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        with _importing(str(path)):
            module_spec.loader.exec_module(module)
    except PluginError:
        del sys.modules[name]
        raise
    except Exception as e:  # the plugin's own error, whatever its type: one line naming the plugin
        del sys.modules[name]
        raise PluginError(f"plugin {spec!r} failed to import: {_first_line(e)}") from None
    return module


def _import_module(spec: str) -> ModuleType:
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)  # the console script does not put the working directory on sys.path
    try:
        with _importing(spec):
            return importlib.import_module(spec)
    except ModuleNotFoundError as e:
        if e.name is not None and (spec == e.name or spec.startswith(e.name + ".")):
            raise PluginError(
                f"plugin module {spec!r} not found (no module named {e.name!r} on sys.path or in {cwd}); "
                "give an importable module path or a .py file"
            ) from None
        raise PluginError(f"plugin {spec!r} failed to import: {_first_line(e)}") from None
    except PluginError:
        raise
    except Exception as e:
        raise PluginError(f"plugin {spec!r} failed to import: {_first_line(e)}") from None
