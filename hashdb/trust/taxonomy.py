"""The label taxonomy: a versioned JSON file shipped with the package, replaceable by the operator."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from hashdb.errors import InvalidInput, UnknownLabel

MAX_LABELS = 16


@dataclass(frozen=True, slots=True)
class Taxonomy:
    version: str
    labels: dict[str, str]

    @classmethod
    def load(cls, path: str | Path | None = None) -> Taxonomy:
        if path is None:
            text = resources.files("hashdb").joinpath("data/labels.json").read_text("utf-8")
        else:
            try:
                text = Path(path).read_text("utf-8")
            except OSError as exc:
                raise InvalidInput(f"cannot read taxonomy {path}: {exc.strerror}") from exc
        try:
            doc = json.loads(text)
            labels = {str(k): str(v) for k, v in doc["labels"].items()}
            version = str(doc["version"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InvalidInput(f"taxonomy file is not valid: {exc}") from exc
        if not labels:
            raise InvalidInput("taxonomy file defines no labels")
        return cls(version, labels)

    def validate(self, labels: Iterable[object]) -> tuple[str, ...]:
        """Check every label is a known id; return them de-duplicated, in the order given."""
        out: list[str] = []
        for label in labels:
            if not isinstance(label, str):
                # A malformed request (400), not a well-formed label this list lacks (422). Shown
                # as JSON: the value arrived in a JSON body, and its Python type name did not say which.
                shown = json.dumps(label, ensure_ascii=True, default=repr)
                shown = shown if len(shown) <= 64 else shown[:64] + "…"
                raise InvalidInput(f"labels are strings (label ids), not {shown}; valid labels: "
                                   f"{', '.join(self.labels)}")
            if label not in self.labels:
                shown = label if len(label) <= 64 else label[:64] + "…"
                raise UnknownLabel(f"unknown label {shown!r}; valid labels: {', '.join(self.labels)}")
            if label not in out:
                out.append(label)
        if not out:
            raise UnknownLabel(f"at least one label is required; valid labels: {', '.join(self.labels)}")
        if len(out) > MAX_LABELS:
            raise InvalidInput(f"at most {MAX_LABELS} labels per hash")
        return tuple(out)
