"""`hooks.fastjson` against `json`: the same values, the same errors, and only valid JSON out.

hypothesis is not installed, so the cases are generated from a seeded `random.Random`: a few
thousand nested values (unicode, escapes, lone surrogates, big integers, every kind of float)
and, for the parser, corruptions of their text (cut short, a character dropped or inserted).

The one deliberate difference: `json.dumps` writes NaN and the infinities as `NaN`, `Infinity`
and `-Infinity`, which are not JSON; `fastjson.dumps` writes `null` for them, as the proxy's
JSON writer (proxy/jsonio.py) does.
"""

from __future__ import annotations

import io
import json
import math
import os
import random
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hybrid_router.hooks import fastjson
from hybrid_router.hooks.main import run_hook

SCRIPT = shutil.which("hybrid-router", path=str(Path(sys.executable).parent))
JSON_WHITESPACE = " \t\n\r"
# Whitespace to Python's str.strip() but not to JSON.
NOT_JSON_WHITESPACE = ("\x0b", "\x0c", "\x1c", "\x1f", "\x85", "\xa0", "\u2028", "\u3000")
INTERESTING_CHARS = (
    '"',
    "\\",
    "/",
    "\b",
    "\f",
    "\n",
    "\r",
    "\t",
    "\x00",
    "\x1f",
    "\x7f",
    "\x80",
    "é",
    "\u2028",
    "\u2029",
    "\ufeff",
    "\uffff",
    "中",
    "\U0001f600",
    "\ud800",  # lone surrogates: json writes them as \ud800 escapes, and reads them back
    "\udfff",
    "\udc00\ud800",  # a pair in the wrong order: two lone surrogates
)
SPECIAL_FLOATS = (
    0.0,
    -0.0,
    1.0,
    -1.5,
    0.1,
    1e300,
    -1e300,
    1e16,
    1e22,
    1e-7,
    5e-324,  # the smallest subnormal
    2.2250738585072014e-308,
    1.7976931348623157e308,
    123456789012345680.0,
)
SPECIAL_INTS = (0, -1, 2**31, 2**53 + 1, 2**63, -(2**64), 2**200, -(10**300), 10**4000)


def same(a: Any, b: Any) -> bool:
    """Equal including types, key order, the sign of zero and NaN (repr tells them all apart)."""
    return repr(a) == repr(b)


def non_finite_to_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: non_finite_to_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [non_finite_to_none(v) for v in value]
    return value


def strict_loads(text: str) -> Any:
    """`json.loads` refusing NaN / Infinity: what any other JSON parser would accept."""

    def refuse(name: str) -> Any:
        raise AssertionError(f"not JSON: {name} in {text[:200]!r}")

    return json.loads(text, parse_constant=refuse)


# --- generated values -----------------------------------------------------------------------


def random_string(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(0, 8)):
        kind = rng.random()
        if kind < 0.4:
            parts.append(rng.choice(INTERESTING_CHARS))
        elif kind < 0.7:
            parts.append(chr(rng.randint(0x20, 0x7E)))
        elif kind < 0.9:
            parts.append(chr(rng.randint(0, 0xFFFF)))  # lone surrogates included
        else:
            parts.append(chr(rng.randint(0x10000, 0x10FFFF)))
    return "".join(parts)


def random_float(rng: random.Random) -> float:
    kind = rng.random()
    if kind < 0.3:
        return rng.choice(SPECIAL_FLOATS)
    if kind < 0.4:
        return rng.choice((math.nan, math.inf, -math.inf))
    if kind < 0.7:  # any bit pattern: subnormals, huge, tiny, NaNs with payloads
        value: float = struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]
        return value
    return rng.uniform(-1e6, 1e6)


def random_int(rng: random.Random) -> int:
    if rng.random() < 0.3:
        return rng.choice(SPECIAL_INTS)
    return rng.randint(-(2**70), 2**70) >> rng.randint(0, 70)


def random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.random()
    if depth < 4 and kind < 0.3:
        if rng.random() < 0.5:
            return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 5))]
        return {random_string(rng): random_value(rng, depth + 1) for _ in range(rng.randint(0, 5))}
    kind = rng.random()
    if kind < 0.35:
        return random_string(rng)
    if kind < 0.55:
        return random_int(rng)
    if kind < 0.8:
        return random_float(rng)
    return rng.choice((True, False, None))


VALUES = [random_value(random.Random(seed)) for seed in range(3000)]
FIXED_VALUES: list[Any] = [
    {},
    [],
    "",
    {"": ""},
    {"a": {"b": {"c": [1, [2, [3, {"d": None}]]]}}},
    {"hookSpecificOutput": {"hookEventName": "UserPromptSubmit", "additionalContext": "hi"}},
    {"systemMessage": "hybrid-router: 3 of 4 model calls this session ran free; saved ~$0.0123"},
    "".join(INTERESTING_CHARS),
    "".join(chr(c) for c in range(0x80)),
    [*SPECIAL_FLOATS],
    [*SPECIAL_INTS],
    (1, "tuple", (2, 3)),  # tuples are written as arrays, as json does
    [True, False, None, 0, 1],
    {"dup": 1, "other": [{}, [[]], {"x": {}}]},
]


# --- dumps ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", FIXED_VALUES)
def test_dumps_matches_json_for_fixed_values(value: Any) -> None:
    assert fastjson.dumps(value) == json.dumps(value)


def test_dumps_matches_json_for_generated_values() -> None:
    checked = 0
    for value in VALUES:
        text = fastjson.dumps(value)
        strict_loads(text)  # valid JSON, always
        if same(non_finite_to_none(value), value):
            assert text == json.dumps(value), value
            checked += 1
    assert checked > 2000  # most generated values have no NaN or infinity


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, -math.nan])
def test_dumps_writes_null_for_nan_and_infinity(value: float) -> None:
    assert fastjson.dumps(value) == "null"
    assert fastjson.dumps([value, {"k": value}]) == '[null, {"k": null}]'


def test_every_dumps_output_is_valid_json_and_reads_back() -> None:
    for value in [*FIXED_VALUES, *VALUES]:
        text = fastjson.dumps(value)
        expected = non_finite_to_none(value)
        assert same(strict_loads(text), json.loads(json.dumps(expected)))
        assert same(fastjson.loads(text), json.loads(text))
        assert text.isascii()  # lone surrogates and all non-ASCII are \u escapes


def test_dumps_keys_as_json_converts_them() -> None:
    value = {True: 1, False: 2, None: 3, 7: 4, -(2**70): 5, 1.5: 6, math.nan: 7, math.inf: 8}
    assert fastjson.dumps(value) == json.dumps(value)
    with pytest.raises(TypeError) as theirs:
        json.dumps({(1, 2): 0})
    with pytest.raises(TypeError) as ours:
        fastjson.dumps({(1, 2): 0})
    assert str(ours.value) == str(theirs.value)


class IntLike(int):
    def __repr__(self) -> str:
        return "IntLike()"


class FloatLike(float):
    def __repr__(self) -> str:
        return "FloatLike()"


def test_dumps_writes_int_and_float_subclasses_as_numbers() -> None:
    value = [IntLike(3), FloatLike(2.5), {"k": IntLike(-1)}]
    assert fastjson.dumps(value) == json.dumps(value) == '[3, 2.5, {"k": -1}]'


@pytest.mark.parametrize("value", [object(), {1, 2}, b"bytes", {"k": [object()]}])
def test_dumps_refuses_what_json_refuses(value: Any) -> None:
    with pytest.raises(TypeError) as theirs:
        json.dumps(value)
    with pytest.raises(TypeError) as ours:
        fastjson.dumps(value)
    assert str(ours.value) == str(theirs.value)


def test_dumps_of_an_integer_too_long_for_str_is_a_value_error_as_in_json() -> None:
    with pytest.raises(ValueError):
        json.dumps(10**5000)
    with pytest.raises(ValueError):
        fastjson.dumps(10**5000)


def nested_list(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("depth", [200, 1_000, 100_000])
def test_dumps_of_deep_nesting_matches_json_or_is_a_recursion_error(depth: int) -> None:
    value = nested_list(depth)
    try:
        expected = json.dumps(value)
    except RecursionError:
        with pytest.raises(RecursionError):
            fastjson.dumps(value)
    else:
        try:
            assert fastjson.dumps(value) == expected
        except RecursionError:
            # Each level is a Python frame here (C in json): the limits differ by a little.
            assert depth >= sys.getrecursionlimit() - 100


# --- loads ----------------------------------------------------------------------------------


def outcome(parse: Any, text: Any) -> tuple[Any, ...]:
    try:
        return ("ok", repr(parse(text)))
    except ValueError as exc:  # JSONDecodeError, or an int beyond the digit limit
        return ("error", type(exc), str(exc), getattr(exc, "pos", None))
    except RecursionError as exc:
        return ("recursion", type(exc))


def texts_of(value: Any, rng: random.Random) -> list[str]:
    """The value as json writes it in its common layouts, padded with JSON whitespace."""
    pad = "".join(rng.choice(JSON_WHITESPACE) for _ in range(rng.randint(0, 3)))
    return [
        json.dumps(value),
        json.dumps(value, separators=(",", ":")),
        json.dumps(value, indent=2, ensure_ascii=False),
        pad + json.dumps(value) + pad,
    ]


def test_loads_matches_json_for_generated_documents() -> None:
    rng = random.Random(1)
    for value in [*FIXED_VALUES, *VALUES]:
        for text in texts_of(value, rng):
            assert same(fastjson.loads(text), json.loads(text)), text


def corruptions(text: str, rng: random.Random) -> list[str]:
    junk = '{}[]",:0123456789.eE+-tfnaNIul\\ \t\n\x0c\xa0x/'
    cut = rng.randint(0, len(text))
    at = rng.randint(0, max(0, len(text) - 1))
    return [
        text[:cut],
        text[:at] + text[at + 1 :],
        text[:at] + rng.choice(junk) + text[at:],
        text + rng.choice(junk),
        rng.choice(junk) + text,
    ]


def test_loads_matches_json_on_corrupted_documents_errors_included() -> None:
    rng = random.Random(2)
    errors = 0
    for value in VALUES[:1500]:
        for text in corruptions(json.dumps(value), rng):
            expected = outcome(json.loads, text)
            assert outcome(fastjson.loads, text) == expected, text
            errors += expected[0] == "error"
    assert errors > 2000  # the corruptions did exercise the error path


INVALID = [
    "",
    " ",
    "\n\t",
    "{",
    "}",
    "[1,]",
    "[,1]",
    "{'a': 1}",
    '{"a" 1}',
    '{"a": 1,}',
    "{1: 2}",
    "tru",
    "True",
    "nul",
    "nan",
    "NaNa",
    "inf",
    "-Infinityx",
    "01",
    "-01",
    "1.",
    ".5",
    "-",
    "+1",
    "1e",
    "0x10",
    '"abc',
    '"\\x"',
    '"\\u12"',
    '"\\ud80"',
    '"tab\there"',  # a raw control character in a string (strict, as json's default)
    '"nul\x00"',
    "[1 2]",
    "1 2",
    "{} x",
    "[]]",
    '"a" "b"',
    "\ufeff{}",  # a byte order mark
    "// comment\n{}",
    "[1]\x00",
]


@pytest.mark.parametrize("text", INVALID)
def test_loads_refuses_invalid_documents_as_json_does(text: str) -> None:
    expected = outcome(json.loads, text)
    assert expected[0] == "error" and expected[1] is json.JSONDecodeError
    assert outcome(fastjson.loads, text) == expected


@pytest.mark.parametrize("space", NOT_JSON_WHITESPACE)
@pytest.mark.parametrize("template", ["{s}{{}}", "{{}}{s}", "{s}1", "[1,{s}2]", '{{{s}"a": 1}}'])
def test_only_json_whitespace_surrounds_a_document(space: str, template: str) -> None:
    text = template.format(s=space)
    expected = outcome(json.loads, text)
    assert expected[0] == "error"
    assert outcome(fastjson.loads, text) == expected


@pytest.mark.parametrize(
    "text",
    [
        " \t\r\n{} \t\r\n",
        "\n\n[ 1 , 2 ]\n",
        '{"a"\n:\n1\n}',
        "  null",
        "false   ",
        '"just a string"',
        "-0",
        "-0.0",
        "1E400",  # beyond a double: infinity, as in json
        "-1e400",
        "1e-400",
        "NaN",  # json reads these (and so must a hook reading what json wrote)
        "[Infinity, -Infinity]",
        '"\\ud83d\\ude00 \\ud800 \\udfff"',  # a surrogate pair, and lone ones
        '"\\"\\\\\\/\\b\\f\\n\\r\\t"',
        '{"a": 1, "a": 2}',  # the last duplicate wins
        "1" * 4300,  # the longest integer str() converts by default
        "[" + ",".join(["1.5"] * 10_000) + "]",
    ],
)
def test_loads_matches_json_on_edge_documents(text: str) -> None:
    expected = outcome(json.loads, text)
    assert expected[0] == "ok"
    assert outcome(fastjson.loads, text) == expected


def test_loads_of_an_integer_beyond_the_digit_limit_is_json_s_value_error() -> None:
    text = "1" * 4301
    expected = outcome(json.loads, text)
    assert expected[0] == "error" and expected[1] is ValueError
    assert outcome(fastjson.loads, text) == expected


@pytest.mark.parametrize("value", [b'{"a": 1}', bytearray(b"[1]"), '{"a": 1}'.encode("utf-16")])
def test_loads_takes_bytes_as_json_does(value: bytes) -> None:
    assert same(fastjson.loads(value), json.loads(value))  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [None, 1, ["[]"]])
def test_loads_refuses_what_is_not_text_as_json_does(value: Any) -> None:
    with pytest.raises(TypeError):
        json.loads(value)
    with pytest.raises(TypeError):
        fastjson.loads(value)


def nested_text(depth: int, kind: str) -> str:
    if kind == "array":
        return "[" * depth + "]" * depth
    return '{"a": ' * depth + "null" + "}" * depth


@pytest.mark.parametrize("kind", ["array", "object"])
def test_loads_of_moderate_nesting_matches_json(kind: str) -> None:
    text = nested_text(300, kind)
    assert same(fastjson.loads(text), json.loads(text))


@pytest.mark.parametrize("kind", ["array", "object"])
@pytest.mark.parametrize("depth", [1_000, 1_050, 100_000])
def test_loads_of_deep_nesting_is_a_recursion_error_as_in_json(kind: str, depth: int) -> None:
    """~1000 levels is past Python's default recursion limit (from within pytest's stack)."""
    text = nested_text(depth, kind)
    assert outcome(json.loads, text) == ("recursion", RecursionError)
    assert outcome(fastjson.loads, text) == ("recursion", RecursionError)
    # An unclosed one too: the depth is reached before the missing brackets are.
    opening = text[: text.index("]" if kind == "array" else "null")]
    assert outcome(json.loads, opening) == ("recursion", RecursionError)
    assert outcome(fastjson.loads, opening) == ("recursion", RecursionError)


# --- in the hook ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (nested_text(100_000, "array"), "RecursionError"),
        (nested_text(100_000, "object"), "RecursionError"),
        ("[" * 100_000, "RecursionError"),
        ("{" * 5, "JSONDecodeError"),
        ('{"prompt": "x"} trailing', "JSONDecodeError"),
        ("\x0c{}", "JSONDecodeError"),
    ],
)
def test_the_hook_fails_open_on_deeply_nested_or_broken_stdin(
    raw: str, error: str, tmp_path: Path
) -> None:
    env = {"HYBRID_ROUTER_HOME": str(tmp_path / "home")}
    stdout, stderr = io.StringIO(), io.StringIO()
    assert run_hook("UserPromptSubmit", io.StringIO(raw), stdout, stderr, env) == 0
    assert stdout.getvalue() == ""
    lines = stderr.getvalue().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"hybrid-router hook UserPromptSubmit: {error}: ")


@pytest.mark.skipif(SCRIPT is None, reason="the console script is not installed")
def test_the_installed_hook_process_survives_100000_levels_of_nesting(tmp_path: Path) -> None:
    env = {**os.environ, "HYBRID_ROUTER_HOME": str(tmp_path / "home")}
    assert SCRIPT is not None
    for raw in (nested_text(100_000, "array"), nested_text(100_000, "object")):
        done = subprocess.run(
            [SCRIPT, "hook", "UserPromptSubmit"],
            input=raw,
            text=True,
            env=env,
            capture_output=True,
            timeout=60,
        )
        assert done.returncode == 0  # no crash, no signal
        assert done.stdout == ""
        assert "RecursionError" in done.stderr
        assert len(done.stderr.splitlines()) == 1


SUCCESS_PATH = r"""
import sys
from hybrid_router.hooks import fastjson
value = fastjson.loads(' {"a": [1, 2.5, -0.0, "\\u00e9\\ud800", null, true], "b": {"c": NaN}} ')
text = fastjson.dumps(value)
assert text == '{"a": [1, 2.5, -0.0, "\\u00e9\\ud800", null, true], "b": {"c": null}}', text
heavy = {"json", "re", "typing", "enum"} & set(sys.modules)
assert not heavy, heavy
"""


def test_the_success_path_imports_neither_json_nor_re() -> None:
    done = subprocess.run([sys.executable, "-c", SUCCESS_PATH], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
