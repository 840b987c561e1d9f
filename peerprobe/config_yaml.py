"""Reading a config file strictly: a regular file of bounded size, YAML without duplicate keys, runaway aliases,
deep nesting or keys that are not text. Each refusal names the key path (or the file) and the line.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from peerprobe.errors import ConfigError

MAX_BYTES = 64 * 1024  # a real config is a few KB; the cap keeps parsing well under a second
MAX_DEPTH = 10  # the deepest real key, phases[i].snat.vpc1.exclude_snat_cidrs[j], sits 6 collections deep
MAX_NODES = 5_000  # values after alias expansion: a real config has a few hundred (billion-laughs guard)
MAX_ECHO = 80  # characters of user input an error message repeats
MAX_PATH_ECHO = 200
MAP_TAG, SEQ_TAG, MERGE_TAG = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:merge"
BOOL_TAG, STR_TAG = "tag:yaml.org,2002:bool", "tag:yaml.org,2002:str"
KeyPath = tuple[str | int, ...]


def shorten(value: object, limit: int = MAX_ECHO) -> str:
    """repr() of a value a user gave, cut to ``limit`` characters so an error never echoes a huge input."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def dotted(path: KeyPath) -> str:
    """``("phases", 0, "snat")`` -> ``phases[0].snat``; odd or long keys are quoted and cut."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
            continue
        name = part if part.isascii() and part.replace("_", "").replace("-", "").isalnum() else shorten(part, 40)
        text += ("." if text else "") + (name if len(name) <= 40 else name[:39] + "…")
    return text


@dataclass(frozen=True)
class Document:
    """The parsed mapping, and where YAML 1.1 read a word (yes, no, on, off, …) as a boolean: key path -> word."""

    data: object
    boolean_words: dict[KeyPath, str] = field(default_factory=dict)


def read(path: Path) -> Document:
    return parse(read_text(path), source=str(path))


def read_text(path: Path) -> str:
    """The file's text: only a regular file (not a directory, FIFO or device) of at most MAX_BYTES, UTF-8."""
    name = _cut(str(path))
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ConfigError(f"{name}: no such config file") from None
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read the config file ({exc.strerror or exc.__class__.__name__})") from None
    try:
        raw = _read_regular(fd, name)
    finally:
        os.close(fd)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{name}: not UTF-8 text (byte {exc.start})") from None


def _read_regular(fd: int, name: str) -> bytes:
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"{name}: is {_kind(info.st_mode)}, not a regular file")
    if info.st_size > MAX_BYTES:
        raise ConfigError(f"{name}: is {info.st_size} bytes; a config file is at most {MAX_BYTES // 1024} KiB")
    chunks, size = [], 0
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BYTES:  # it grew while we read it
            raise ConfigError(f"{name}: is over {MAX_BYTES // 1024} KiB; a config file is at most that")
    return b"".join(chunks)


def _kind(mode: int) -> str:
    kinds = {
        stat.S_ISDIR: "a directory",
        stat.S_ISFIFO: "a FIFO",
        stat.S_ISCHR: "a character device",
        stat.S_ISBLK: "a block device",
        stat.S_ISSOCK: "a socket",
    }
    return next((text for test, text in kinds.items() if test(mode)), "not a regular file")


def _cut(text: str) -> str:
    return text if len(text) <= MAX_PATH_ECHO else text[: MAX_PATH_ECHO - 1] + "…"


def parse(text: str, *, source: str = "config") -> Document:
    """YAML text to a Document, refusing what no real config needs (see the module docstring)."""
    source = _cut(source)
    _check_depth(text, source)  # before the composer, which recurses once per level
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise ConfigError(_yaml_error(exc, source, text)) from None
    if root is None:
        return Document({})
    builder = _Builder(source)
    return Document(builder.value(root, ()), builder.boolean_words)


def _check_depth(text: str, source: str) -> None:
    depth = 0
    try:
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    line = event.start_mark.line + 1 if event.start_mark else 0
                    raise ConfigError(f"{source}: line {line}: nested deeper than {MAX_DEPTH} levels; no config key is")
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError as exc:
        raise ConfigError(_yaml_error(exc, source, text)) from None


def _yaml_error(exc: yaml.YAMLError, source: str, text: str) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    if isinstance(exc, yaml.reader.ReaderError):
        line = text[: exc.position].count("\n") + 1
        code = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "\0")
        return f"{source}: line {line}: invalid YAML: unacceptable character #x{code:04x}"
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)  # e.g. "expected a single document in the stream"
    said = f"{context}, {problem}" if context and str(problem).startswith("but ") else str(problem)
    return f"{source}: {where}invalid YAML: {_cut(said)}"


# libyaml's parser when PyYAML has it (a pure-Python scan of a 64 KiB file takes a good part of a second).
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_SafeLoader):  # type: ignore[misc,valid-type]
    """The safe loader's resolver and scalar constructors; collections are built by _Builder."""


class _Builder:
    """Builds Python values from the composed nodes, counting every value an alias expands to."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.loader = _Loader("")
        self.boolean_words: dict[KeyPath, str] = {}
        self.count = 0
        self.open: set[int] = set()  # nodes being built: an alias back to one of them is a cycle

    def value(self, node: yaml.Node, path: KeyPath) -> object:
        self.count += 1
        if self.count > MAX_NODES:
            raise ConfigError(
                f"{self._where(path, node)}aliases expand to more than {MAX_NODES} values; a config needs far fewer"
            )
        if id(node) in self.open:
            raise ConfigError(f"{self._where(path, node)}an alias refers to the value that contains it")
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        self.open.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode) and node.tag == SEQ_TAG:
                return [self.value(item, (*path, index)) for index, item in enumerate(node.value)]
            if isinstance(node, yaml.MappingNode) and node.tag == MAP_TAG:
                return self._mapping(node, path)
        finally:
            self.open.discard(id(node))
        raise ConfigError(f"{self._where(path, node)}the YAML tag {shorten(node.tag)} is not supported")

    def _scalar(self, node: yaml.ScalarNode, path: KeyPath) -> object:
        try:
            value = self.loader.construct_object(node)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{self._where(path, node)}{_cut(str(getattr(exc, 'problem', exc)))}") from None
        if node.tag == BOOL_TAG and node.value.lower() not in ("true", "false"):
            self.boolean_words[path] = node.value
        return value

    def _mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[str, object]:
        merged: dict[str, object] = {}
        explicit: dict[str, int] = {}  # key -> line
        for key_node, value_node in node.value:
            if key_node.tag == MERGE_TAG:  # `<<: *defaults`: explicit keys win, whatever their order
                merged = {**self._merged(value_node, path), **merged}
                continue
            key = self._key(key_node, path)
            line = key_node.start_mark.line + 1
            if key in explicit:
                raise ConfigError(
                    f"{dotted((*path, key))}: duplicate key {shorten(key)} at line {line} "
                    f"(first at line {explicit[key]})"
                )
            explicit[key] = line
            merged[key] = self.value(value_node, (*path, key))
        return merged

    def _merged(self, node: yaml.Node, path: KeyPath) -> dict[str, object]:
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        result: dict[str, object] = {}
        for source in reversed(sources):  # the first mapping listed wins (YAML merge key spec)
            value = self.value(source, path)
            if not isinstance(value, dict):
                raise ConfigError(f"{self._where(path, node)}`<<` merges only mappings")
            result.update(value)
        return result

    def _key(self, node: yaml.Node, path: KeyPath) -> str:
        if not isinstance(node, yaml.ScalarNode) or node.tag != STR_TAG:
            shown = node.value if isinstance(node, yaml.ScalarNode) else node.tag.rsplit(":", 1)[-1]
            raise ConfigError(
                f"{self._where(path, node)}the key {shorten(shown)} is not text; keys are names like `nodes`"
            )
        return str(node.value)

    def _where(self, path: KeyPath, node: yaml.Node) -> str:
        line = f"line {node.start_mark.line + 1}: " if node.start_mark else ""
        return f"{dotted(path)}: {line}" if path else f"{self.source}: {line}"
