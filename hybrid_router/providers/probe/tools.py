"""The tool round trip: offer a model one trivial tool (`get_weather`) and see whether it
answers with a well-formed call to it, over Ollama's `/api/chat` or an OpenAI-style
`/chat/completions`.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx2 as httpx

from ...config.schema import Provider
from ..chat import request_headers
from ..errors import BackendError
from .http import error_text, probe_request, public_url

TOOL_PROBE_TIMEOUT = 30.0  # a cold local model may need this long to load and prefill
TOOL_PROBE_MAX_TOKENS = 128  # a tool call is ~20 tokens; room for a short preamble

PROBE_TOOL_NAME = "get_weather"
PROBE_TOOL = {
    "type": "function",
    "function": {
        "name": PROBE_TOOL_NAME,
        "description": "Get the current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "The city name"}},
            "required": ["city"],
        },
    },
}
PROBE_MESSAGES = [
    {
        "role": "system",
        "content": "You answer by calling tools. You have no weather data of your own: "
        "to answer a weather question, call the get_weather tool.",
    },
    {"role": "user", "content": "What is the weather in Paris right now?"},
]


def _tool_call_ok(name: Any, arguments: Any) -> bool:
    if name != PROBE_TOOL_NAME:
        return False
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            return False
    return isinstance(arguments, dict)


def _no_call_detail(text: str, finish_reason: Any, calls: list[Any]) -> str:
    if calls:
        names = ", ".join(sorted({str(_call_name(c)) for c in calls}))
        return f"called {names} instead of a well-formed {PROBE_TOOL_NAME} call"
    snippet = " ".join(text.split())[:60]
    limit = f" (cut at {TOOL_PROBE_MAX_TOKENS} tokens)" if finish_reason == "length" else ""
    return f"answered with text{limit} instead of calling {PROBE_TOOL_NAME}" + (
        f": {snippet!r}" if snippet else ""
    )


def _call_name(call: Any) -> Any:
    function = call.get("function") if isinstance(call, dict) else None
    return function.get("name") if isinstance(function, dict) else None


def _call_arguments(call: Any) -> Any:
    function = call.get("function") if isinstance(call, dict) else None
    return function.get("arguments") if isinstance(function, dict) else None


async def tool_round_trip(
    client: httpx.AsyncClient,
    provider: Provider,
    base_url: str,
    api_key: str | None,
    model: str,
    timeout_seconds: float,
    *,
    thinks: bool = False,
) -> tuple[bool | None, str | None]:
    """Offer one trivial tool; (True, None) when the reply is a well-formed call to it.

    (False, why) when the model answered without one; (None, why) when the probe could not
    tell (timeout, server error, rate limit, the token budget spent on thinking).
    """
    shown = public_url(base_url)
    timeout = httpx.Timeout(timeout_seconds, connect=provider.connect_timeout)
    if provider.kind == "ollama":
        url = f"{base_url}/api/chat"
        body: dict[str, Any] = {
            "model": model,
            "messages": PROBE_MESSAGES,
            "tools": [PROBE_TOOL],
            "stream": False,
            "options": {"temperature": 0, "num_predict": TOOL_PROBE_MAX_TOKENS},
        }
        if thinks:  # don't spend the small budget on thinking (only sent to thinking models:
            body["think"] = False  # some Ollama versions refuse `think` for the others)
    else:
        url = f"{base_url}/chat/completions"
        body = {
            "model": model,
            "messages": PROBE_MESSAGES,
            "tools": [PROBE_TOOL],
            "tool_choice": "auto",
            "max_tokens": TOOL_PROBE_MAX_TOKENS,
            "temperature": 0,
            "stream": False,
        }
    try:
        with anyio.fail_after(timeout_seconds):
            response = await probe_request(
                client,
                "POST",
                url,
                json_body=body,
                timeout=timeout,
                headers=request_headers(provider, api_key),
                shown_url=shown,
            )
    except TimeoutError:
        return None, f"tool probe: no answer within {timeout_seconds:g} s"
    except BackendError as exc:
        return None, f"tool probe: {exc}"
    if response.status_code != 200:
        message = error_text(response)
        if response.status_code == 400 and "tool" in message.lower():
            return False, f"tool probe refused: {message}"  # Ollama: "... does not support tools"
        if response.status_code == 429:
            return None, "tool probe: rate limited, try again later"
        return None, f"tool probe: HTTP {response.status_code}: {message}"
    try:
        data = response.json()
    except ValueError:
        return None, "tool probe: the answer was not JSON"
    if not isinstance(data, dict):
        return None, "tool probe: unexpected answer"
    reply: dict[str, Any]
    if provider.kind == "ollama":
        reply = data["message"] if isinstance(data.get("message"), dict) else {}
        calls = reply.get("tool_calls") or []
        text = str(reply.get("content") or "")
        finish = data.get("done_reason")
    else:
        if isinstance(data.get("error"), (dict, str)):
            return None, f"tool probe: {error_text(response)}"
        choices = data.get("choices") or []
        choice = choices[0] if choices and isinstance(choices[0], dict) else {}
        reply = choice["message"] if isinstance(choice.get("message"), dict) else {}
        calls = reply.get("tool_calls") or []
        text = str(reply.get("content") or "")
        finish = choice.get("finish_reason")
    if not isinstance(calls, list):
        calls = []
    if any(_tool_call_ok(_call_name(c), _call_arguments(c)) for c in calls):
        return True, None
    if finish == "length" and not calls and not text.strip():
        return None, f"tool probe: the {TOOL_PROBE_MAX_TOKENS}-token budget went on thinking"
    return False, _no_call_detail(text, finish, calls)
