"""Typed YAML configs shipped with srmt.

Each component owns one dataclass (``envs.config.EnvConfig``, ``srmt.config.ModelConfig``, ...); an
experiment nests them.  This module loads YAML files from this folder (or any path) into such a
dataclass with OmegaConf structured configs, applies dotted command-line overrides
(``env.num_agents=8``) and turns every validation failure into a one-line :class:`ConfigError` that
names the key and the bad value.

A YAML file may list other files under ``base:`` (paths relative to this folder or to the file); they
are merged first, in order, so presets compose. An entry is either a path, merged at the top level
(``base: [model/srmt-bottleneck.yaml]``), or a one-key mapping ``{section: path}`` that nests a
component preset under that section (``base: [{env: env/bottleneck-train.yaml}]``).

Files and overrides are read as YAML 1.1 (``yaml.safe_load``; OmegaConf's dotlist for overrides), where
a bare on/off/yes/no/y/n is a boolean, except where the schema's field is text (``str``, a ``Literal`` of
strings, an ``Optional`` of those): there the word stays the word, so ``train.compile=off`` is the
choice 'off' while ``train.sf_overrides.with_vtrace=no`` (untyped) is False, as before 8dd573b (which
read every such word as text for one session; a run trained then with such a word in an untyped
value saved the text, and resuming it now is refused as another config, rightly).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

CONFIG_DIR = Path(__file__).resolve().parent
T = TypeVar("T")


class ConfigError(ValueError):
    """A bad config file, key or value; the message is one line."""

    def __init__(self, message: object = "") -> None:
        # one line whatever went into it (a value with a newline, a multi-line library message)
        super().__init__(" | ".join(ln.strip() for ln in str(message).splitlines() if ln.strip()))


def available(kind: str = "") -> list[str]:
    """Names of the shipped YAML files (relative to this folder), optionally under one sub-folder."""
    root = CONFIG_DIR / kind if kind else CONFIG_DIR
    return sorted(str(p.relative_to(CONFIG_DIR)) for p in root.rglob("*.yaml"))


def resolve(name: str | Path, relative_to: Path | None = None) -> Path:
    """Find a config by path, by path relative to ``relative_to``, or by shipped name (``.yaml`` optional):
    the path rule of :mod:`configs.paths` (as given, the user's data folder, the package's own data)."""
    from configs.paths import candidates as rule

    name = str(name)
    candidates = [Path(name).expanduser()]
    if relative_to is not None:
        candidates.append(relative_to / name)
    candidates += rule(name, ("", ".yaml")) + [CONFIG_DIR / "experiment" / f"{name}.yaml"]
    for c in candidates:
        if c.is_file():
            return c.resolve()
    raise ConfigError(
        f"config {name!r} not found; give a YAML path or one of: {', '.join(available('experiment'))}"
    )


class _WordsAsWritten(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2's booleans (only true/false): on/off/yes/no/y/n stay the words
    as written. Used only to recover those words where the schema wants text (:func:`_words_as_text`)."""


_WordsAsWritten.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_WordsAsWritten.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)

_YAML11_WORD = re.compile(r"^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF)$")


def _takes_text(tp: Any) -> bool:
    """A place of type ``tp`` takes text: ``str``, a ``Literal`` of strings, an ``Enum``, or an
    ``Optional``/``Union`` of those (a union that also takes ``bool`` keeps the boolean)."""
    if tp is str or (isinstance(tp, type) and issubclass(tp, enum.Enum)):
        return True
    origin = typing.get_origin(tp)
    if origin is Literal:
        return any(isinstance(a, str) for a in typing.get_args(tp))
    if origin is Union or origin is types.UnionType:
        members = [m for m in typing.get_args(tp) if m is not type(None)]
        return bool not in members and any(_takes_text(m) for m in members)
    return False


takes_text = _takes_text  # public: envs.config checks options dicts, typed only once their kind is known


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # an annotation that cannot be evaluated here: that field is untyped for this
        return {}


def _member_type(tp: Any, key: Any) -> Any:
    """The type of entry ``key`` of a value of type ``tp`` (a dataclass field, a dict value, a list or
    tuple item); ``Any`` where the schema does not say."""
    if typing.get_origin(tp) is Union or typing.get_origin(tp) is types.UnionType:
        members = [m for m in typing.get_args(tp) if m is not type(None)]
        tp = next((m for m in members if _member_type(m, key) is not Any), Any)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _field_types(tp).get(key, Any) if isinstance(key, str) else Any
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is dict:
        return args[1] if len(args) == 2 else Any
    if origin in (list, tuple) and args:
        if origin is list or (len(args) == 2 and args[1] is Ellipsis):
            return args[0]
        index = int(key) if isinstance(key, int) or str(key).isdigit() else -1
        return args[index] if 0 <= index < len(args) else Any
    return Any


def _words_as_text(read: Any, written: Any, tp: Any) -> Any:
    """``read`` (YAML 1.1: on/off/yes/no/y/n are booleans) with each boolean that was such a bare word put
    back to the word where the schema type ``tp`` takes text, so that ``compile: off`` is the choice
    'off' while ``sf_overrides: {with_vtrace: no}`` (untyped) stays False. ``written`` is the same text
    read with YAML 1.2 booleans (the words as written). Returns ``read`` itself when nothing changed."""
    if isinstance(read, bool):
        word = isinstance(written, str) and _YAML11_WORD.match(written)
        return written if word and _takes_text(tp) else read
    if isinstance(read, dict) and isinstance(written, dict):
        out: Any = {k: _words_as_text(v, written.get(k), _member_type(tp, k)) for k, v in read.items()}
        same = all(out[k] is v for k, v in read.items())
    elif isinstance(read, list) and isinstance(written, list) and len(read) == len(written):
        out = [_words_as_text(v, w, _member_type(tp, i)) for i, (v, w) in enumerate(zip(read, written))]
        same = all(x is y for x, y in zip(out, read))
    else:
        return read
    return read if same else out


def load_yaml(text: str, schema: Any = None) -> Any:
    """A user-written YAML document (a config file) as plain data, read as ``yaml.safe_load`` reads it
    (YAML 1.1: bare on/off/yes/no/y/n are booleans), except where ``schema`` (a dataclass type) has a
    text field (``str``, a ``Literal`` of strings, or an ``Optional`` of those): there such a word is
    the word (``compile: off`` is 'off'). Without ``schema`` every value is read as ``yaml.safe_load``."""
    read = yaml.safe_load(text)
    if schema is None or not _has_bool(read):
        return read
    return _words_as_text(read, _as_written(text), schema)


def _as_written(text: str) -> Any:
    """``text`` read with YAML 1.2's booleans, or None where PyYAML's Python parser refuses what the one
    that read it first accepted (OmegaConf's C loader takes a trailing tab): no word is recovered then."""
    try:
        return yaml.load(text, Loader=_WordsAsWritten)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError:
        return None


def _has_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return True
    if isinstance(value, dict):
        return any(_has_bool(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_bool(v) for v in value)
    return False


def _read_yaml(path: Path, schema: Any = None, seen: tuple[Path, ...] = ()) -> Any:
    if path in seen:
        raise ConfigError(f"config {path} includes itself through 'base'")
    try:
        data = load_yaml(path.read_text(), schema) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"config {path}: invalid YAML ({_yaml_reason(e)})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config {path}: not a text (UTF-8) YAML file") from None
    except OSError as e:
        raise ConfigError(f"config {path}: cannot be read ({e.strerror or type(e).__name__})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config {path}: top level must be a mapping, got {type(data).__name__}")
    bases = data.pop("base", []) or []
    if isinstance(bases, str):
        bases = [bases]
    merged = OmegaConf.create({})
    for b in bases:
        if isinstance(b, dict) and len(b) == 1:
            ((section, sub),) = b.items()
            inner = _read_yaml(resolve(sub, path.parent), _member_type(schema, section), seen + (path,))
            merged = OmegaConf.merge(merged, OmegaConf.create({section: inner}))
        elif isinstance(b, str):
            merged = OmegaConf.merge(merged, _read_yaml(resolve(b, path.parent), schema, seen + (path,)))
        else:
            raise ConfigError(f"config {path}: base entry {b!r} must be a path or {{section: path}}")
    return OmegaConf.merge(merged, OmegaConf.create(data))


def _yaml_reason(e: yaml.YAMLError) -> str:
    """The problem of a YAML error in a few words (PyYAML's message spans several lines)."""
    problem = getattr(e, "problem", None) or getattr(e, "context", None)
    if problem:
        return str(problem)
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return lines[0] if lines else type(e).__name__


# dotted key segments: no whitespace, quotes, brackets, '=', '$' or backslashes (OmegaConf's key syntax
# gives those other meanings, and some crash its parser with an IndexError)
_KEY = re.compile(r"^[^\s.=\[\]'\"\\$]+(\.[^\s.=\[\]'\"\\$]+)*$")


def _parse_override(ov: str, schema: Any = None) -> Any:
    """One ``key=value`` override as an OmegaConf tree; a value that is not YAML is a one-line error.

    The value is read as OmegaConf reads a dotlist (YAML 1.1: bare on/off/yes/no/y/n are booleans),
    except that where ``schema`` has a text field at ``key`` (or inside it) such a word stays the word,
    as in config files (:func:`load_yaml`): ``train.compile=off`` is 'off'."""
    key, _, value = ov.partition("=")
    if not _KEY.match(key):
        raise ConfigError(
            f"override {ov!r}: {key!r} is not a config key; keys are dotted names such as env.num_agents "
            "or eval.algorithms.MyModel.kind"
        )
    try:
        tree = OmegaConf.from_dotlist([ov])
    except yaml.YAMLError as e:
        # OmegaConf parses the value as YAML: `[`, `@x`, `%x`, `*x`, `!x`, a backtick... raise PyYAML errors
        raise ConfigError(
            f"override {ov!r}: {value!r} is not a valid YAML value ({_yaml_reason(e)}); quote it inside the "
            f"override to pass it as text, e.g. {key}='\"{value}\"'"
        ) from None
    except OmegaConfBaseException:
        raise  # load() words these
    except (
        Exception
    ) as e:  # OmegaConf's dotlist parser has crashed on odd input (IndexError); never a traceback
        reason = (str(e).splitlines() or [""])[0]
        raise ConfigError(f"override {ov!r} cannot be parsed ({type(e).__name__}: {reason})") from None
    read: Any = OmegaConf.to_container(tree, resolve=False)
    target = schema
    for part in key.split("."):  # from_dotlist nests the value under the key's parts
        read, target = read[part], _member_type(target, part)
    if schema is None or not _has_bool(read):
        return tree
    fixed = _words_as_text(read, _as_written(value), target)
    if fixed is read:
        return tree
    out = OmegaConf.create()
    OmegaConf.update(out, key, fixed)  # what from_dotlist does with the value it read
    return out


_INTERPOLATION = re.compile(r"(\\*)\$\{")


def _literal(value: Any) -> Any:
    r"""``value`` (nested dicts / lists of plain data) with every string escaped for OmegaConf, so that it
    reads back as the same text: ``${`` would start an interpolation (OmegaConf's escape is ``\${``, and
    n backslashes before it are written 2n). A config that came from ``to_dict`` then loads as itself
    even when an override gave a value such as ``\${``."""
    if isinstance(value, str):
        return _INTERPOLATION.sub(lambda m: m.group(1) * 2 + "\\${", value)
    if isinstance(value, dict):
        return {k: _literal(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_literal(v) for v in value]
    return value


def _one_line(e: OmegaConfBaseException, what: str) -> ConfigError:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    msg = lines[0] if lines else type(e).__name__
    key = getattr(e, "full_key", None)
    if key and key not in msg:
        msg = f"{key}: {msg}"
    return ConfigError(f"{what}: {msg}")


def load(schema: type[T], source: str | Path | dict | None = None, overrides: list[str] | None = None) -> T:
    """Build ``schema`` (a dataclass) from a YAML file/name or dict, then dotted ``key=value`` overrides.

    Unknown keys and values of the wrong type raise :class:`ConfigError`; so do errors raised by the
    dataclass' own ``__post_init__`` checks.
    """
    cfg = OmegaConf.structured(schema)
    what = "config"
    try:
        if isinstance(source, dict):  # plain values (e.g. a saved run's config): no interpolation
            cfg = OmegaConf.merge(cfg, OmegaConf.create(_literal(source)))
        elif source is not None:
            path = resolve(source)
            what = f"config {path.name}"
            cfg = OmegaConf.merge(cfg, _read_yaml(path, schema))
        for ov in overrides or []:
            if "=" not in ov:
                raise ConfigError(f"override {ov!r} must look like key=value (e.g. env.num_agents=8)")
            what = f"override {ov!r}"
            cfg = OmegaConf.merge(cfg, _parse_override(ov, schema))
        what = "config"
        obj = OmegaConf.to_object(cfg)
    except OmegaConfBaseException as e:
        raise _one_line(e, what) from None
    except (ValueError, TypeError) as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"{what}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    return obj  # type: ignore[return-value]


def to_dict(obj: Any) -> dict:
    """A config dataclass as plain nested dicts (for saving next to a run)."""
    return dataclasses.asdict(obj)


def to_yaml(obj: Any) -> str:
    return yaml.safe_dump(to_dict(obj), sort_keys=False)
