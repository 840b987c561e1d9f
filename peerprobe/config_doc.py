"""The config explained from its own schema: `peerprobe config show` (YAML with each key's description as a
comment) and docs/config.md. Regenerate the reference with `python -m peerprobe.config_doc docs/config.md`.
"""

from __future__ import annotations

import json
import sys
import textwrap
import types
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from annotated_types import Ge, Le
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from peerprobe.config import LAB_RESERVED, NOT_UNICAST, OUTSIDE_MAX_PREFIX, ExperimentConfig, model_of
from peerprobe.config_yaml import MAX_BYTES, MAX_DEPTH, MAX_NODES

INDENT = "  "
COMMENT_WIDTH = 98  # comments wrap to fit a 100-column terminal
DOC_PATH = Path(__file__).resolve().parent.parent / "docs" / "config.md"


def render_yaml(config: ExperimentConfig, *, source: str | None = None) -> str:
    """The effective config as YAML that loads back to the same config, each key preceded by its description."""
    origin = f"the defaults merged with {source}" if source else "the defaults (no --config)"
    lines = [f"# peerprobe's effective config: {origin}.", "# Every key below can be set in a config file."]
    lines.extend(_model_lines(config, 0))
    return "\n".join(lines) + "\n"


def _model_lines(model: BaseModel, depth: int, *, comments: bool = True) -> Iterator[str]:
    pad = INDENT * depth
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        if comments and field.description:
            width = max(COMMENT_WIDTH - len(pad), 40)
            yield from (f"{pad}# {line}" for line in textwrap.wrap(field.description, width))
        if isinstance(value, BaseModel):
            yield f"{pad}{name}:"
            yield from _model_lines(value, depth + 1, comments=comments)
        elif isinstance(value, list) and value and isinstance(value[0], BaseModel):
            yield f"{pad}{name}:"
            for index, item in enumerate(value):  # the items share one schema: comment the first only
                item_lines = list(_model_lines(item, depth + 2, comments=comments and index == 0))
                yield from _list_item(item_lines, pad + INDENT)
        else:
            yield f"{pad}{_leaf(name, value)}"


def _list_item(lines: list[str], pad: str) -> Iterator[str]:
    """Item lines indented two levels deeper; the first key line takes the `- ` marker, its comment sits above."""
    first_key = next(index for index, line in enumerate(lines) if not line.lstrip().startswith("#"))
    for index, line in enumerate(lines):
        if index < first_key:
            yield pad + line.lstrip()
        else:
            yield pad + "- " + line.lstrip() if index == first_key else line


def _leaf(name: str, value: object) -> str:
    if isinstance(value, tuple):
        value = list(value)
    text = yaml.safe_dump({name: value}, default_flow_style=True, width=10**6, sort_keys=False).strip()
    return text[1:-1]  # the flow mapping's braces: `{name: value}` -> `name: value`


# --- docs/config.md ------------------------------------------------------------------------------------


HEADER_TEMPLATE = """# Configuration reference

<!-- Generated from peerprobe/config.py by `python -m peerprobe.config_doc docs/config.md`; edit the schema's
descriptions there, not this file (a test fails when the two disagree). -->

A config is a YAML file given with `--config FILE` (`-c FILE`). Every key has a default, and the defaults are
the workshop topology, so a config names only what differs. Mappings merge into the defaults (`vpc1` and `vpc2`
keep their own defaults), lists replace them (`phases`, `open_from_peer: []` means none), and each phase's
`snat` is absolute: a setting a phase leaves out is unset in aws-node, not carried over from the phase before.

`peerprobe config show --config FILE` prints the effective config, every key with its description.

## What is refused

Bad input exits with code 2 before anything starts, with one line per problem that begins with the key path
(`clusters.vpc1.nodes: …`; a rule about several keys names them all, and says "overlaps" for overlaps):

- unknown keys (with a suggestion: `services.externalTrafficPolicy` → `services.external_traffic_policy`);
- names, regions and phase names that do not match in full, in ASCII (no trailing newline, no other digits);
- words YAML 1.1 reads as booleans (`yes`, `no`, `on`, `off`) where a number or text is meant: quote them;
- a CIDR with host bits set (`172.16.0.1/16`) is an error, not rounded down;
- VPC CIDRs outside /16-/28, not unicast ({not_unicast}),
  or in the ranges the lab keeps for itself ({lab_reserved});
- `vpcs.<k>.secondary_cidrs` that overlap any other block of either VPC or a service CIDR, or that AWS does not
  associate with a primary block of that range (the table in the VPC user guide's "VPC CIDR blocks": beside an
  RFC 1918 primary no other RFC 1918 range and no `198.19.0.0/16`, nor `172.31.0.0/16` beside `172.16.0.0/12`;
  `100.64.0.0/10` and publicly routable blocks are permitted beside every primary);
- `clusters.<k>.custom_networking.cidr` that is not one of that VPC's `secondary_cidrs` or too small for a pod
  subnet per zone; custom networking before VPC CNI 1.2.0, security groups for pods before 1.7.7, and
  `pod_security_groups.mode: standard` before 1.11.0;
- `outside_cidrs` with a prefix shorter than /{outside} or more than a /{outside} of addresses in all: they become
  the load balancers' source ranges;
- YAML with duplicate keys, aliases that expand to more than {nodes} values, nesting deeper than {depth} levels,
  keys that are not text or tags other than the standard ones; files that are not regular files (a directory,
  a FIFO, a device) or larger than {kib} KiB. YAML errors give the line.

## Keys
"""


def _header() -> str:
    return HEADER_TEMPLATE.format(
        not_unicast=", ".join(f"`{cidr}`" for cidr in NOT_UNICAST),
        lab_reserved=", ".join(f"`{cidr}`" for cidr in LAB_RESERVED),
        outside=OUTSIDE_MAX_PREFIX,
        nodes=MAX_NODES,
        depth=MAX_DEPTH,
        kib=MAX_BYTES // 1024,
    )


def render_markdown() -> str:
    lines = [_header()]
    defaults = ExperimentConfig()
    fields = ExperimentConfig.model_fields
    top = [name for name, field in fields.items() if model_of(field.annotation) is None]
    rows = [row for name in top for row in _rows(name, fields[name], getattr(defaults, name))]
    lines.extend(_table("Top level", "Keys at the top of the file.", rows))
    for name, field in fields.items():
        if model_of(field.annotation) is not None:
            rows = list(_rows(name, field, getattr(defaults, name)))
            lines.extend(_table(f"`{name}`", _sentence(field.description), rows))
    return "\n".join(lines).rstrip("\n") + "\n"


def _table(title: str, sentence: str, rows: list[tuple[str, FieldInfo, object]]) -> Iterator[str]:
    yield f"### {title}\n"
    yield f"{sentence}\n"
    yield "| key | type | default | description |"
    yield "|---|---|---|---|"
    for path, inner, value in rows:
        yield f"| `{path}` | {_type_text(inner)} | {_default_text(value)} | {_cell(inner.description or '')} |"
    yield ""


def _rows(path: str, field: FieldInfo, value: object) -> Iterator[tuple[str, FieldInfo, object]]:
    model = model_of(field.annotation)
    if model is None:
        yield path, field, value
        return
    is_list = get_origin(field.annotation) is list
    sample = None if is_list else value
    prefix = f"{path}[]" if is_list else path
    if is_list or value is None:  # a list of mappings, or an optional mapping that defaults to null
        yield path, field, value
    for name, inner in model.model_fields.items():
        # A list's items are new mappings: their keys show the schema's defaults, not the first item's values.
        inner_value = getattr(sample, name) if isinstance(sample, BaseModel) else _field_default(inner)
        yield from _rows(f"{prefix}.{name}", inner, inner_value)


def _field_default(field: FieldInfo) -> object:
    if field.is_required():
        return _NO_DEFAULT
    return field.get_default(call_default_factory=True)


class _NoDefault:
    pass


_NO_DEFAULT = _NoDefault()


def _type_text(field: FieldInfo) -> str:
    text = _annotation_text(field.annotation)
    low = next((m.ge for m in field.metadata if isinstance(m, Ge)), None)
    high = next((m.le for m in field.metadata if isinstance(m, Le)), None)
    if low is not None and high is not None:
        text += f" {low}–{high}"
    return _cell(text)


def _annotation_text(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is Literal:
        return " | ".join(f"`{arg}`" for arg in get_args(annotation))
    if origin in (Union, types.UnionType):
        return " or ".join(_annotation_text(arg) for arg in get_args(annotation))
    if origin is list:
        return f"list of {_annotation_text(get_args(annotation)[0])}"
    names: dict[object, str] = {bool: "boolean", int: "integer", float: "number", str: "text", type(None): "null"}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "mapping"
    return names.get(annotation, str(annotation))


def _default_text(value: object) -> str:
    if isinstance(value, _NoDefault):
        return "(required)"
    if isinstance(value, list) and value and isinstance(value[0], BaseModel):
        return _cell(", ".join(str(getattr(item, "name", "…")) for item in value))
    if isinstance(value, BaseModel):
        return ""
    return f"`{json.dumps(value)}`"


def _sentence(text: str | None) -> str:
    text = text or ""
    return (text[:1].upper() + text[1:] + ".") if text else ""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m peerprobe.config_doc [PATH]`: write the reference (default docs/config.md);
    `--check [PATH]`: exit 1 when the file differs from the schema."""
    args = list(sys.argv[1:] if argv is None else argv)
    check = "--check" in args
    target = Path(next((a for a in args if a != "--check"), DOC_PATH))
    text = render_markdown()
    if check:
        current = target.read_text(encoding="utf-8") if target.is_file() else ""
        if current != text:
            print(f"{target} is out of date: run `python -m peerprobe.config_doc {target}`", file=sys.stderr)
            return 1
        return 0
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
