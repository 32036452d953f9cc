"""Small record classes without `dataclasses`.

`dataclasses` imports `inspect`, which costs the prompt hook (a fresh process per prompt) about
20 ms on these machines — most of its budget. The records the hook path needs (signals,
decisions, log rows) derive from `Record` instead. A record declares its fields as annotated
class attributes, as a dataclass does; the metaclass turns them into `__slots__` (in declaration
order, which positional construction follows) and their values into defaults. Construction,
`replace`, equality and repr behave like a dataclass's, and `frozen=True` forbids assignment.
Type checkers read the fields through `dataclass_transform`.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` costs the prompt hook more than it can afford
    from typing import Any, ClassVar, Self, dataclass_transform
else:

    def dataclass_transform(**_options):
        return lambda cls: cls


@dataclass_transform()
class RecordMeta(type):
    """Builds a record class from its annotations: `_fields`, `__slots__`, `_defaults`."""

    def __new__(
        mcls, name: str, bases: tuple[type, ...], namespace: dict[str, Any], frozen: bool = False
    ) -> RecordMeta:
        annotations: dict[str, str] = namespace.get("__annotations__", {})
        own = tuple(
            field for field, kind in annotations.items() if not str(kind).startswith("ClassVar")
        )
        inherited: tuple[str, ...] = ()
        defaults: dict[str, object] = {}
        for base in bases:
            inherited += getattr(base, "_fields", ())
            defaults.update(getattr(base, "_defaults", {}))
        for field in own:
            if field in namespace:  # a default: kept per class, not as a class attribute
                defaults[field] = namespace.pop(field)
        namespace["__slots__"] = own
        namespace["_fields"] = inherited + own
        namespace["_names"] = frozenset(inherited + own)
        namespace["_defaults"] = defaults
        namespace["_frozen"] = frozen or any(getattr(base, "_frozen", False) for base in bases)
        return super().__new__(mcls, name, bases, namespace)


class Record(metaclass=RecordMeta):
    _fields: ClassVar[tuple[str, ...]]
    _names: ClassVar[frozenset[str]]
    _defaults: ClassVar[dict[str, object]]
    _frozen: ClassVar[bool]

    def __init__(self, *args: object, **kwargs: object) -> None:
        # Built for every proxied request (signals, decision, log row): the loop stays lean.
        if args:
            kwargs = self._with_positional(args, kwargs)
        if not kwargs.keys() <= self._names:
            unknown = min(set(kwargs) - self._names)
            raise TypeError(f"{type(self).__name__} has no field {unknown!r}")
        defaults = self._defaults
        setter = object.__setattr__
        for name in self._fields:
            if name in kwargs:
                setter(self, name, kwargs[name])
            elif name in defaults:
                setter(self, name, defaults[name])
            else:
                raise TypeError(f"{type(self).__name__} is missing {name!r}")

    def _with_positional(
        self, args: tuple[object, ...], kwargs: dict[str, object]
    ) -> dict[str, object]:
        names = self._fields
        if len(args) > len(names):
            raise TypeError(
                f"{type(self).__name__} takes at most {len(names)} positional arguments"
            )
        values = dict(zip(names, args, strict=False))
        for name, value in kwargs.items():
            if name in values:
                raise TypeError(f"{type(self).__name__} got {name!r} twice")
            values[name] = value
        return values

    def __setattr__(self, name: str, value: object) -> None:
        if self._frozen:
            raise AttributeError(f"{type(self).__name__} is immutable; use replace()")
        object.__setattr__(self, name, value)

    def replace(self, **changes: Any) -> Self:
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
