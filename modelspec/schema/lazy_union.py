"""A discriminated union whose members' validators are built the first time a value needs one.

Pydantic builds a union's validator from every member at once; the spec's layer union has a
hundred members (twice: Sequential and Functional entries), and building them all was most of
`modelspec lint`'s start-up. `LazyUnion` validates a value with its tag's member only, and
raises exactly the errors pydantic's own discriminated union raises, locations included, so
`modelspec.validate` reads both alike.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, GetCoreSchemaHandler, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError, PydanticKnownError, core_schema

TagOf = Callable[[Any], str | None]
_KNOWN = frozenset(typing.get_args(core_schema.ErrorType))


class LazyUnion:
    """`Annotated[Any, LazyUnion(members, tag_of)]`: `members` maps a tag to its model's maker."""

    def __init__(self, members: Mapping[str, Callable[[], type[BaseModel]]], tag_of: TagOf) -> None:
        self.members = dict(sorted(members.items()))
        self.tag_of = tag_of
        self._expected = ", ".join(repr(tag) for tag in self.members)
        self._discriminator = f"{tag_of.__name__}()"

    def models(self) -> set[type[BaseModel]]:
        """Every member's model (built now), for code that walks a schema's annotations."""
        return {make() for make in self.members.values()}

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(self._validate)

    def _validate(self, value: Any) -> BaseModel:
        tag = self.tag_of(value)
        if tag is None:
            raise PydanticKnownError("union_tag_not_found", {"discriminator": self._discriminator})
        make = self.members.get(tag)
        if make is None:
            context = {
                "discriminator": self._discriminator,
                "tag": tag,
                "expected_tags": self._expected,
            }
            raise PydanticKnownError("union_tag_invalid", context)
        try:
            return make().model_validate(value)
        except ValidationError as exc:
            raise _under(tag, exc) from None


def _under(tag: str, exc: ValidationError) -> ValidationError:
    """The same errors located under `tag`, as pydantic's tagged union reports them."""
    details: list[InitErrorDetails] = []
    for error in exc.errors(include_url=False):
        kind = error["type"]
        detail: InitErrorDetails = {
            "type": kind if kind in _KNOWN else PydanticCustomError(kind, error["msg"]),
            "loc": (tag, *error["loc"]),
            "input": error["input"],
        }
        if "ctx" in error:
            detail["ctx"] = error["ctx"]
        details.append(detail)
    return ValidationError.from_exception_data(exc.title, details)
