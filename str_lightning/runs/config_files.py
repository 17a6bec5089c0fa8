"""Config files that build on other files: ``base:``, sub-config files and required values.

The CLI reads every YAML document through :func:`load_config_text` (its jsonargparse parser
mode), which composes the document before LightningCLI parses it:

- **Sub-config files.** A string value that names an existing ``.yaml``/``.yml`` file, relative
  to the file that holds it (``data: ../data/synthetic.yaml``), is replaced by that file's
  composed content.
- **``base:``.** A mapping with the key ``base`` (a file, or a list of files merged in order,
  relative to the file that says it) is the base's mapping with its own other keys merged over
  it. At the top of a file this makes an experiment a few lines on top of another.
- **Merging.** Mappings merge key by key. An override replaces the base's value instead when it
  is a complete definition of its own (a sub-config file, or a mapping with its own ``base``) or
  names another ``class_path`` (other class, other arguments). Lists and scalars replace.
- **Interpolation.** ``${...}`` is resolved by OmegaConf once, on the composed document, so a
  fragment may refer to keys of the experiment that includes it (``${model.init_args.monitor}``).
- **Required values.** ``???`` marks a value the user must give (a config or the command line);
  it survives composing and parsing, and :func:`required_keys` finds what is still missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

BASE_KEY = "base"
REQUIRED = "???"
PARSER_MODE = "omegaconf-compose"
_CONFIG_SUFFIXES = (".yaml", ".yml")


class ConfigFileError(ValueError):
    """A config that cannot be composed: a missing base, a loop, an unresolvable ``${...}``."""


class _Definition(dict):
    """A mapping that defines its value completely: it replaces, never merges into, a base."""


def compose_file(path: str | Path) -> Any:
    """The composed and interpolated content of the config file ``path``."""
    return resolve_interpolations(_compose_file(Path(path).absolute(), ()))


def load_config_text(value: str) -> Any:
    """The parser mode's loader: a YAML document composed relative to the working directory
    (jsonargparse runs loaders in the directory of the file being read)."""
    loaded = yaml.safe_load(value)
    if not isinstance(loaded, (dict, list)):
        return loaded
    try:
        document = OmegaConf.to_container(OmegaConf.create(value), resolve=False)
    except OmegaConfBaseException as err:
        raise ConfigFileError(str(err)) from err
    return resolve_interpolations(_expand(document, Path.cwd(), ()))


def register_parser_mode() -> str:
    """Register :func:`load_config_text` with jsonargparse; returns the mode's name."""
    from jsonargparse import set_loader

    set_loader(PARSER_MODE, load_config_text, (yaml.YAMLError, ConfigFileError))
    return PARSER_MODE


def resolve_interpolations(document: Any) -> Any:
    """``document`` with every ``${...}`` resolved against itself; ``???`` stays as it is."""
    if not isinstance(document, (dict, list)) or "${" not in str(document):
        return _plain(document)
    try:
        return OmegaConf.to_container(OmegaConf.create(_plain(document)), resolve=True,
                                      throw_on_missing=False)
    except OmegaConfBaseException as err:
        raise ConfigFileError(f"cannot resolve an interpolation: {err}") from err


def required_keys(config: Any, prefix: str = "") -> list[str]:
    """Dotted keys of ``config`` (nested mappings and lists) whose value is still ``???``."""
    if isinstance(config, Mapping):
        return [key for name, value in config.items()
                for key in required_keys(value, f"{prefix}{name}.")]
    if isinstance(config, (list, tuple)):
        return [key for index, value in enumerate(config)
                for key in required_keys(value, f"{prefix}{index}.")]
    return [prefix.rstrip(".")] if config == REQUIRED else []


# ----------------------------------------------------------------------------- composing


def _compose_file(path: Path, chain: tuple[Path, ...]) -> Any:
    if path in chain:
        raise ConfigFileError("config files include each other: "
                              + " -> ".join(str(p) for p in (*chain, path)))
    if not path.is_file():
        where = f" (named in {chain[-1]})" if chain else ""
        raise ConfigFileError(f"config file {path}{where} does not exist")
    try:
        document = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    except (OmegaConfBaseException, yaml.YAMLError) as err:
        raise ConfigFileError(f"{path}: {err}") from err
    expanded = _expand(document, path.parent, (*chain, path))
    return _Definition(expanded) if isinstance(expanded, dict) else expanded


def _expand(node: Any, directory: Path, chain: tuple[Path, ...]) -> Any:
    """Sub-config files read in place and ``base`` keys merged, relative to ``directory``."""
    if isinstance(node, str) and node.endswith(_CONFIG_SUFFIXES) and (directory / node).is_file():
        return _compose_file((directory / node).resolve(), chain)
    if isinstance(node, list):
        return [_expand(item, directory, chain) for item in node]
    if not isinstance(node, dict):
        return node
    own = {key: _expand(value, directory, chain) for key, value in node.items() if key != BASE_KEY}
    if BASE_KEY not in node:
        return own
    bases = node[BASE_KEY] if isinstance(node[BASE_KEY], list) else [node[BASE_KEY]]
    merged: dict[str, Any] = {}
    for base in bases:
        if not isinstance(base, str):
            raise ConfigFileError(f"{chain[-1] if chain else 'config'}: {BASE_KEY}: expected a "
                                  f"file path or a list of them, got {base!r}")
        content = _compose_file((directory / base).resolve(), chain)
        if not isinstance(content, dict):
            raise ConfigFileError(f"{base} (a {BASE_KEY} in {chain[-1] if chain else 'config'}): "
                                  f"expected a mapping, got {type(content).__name__}")
        merged = _merge(merged, dict(content))  # bases merge into each other, in order
    return _Definition(_merge(merged, own))


def _merge(base: Any, override: Any) -> Any:
    replaces = (isinstance(override, _Definition) or not isinstance(base, dict)
                or not isinstance(override, dict)
                or override.get("class_path", base.get("class_path")) != base.get("class_path"))
    if replaces:
        return override
    merged = dict(base)
    for key, value in override.items():
        merged[key] = _merge(base[key], value) if key in base else value
    return merged


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: _plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_plain(item) for item in node]
    return node
