"""Anthropic Messages <-> OpenAI Chat Completions, for relaying Claude Code's requests to
Ollama's `/v1`, llama.cpp, vLLM, LM Studio or OpenRouter. Pure functions, stdlib only: they
run on every proxied request. The code lives in request.py, response.py and stream.py, and the
streaming formats a backend may answer in (its dialects) in dialect.py, openai_sse.py and
ollama_ndjson.py; import it from here.

The pitfalls of OpenAI-style servers that the translation handles ("pitfall N" below and in
the code; each has a `test_pitfall<N>_...` in tests/test_translate.py):
1. streamed tool-call fragments of several calls may interleave;
2. tool-call arguments may be empty or missing;
3. arguments may arrive as an object rather than a JSON string (Ollama's native API);
4. small models write invalid JSON arguments (code fences, trailing text, double encoding);
5. some models write a tool call as text instead of a tool call;
6. tool-call ids may be missing, repeated or oddly spelled;
7. tool messages must come right after the assistant message that called the tools;
8. tool messages carry text only, so images in tool results need a user message;
9. some servers reject JSON Schema dialect keys such as `$schema` in tool parameters;
10. `prompt_tokens` includes cached tokens, which Anthropic counts apart;
11. temperature ranges differ, and must not be rescaled.

Choices:

Request
- `system` (string or block array) is flattened in order, blocks joined with a blank line,
  into ONE leading system message. Claude Code also puts `role: "system"` messages inside
  `messages` (the agent list, hook context). Many local chat templates reject a system
  message anywhere but first (or break on non-alternating roles), and the chat format expects one
  leading system message, so by default their text is appended to it (`system_messages=
  "merge"`); `system_messages="keep"` leaves them in place for servers known to cope.
- Text-only user content becomes a plain string (blocks joined with a blank line): every
  chat template accepts that form. Mixed content becomes parts; images become `image_url`
  data URLs (URL images pass as URLs: Ollama's `/v1` rejects those). Documents: text
  sources inline, PDFs as a visible "[... omitted]" note.
- tool_result blocks become `tool` messages placed first, then the rest of the user turn
  (pitfall 7). `is_error` prefixes "Error: ". Content arrays are flattened to text; images in
  them become a placeholder in the tool message plus a following user message carrying the
  images (pitfall 8).
- assistant text is concatenated; tool_use blocks become one message's `tool_calls`
  (arguments a JSON string); thinking / redacted_thinking are dropped (their signatures mean
  nothing elsewhere). A trailing assistant message (prefill) is passed as is.
- tools: `input_schema` -> `parameters`, with `$schema` (and any `strip_schema_keys`) removed
  at every level (pitfall 9); Anthropic-only keys are not copied. Server tools (a versioned
  `type`, no input_schema: web_search_*, code_execution_*, ...) raise TranslationError.
  `tools: []` (title generation) sends no tools and no tool_choice, which OpenAI rejects.
- tool_choice auto/any/none/tool -> "auto"/"required"/"none"/{function}; and
  disable_parallel_tool_use -> parallel_tool_calls: false.
- max_tokens, temperature (unscaled, pitfall 11), top_p, top_k pass through; stop_sequences
  -> stop; stream -> stream + stream_options.include_usage.
- Dropped: thinking (Claude Code sends adaptive thinking for every model; no portable
  mapping), metadata (its user_id carries a device id: not for third parties),
  context_management, output_config (except format json_schema -> response_format
  json_schema), service_tier, container, cache_control (never copied anywhere).

Response and stream
- `model` is the model the client asked for; ids are `msg_...`. Missing, repeated or
  oddly-spelled tool-call ids get a `toolu_...` id or are made Anthropic-safe (pitfall 6).
- Arguments: "" or missing -> {} (pitfall 2); an object is taken as is (pitfall 3); invalid
  JSON is repaired (code fences, trailing text, double encoding) or becomes {} with a note
  in `problems`, never failing the turn (pitfall 4).
- Tool calls written as text are parsed when `tool_names` is given (pitfall 5).
- finish_reason stop -> end_turn, length -> max_tokens, tool_calls / function_call ->
  tool_use (also whenever tool calls are present), content_filter -> refusal (Anthropic's
  own reason for a blocked answer), anything else -> end_turn. vLLM's `stop_reason` string
  -> stop_sequence.
- usage: input_tokens = prompt_tokens - cached_tokens (- OpenRouter's cache_write_tokens),
  cache_read_input_tokens = cached_tokens, since Anthropic counts cached input separately
  (pitfall 10). A stream without usage gets an estimate of output tokens.
- Reasoning (`reasoning_content` / `reasoning`) is dropped by default: a thinking block
  needs a signature, and one with a fake signature makes Anthropic answer 400 if the turn is
  later routed there. `thinking=True` maps it to thinking blocks with an empty signature.
- Streaming: text streams live; tool calls are buffered per index and sent whole at
  finish_reason (pitfall 1: fragments may interleave; pitfall 4: repair needs the whole
  text). Pings are emitted while nothing else goes out. message_delta and message_stop come
  from `finish()`, so usage arriving after finish_reason is included.
- Errors: see openai_error_to_anthropic; keys (sk-..., Bearer ..., api_key=...) are masked.
  An error object answered with HTTP 200 instead of a completion raises `ErrorAnswer`
  (providers/errors.py); in a stream it becomes an `error` event.
"""

from __future__ import annotations

from .dialect import StreamDialect
from .ollama_ndjson import OllamaChatStream
from .openai_sse import OpenAIChatStream
from .request import TranslationError, anthropic_to_openai_request
from .response import (
    TextToolCallScanner,
    mask_secrets,
    openai_error_to_anthropic,
    openai_to_anthropic_response,
    parse_tool_arguments,
)
from .stream import Event, OpenAIStreamToAnthropic, sse_bytes

__all__ = [
    "Event",
    "OllamaChatStream",
    "OpenAIChatStream",
    "OpenAIStreamToAnthropic",
    "StreamDialect",
    "TextToolCallScanner",
    "TranslationError",
    "anthropic_to_openai_request",
    "mask_secrets",
    "openai_error_to_anthropic",
    "openai_to_anthropic_response",
    "parse_tool_arguments",
    "sse_bytes",
]
