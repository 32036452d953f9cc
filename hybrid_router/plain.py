"""Small record classes without `dataclasses`.

`dataclasses` imports `inspect`, which costs the prompt hook (a fresh process per prompt) about
20 ms on these machines — most of its budget. The records the hook path needs (signals,
decisions, log rows) derive from `Record` instead: fields are `__slots__`, defaults a class
attribute, and construction, `replace`, equality and repr behave like a dataclass's.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` costs the prompt hook more than it can afford
    from typing import ClassVar


class Record:
    # Field order for positional construction lives in `_fields`, not in `__slots__` (which
    # linters like to sort): subclasses write `__slots__ = _fields`.
    _fields: ClassVar[tuple[str, ...]] = ()
    __slots__: tuple[str, ...] = ()
    _defaults: ClassVar[dict[str, object]] = {}
    _frozen = False

    def __init__(self, *args: object, **kwargs: object) -> None:
        names = self._fields
        if len(args) > len(names):
            raise TypeError(
                f"{type(self).__name__} takes at most {len(names)} positional arguments"
            )
        values = dict(zip(names, args))
        for name, value in kwargs.items():
            if name not in names:
                raise TypeError(f"{type(self).__name__} has no field {name!r}")
            if name in values:
                raise TypeError(f"{type(self).__name__} got {name!r} twice")
            values[name] = value
        for name in names:
            if name in values:
                value = values[name]
            elif name in self._defaults:
                value = self._defaults[name]
            else:
                raise TypeError(f"{type(self).__name__} is missing {name!r}")
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        if self._frozen:
            raise AttributeError(f"{type(self).__name__} is immutable; use replace()")
        object.__setattr__(self, name, value)

    def replace(self, **changes: object):
        values = {name: getattr(self, name) for name in self._fields}
        values.update(changes)
        return type(self)(**values)

    def as_dict(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self._fields}

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self._fields)

    def __hash__(self) -> int:
        if not self._frozen:
            raise TypeError(f"unhashable type: {type(self).__name__!r}")
        return hash(tuple(getattr(self, n) for n in self._fields))

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in self._fields)
        return f"{type(self).__name__}({fields})"
