"""Config mistakes of the Lightning commands, each in one line: the key, what was expected and
what was given, and for an unknown key the known key it most resembles.

The parser (jsonargparse, under LightningCLI) stops at the first mistake and describes it in a
nested report, or, for an unknown key, prints its whole usage. :func:`explain_parse_error` turns
that report into one line per mistake and finds the others: every command-line option it could
name is taken out and the rest parsed again, until the parser accepts the rest or the mistake
lies in a config file. A mistake in a config file is reported alone (the first the parser met).
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import inspect
import re
from argparse import ArgumentError
from collections.abc import Callable, Iterable, Sequence
from typing import Any

MAX_REPORTED = 20
UNKNOWN_KEY = "unknown key"
_UNRECOGNIZED = re.compile(r"unrecognized arguments: (.*)", re.DOTALL)
_NOT_ACCEPTED_KEY = re.compile(r"does not accept option '([^']+)'")
_COMPUTE_FN = re.compile(r"Call to compute_fn of link .* failed: (.*)", re.DOTALL)
_PARSER_KEY = re.compile(r'Parser key "([^"]+)"')
_NOT_ACCEPTED = re.compile(r"Option '([^']+)' is not accepted")
_CLASS_PATH = re.compile(r"class_path[= ]'([\w.]+)'")
_NESTED_ARG = re.compile(r"NestedArg\(key='([^']+)'")
_EXPECTED = re.compile(r"Expected an? <class '([\w.]+)'>")
_SUBTYPE = re.compile(r"<class '([\w.]+)'>|([\w.]+\[[^\]]*\])")
_VALUE = re.compile(r"(?:Got value|Given value): (.*)")
_TYPE_NAMES = {"NoneType": "null", "str": "a string", "int": "an integer", "float": "a number",
               "bool": "true or false", "dict": "a mapping", "list": "a list"}


class ConfigError(ValueError):
    """The command line or a config file names an unknown key or gives a value of the wrong type;
    the message has one line per mistake."""


@dataclasses.dataclass(frozen=True)
class Mistake:
    """One mistake: ``message`` for the user; ``option`` the command-line key to take out before
    looking for the next one (None when the value comes from a config file)."""

    message: str
    option: str | None = None


def explain_parse_error(error: ArgumentError, args: Sequence[str], known_keys: Iterable[str],
                        parse: Callable[[list[str]], Any], help_command: str) -> str:
    """Every mistake of ``args`` as one line each, starting with ``error`` (the parser's first);
    ``parse`` parses a command line again (raising ArgumentError), ``known_keys`` are the dotted
    keys the command accepts, ``help_command`` what prints them."""
    known = sorted(set(known_keys))
    lines: list[str] = []
    remaining = list(args)
    while error is not None and len(lines) < MAX_REPORTED:
        mistakes = describe(str(error), known)
        lines += [m.message for m in mistakes if m.message not in lines]
        shorter = without_options(remaining, [m.option for m in mistakes if m.option])
        if shorter == remaining:
            break
        remaining, error = shorter, None
        try:
            parse(remaining)
        except ArgumentError as next_error:
            error = next_error
    if any(line.startswith(UNKNOWN_KEY) for line in lines):
        lines.append(f"(every accepted key: {help_command})")
    return "\n".join(lines)


def describe(message: str, known_keys: Sequence[str]) -> list[Mistake]:
    """The mistakes one parser error message reports (see the module doc)."""
    if unrecognized := _UNRECOGNIZED.match(message):
        keys = [token.partition("=")[0].removeprefix("--")
                for token in unrecognized.group(1).split() if token.startswith("--")]
        return [unknown_key(key, known_keys, option=key) for key in keys] or [Mistake(message)]
    if unknown := _NOT_ACCEPTED_KEY.search(message):
        return [unknown_key(unknown.group(1), known_keys)]
    if computed := _COMPUTE_FN.search(message):
        return [Mistake(computed.group(1).strip())]
    keys = _PARSER_KEY.findall(message)
    if not keys:
        return [Mistake(message.strip())]
    if not_accepted := _NOT_ACCEPTED.search(message):
        return [unknown_class_key(message, keys, not_accepted)]
    return [wrong_type(message, keys)]


def unknown_key(key: str, known_keys: Sequence[str], option: str | None = None) -> Mistake:
    """A key the command does not have, with the closest known key."""
    close = difflib.get_close_matches(key, known_keys, n=1, cutoff=0.6)
    return Mistake(f"{UNKNOWN_KEY} {key}" + (f"; did you mean {close[0]}?" if close else ""),
                   option)


def unknown_class_key(message: str, keys: list[str], not_accepted: re.Match) -> Mistake:
    """A key the class named by ``class_path`` does not accept (a model, encoder, callback or
    dataset entry), with the closest argument of that class."""
    name = not_accepted.group(1)
    class_path = _class_of(message, not_accepted)
    nested = _NESTED_ARG.search(message)
    parents = ".".join([keys[0], *(f"init_args.{k}" for k in keys[1:])])
    if nested:  # given on the command line: the parser names the path below the top key
        key = f"{keys[0]}.init_args.{nested.group(1)}"
    else:  # a class takes init_args; a dataclass entry (of a list) its fields directly
        key = f"{name} in {parents}" if _is_dataclass(class_path) else f"{parents}.init_args.{name}"
    accepted = _accepted_arguments(class_path)
    suggestion = difflib.get_close_matches(name, accepted, n=1, cutoff=0.6)
    hint = (f"; did you mean {suggestion[0]}?" if suggestion else
            f" ({class_path} accepts {', '.join(accepted)})" if accepted else "")
    return Mistake(f"{UNKNOWN_KEY} {key} ({class_path} has no argument {name!r}){hint}",
                   key if nested else None)


def wrong_type(message: str, keys: list[str]) -> Mistake:
    """A value of the wrong type: the key, the expected types and the value given (read from
    the report of the innermost key)."""
    key = ".".join([keys[0], *(f"init_args.{k}" for k in keys[1:])])
    innermost = message[[m.start() for m in _PARSER_KEY.finditer(message)][-1]:]
    lines = [line.strip(" -") for line in innermost.splitlines()[1:] if line.strip()]
    union = next((line for line in lines if line.startswith("Subtypes:")), None)
    expected = (["".join(t) for t in _SUBTYPE.findall(union)] if union and "Union" in lines[0]
                else _EXPECTED.findall(lines[0]) if lines else [])
    value = _VALUE.search(innermost)
    if not expected or not value:  # another kind of report: keep its first specific line
        return Mistake(f"{key}: {lines[0] if lines else message.strip()}", key)
    names = " or ".join(dict.fromkeys(_TYPE_NAMES.get(t, t) for t in expected))
    return Mistake(f"{key}: expected {names}, got {value.group(1).strip()}", key)


def without_options(args: Sequence[str], options: Iterable[str]) -> list[str]:
    """``args`` without ``--OPTION VALUE`` and ``--OPTION=VALUE`` for each option."""
    flags = {f"--{option}" for option in options}
    kept: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg in flags:
            has_value = index + 1 < len(args) and not args[index + 1].startswith("--")
            index += 2 if has_value else 1
            continue
        if arg.partition("=")[0] not in flags:
            kept.append(arg)
        index += 1
    return kept


def _class_of(message: str, not_accepted: re.Match) -> str:
    """The ``class_path`` the unaccepted option was given to: the one on the same line (the
    value the parser shows), else the nearest one before it."""
    line_end = message.find("\n", not_accepted.end())
    same_line = _CLASS_PATH.search(message, not_accepted.end(), line_end if line_end >= 0 else None)
    if same_line:
        return same_line.group(1)
    before = _CLASS_PATH.findall(message, 0, not_accepted.start())
    return before[-1] if before else "?"


def _resolve(class_path: str) -> Any:
    module, _, name = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None


def _is_dataclass(class_path: str) -> bool:
    return dataclasses.is_dataclass(_resolve(class_path))


def _accepted_arguments(class_path: str) -> list[str]:
    """The argument names of the class (following ``**kwargs`` to its base classes)."""
    found: list[str] = []
    cls = _resolve(class_path)
    for base in inspect.getmro(cls) if inspect.isclass(cls) else []:
        if base is object or "__init__" not in vars(base):
            continue
        parameters = inspect.signature(base.__init__).parameters.values()
        found += [p.name for p in parameters if p.name != "self"
                  and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and p.name not in found]
        if not any(p.kind == p.VAR_KEYWORD for p in parameters):
            break
    return found
