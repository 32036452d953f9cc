"""The `delegate_to_local` tool's logic: route, read files, call the chain, check, log.

Kept apart from the MCP wiring so that it can be tested and reused without a server.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx2 as httpx

from ..config.compile import routing_table, tier_fallbacks
from ..config.endpoints import is_local
from ..config.pricing import baseline_cost, request_cost
from ..config.schema import RouterConfig
from ..core.intent import load_model
from ..core.outcomes import (
    OUTCOME_DECLINED,
    OUTCOME_ERROR,
    OUTCOME_FALLBACK,
    OUTCOME_OK,
    OUTCOME_REFUSED,
    OUTCOME_TRUNCATED,
    SOURCE_MCP,
)
from ..core.routing import Decision, decide
from ..core.signals import Signals, estimate_text_tokens, signals_from_prompt
from ..core.usage import Usage
from ..log.rows import DecisionRow, decision_row
from ..providers.chat import (
    BackendError,
    ChatMessage,
    ChatRequest,
    ChatResult,
    chat,
    installed_models,
    same_model,
)
from ..providers.link import Link, make_link
from .answers import REFUSAL, TRUNCATED, AnswerProblem, check_answer, corrective_note
from .files import FileText, read_task_files

SYSTEM_PROMPT = (
    "You are a careful senior software engineer working on one self-contained task handed to "
    "you by another assistant. Answer the task directly and completely. Put code in fenced "
    "blocks with a language tag. Do not ask questions; state any assumption in one line."
)
MIN_OLLAMA_CONTEXT = 4096

ProgressFn = Callable[[float, str], Awaitable[None]]


class DelegationError(Exception):
    """The task was not done; the message tells Claude what happened and what to do."""

    def __init__(self, message: str, outcome: str) -> None:
        super().__init__(message)
        self.outcome = outcome


@dataclass(frozen=True, slots=True)
class DelegateRequest:
    task: str
    files: tuple[str, ...] = ()
    context: str | None = None
    model: str | None = None
    max_tokens: int | None = None
    force: bool = False


@dataclass(slots=True)
class Delegation:
    """A finished delegation: the answer and everything the footer and the log need."""

    text: str
    link: Link
    usage: Usage
    seconds: float
    decision: Decision
    cost: float
    baseline: float
    fallback_from: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class DelegateDeps:
    config: RouterConfig
    client: httpx.AsyncClient
    environ: Mapping[str, str]
    working_directory: Path
    record: Callable[[DecisionRow], None]
    session_id: str | None = None


# --- the chain ---------------------------------------------------------------------------------


def _link(name: str, model: str, deps: DelegateDeps, window: int | None) -> Link | None:
    return make_link(deps.config, name, model, deps.environ, window)


def _usable_fallback(link: Link) -> str | None:
    """Why a fallback link cannot be used, or None. Only local and free models are delegated to."""
    if is_local(link.provider):
        return None
    if link.provider.kind == "openrouter":
        if not link.model.endswith(":free"):
            return f"{link.label} is not a free model"
        if link.provider.api_key_env and not link.api_key:
            return f"{link.label} skipped: {link.provider.api_key_env} is not set"
        return None
    return f"{link.label} is not a local or free model"


def _local_tier_for_forced_task(config: RouterConfig, tokens: int) -> str | None:
    """With `force`: the default route's tier if local, else the local tier that fits best."""
    local = [n for n, t in config.tiers.items() if is_local(config.providers[t.provider])]
    default_tier = config.default_route.target.tier
    if default_tier in local and config.tiers[default_tier].context_window >= tokens:
        return default_tier
    fitting = [n for n in local if config.tiers[n].context_window >= tokens]
    pool = fitting or local
    return max(pool, key=lambda n: config.tiers[n].context_window) if pool else None


async def _explicit_model_chain(model: str, deps: DelegateDeps) -> list[Link]:
    """The local provider that has `model` installed, or a DelegationError listing what there is."""
    seen: dict[str, list[str]] = {}
    unreachable: list[str] = []
    names = dict.fromkeys(t.provider for t in deps.config.tiers.values())
    for name in names:
        link = _link(name, model, deps, None)
        if link is None or not is_local(link.provider):
            continue
        try:
            models = await installed_models(deps.client, link.provider, link.base_url, link.api_key)
        except BackendError as exc:
            unreachable.append(f"{name} ({exc})")
            continue
        seen[name] = models
        match = next((m for m in models if same_model(model, m)), None)
        if match is not None:
            window = next(
                (
                    t.context_window
                    for t in deps.config.tiers.values()
                    if t.provider == name and same_model(t.model, match)
                ),
                None,
            )
            return [replace(link, model=match, window=window)]
    listing = "; ".join(f"{name}: {', '.join(models) or 'none'}" for name, models in seen.items())
    problem = f"model {model!r} is not installed on any local backend"
    if listing:
        problem += f". Installed: {listing}"
    if unreachable:
        problem += f". Unreachable: {'; '.join(unreachable)}"
    raise DelegationError(
        problem + ". Call again without `model` to let the router pick, pick an installed model, "
        "or install it with pull_model.",
        OUTCOME_ERROR,
    )


def _routed_chain(decision: Decision, deps: DelegateDeps) -> tuple[list[Link], list[str]]:
    tiers = deps.config.tiers
    window = tiers[decision.tier].context_window if decision.tier else None
    primary = _link(decision.provider, decision.model, deps, window)
    links = [primary] if primary is not None else []
    notes: list[str] = []
    for ref in decision.fallbacks:
        link = _link(ref.provider, ref.model, deps, None)
        if link is None:
            continue
        why_not = _usable_fallback(link)
        if why_not:
            notes.append(why_not)
        else:
            links.append(link)
    return links, notes


# --- prompt ------------------------------------------------------------------------------------


def build_messages(request: DelegateRequest, files: list[FileText]) -> list[ChatMessage]:
    parts = [request.task.strip()]
    if request.context and request.context.strip():
        parts.append(f"Context:\n{request.context.strip()}")
    for file in files:
        parts.append(f"File `{file.path}`:\n```\n{file.text}\n```")
    return [ChatMessage("system", SYSTEM_PROMPT), ChatMessage("user", "\n\n".join(parts))]


def _estimated_tokens(messages: list[ChatMessage]) -> int:
    return sum(estimate_text_tokens(m.content) + 4 for m in messages)


def _num_ctx(link: Link, tokens: int, max_tokens: int) -> int | None:
    """The window an Ollama call runs with: the tier's, the same value the proxy sends, so that
    Ollama keeps one loaded copy of the model instead of reloading it for each new size; for a
    model outside the tiers, enough for this task."""
    if link.provider.kind != "ollama":
        return None
    if link.window:
        return link.window
    needed = tokens + max_tokens
    rounded = -(-needed // 1024) * 1024
    return max(MIN_OLLAMA_CONTEXT, rounded)


# --- the tool ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Plan:
    """Everything decided before the first model call."""

    decision: Decision
    chain: list[Link]
    messages: list[ChatMessage]
    signals: Signals
    max_tokens: int
    started: float
    notes: list[str] = field(default_factory=list)  # shown with the answer
    skipped: list[str] = field(default_factory=list)  # shown only if the chain fails


async def delegate(
    request: DelegateRequest, deps: DelegateDeps, progress: ProgressFn
) -> Delegation:
    """Run the task on a local model; raise DelegationError when it cannot be done well."""
    plan = await _plan(request, deps)
    return await _run_chain(plan, deps, progress)


async def _plan(request: DelegateRequest, deps: DelegateDeps) -> _Plan:
    started = time.perf_counter()
    config = deps.config
    max_tokens = request.max_tokens or config.delegate.default_max_tokens
    try:
        files = read_task_files(
            list(request.files),
            deps.working_directory,
            max_file_bytes=config.delegate.max_file_bytes,
            max_total_bytes=config.delegate.max_total_file_bytes,
            allow_outside=config.delegate.allow_outside_working_directory,
        )
    except ValueError as exc:
        _log_failure(
            deps,
            signals_from_prompt(request.task, deps.session_id),
            None,
            OUTCOME_ERROR,
            "bad-file",
            started,
        )
        raise DelegationError(f"cannot read the files: {exc}", OUTCOME_ERROR) from None
    messages = build_messages(request, files)
    # Route on the task's words, sized by everything the model will read.
    signals = Signals(
        text=request.task,
        estimated_tokens=_estimated_tokens(messages),
        max_tokens=max_tokens,
        session_id=deps.session_id,
    )
    decision = decide(signals, routing_table(config), load_model(deps.environ))
    plan = _Plan(decision, [], messages, signals, max_tokens, started)

    if request.model:
        plan.chain = await _explicit_model_chain(request.model, deps)
        plan.decision = decision.replace(
            provider=plan.chain[0].provider_name,
            model=plan.chain[0].model,
            rule="explicit-model",
            reason=f"model {request.model} asked for by the caller",
            fallbacks=(),
        )
        return plan
    provider = config.providers.get(decision.provider)
    if provider is None or not is_local(provider):
        if not request.force:
            _log_failure(deps, signals, decision, OUTCOME_DECLINED, None, started)
            raise DelegationError(_decline_message(decision), OUTCOME_DECLINED)
        tier = _local_tier_for_forced_task(config, signals.estimated_tokens + max_tokens)
        if tier is None:
            raise DelegationError(
                "no local model is configured (router-config.json tiers)", OUTCOME_ERROR
            )
        plan.notes.append(
            f"forced: the routing rules send this task to {decision.provider} ({decision.rule})"
        )
        forced = config.tiers[tier]
        plan.decision = decision.replace(
            provider=forced.provider,
            model=forced.model,
            tier=tier,
            rule="forced",
            reason=f"force=true overrode {decision.rule}: {decision.reason}",
            fallbacks=tier_fallbacks(tier, config),
        )
    plan.chain, plan.skipped = _routed_chain(plan.decision, deps)
    return plan


def _decline_message(decision: Decision) -> str:
    return (
        f"Declined: the routing rules send this task to {decision.provider} "
        f"({decision.reason}). Work that needs the premium model — security, "
        "production-critical decisions, web access, very large inputs — should stay with you. "
        "Do it yourself, or call again with force=true to run it on a local model anyway."
    )


async def _run_chain(plan: _Plan, deps: DelegateDeps, progress: ProgressFn) -> Delegation:
    """Each link in turn; a bad answer moves down the chain, and the last link gets one retry."""
    failures: list[str] = []
    last_problem: AnswerProblem | None = None
    retried = False
    index = 0
    usage = Usage()
    messages = plan.messages
    while index < len(plan.chain):
        link = plan.chain[index]
        await progress(0, f"asking {link.label}")
        chat_request = ChatRequest(
            model=link.model,
            messages=tuple(messages),
            max_tokens=plan.max_tokens,
            num_ctx=_num_ctx(link, plan.signals.estimated_tokens, plan.max_tokens),
        )
        try:
            result = await chat(
                deps.client,
                link.provider,
                link.base_url,
                link.api_key,
                chat_request,
                _throttled(progress, link.label),
            )
        except BackendError as exc:
            failures.append(f"{link.label}: {exc}")
            index += 1
            continue
        usage = Usage(
            usage.input_tokens + result.input_tokens, usage.output_tokens + result.output_tokens
        )
        problem = check_answer(result.text, truncated=result.truncated, max_tokens=plan.max_tokens)
        if problem is None:
            return _success(plan, deps, link, result, usage, retried)
        last_problem = problem
        failures.append(f"{link.label}: {problem.detail}")
        if index + 1 < len(plan.chain):
            index += 1  # escalate along the chain
        elif not retried:
            retried = True  # the last link gets one more try, told what was wrong
            messages = [
                *messages,
                ChatMessage("assistant", result.text),
                ChatMessage("user", corrective_note(problem)),
            ]
        else:
            break
    outcome = _failure_outcome(last_problem)
    _log_failure(
        deps,
        plan.signals,
        plan.decision,
        outcome,
        last_problem.kind if last_problem else "backend",
        plan.started,
        usage=usage,
    )
    raise DelegationError(
        _failure_message(failures, plan.notes + plan.skipped, last_problem, plan.max_tokens),
        outcome,
    )


def _throttled(progress: ProgressFn, label: str) -> Callable[[int], Awaitable[None]]:
    """A chunk counter that reports at most twice a second: one per token would flood the client."""
    last = 0.0

    async def on_chunks(count: int) -> None:
        nonlocal last
        now = time.perf_counter()
        if now - last >= 0.5:
            last = now
            await progress(count, f"{label}: {count} chunks received")

    return on_chunks


def _failure_outcome(problem: AnswerProblem | None) -> str:
    if problem is None:
        return OUTCOME_ERROR
    return {TRUNCATED: OUTCOME_TRUNCATED, REFUSAL: OUTCOME_REFUSED}.get(problem.kind, OUTCOME_ERROR)


def _failure_message(
    failures: list[str], notes: list[str], problem: AnswerProblem | None, max_tokens: int
) -> str:
    what = "; ".join(failures + notes) or "no local model is configured"
    if problem is None:
        advice = (
            "No local model answered. Check that Ollama (or your local server) is running and "
            "has the model (pull_model installs it), then call again — or do the task yourself."
        )
    elif problem.kind == TRUNCATED:
        advice = (
            f"Call again with a larger max_tokens (it was {max_tokens}) or a smaller task, "
            "or do it yourself."
        )
    else:
        advice = (
            "The local answer was not usable. Do the task yourself, or call again with a "
            "smaller, more specific task."
        )
    return f"Delegation failed: {what}. {advice}"


def _success(
    plan: _Plan, deps: DelegateDeps, link: Link, result: ChatResult, usage: Usage, retried: bool
) -> Delegation:
    config = deps.config
    decision = plan.decision
    cost = request_cost(link.provider_name, link.model, usage, config)
    baseline = baseline_cost(None, usage, config)
    fallback_from = plan.chain[0].provider_name if link is not plan.chain[0] else None
    seconds = time.perf_counter() - plan.started
    deps.record(
        decision_row(
            decision,
            plan.signals,
            source=SOURCE_MCP,
            store_prompts=config.store_prompts,
            outcome=OUTCOME_FALLBACK if fallback_from else OUTCOME_OK,
            provider=link.provider_name,
            model=link.model,
            usage=usage,
            cost=cost,
            baseline_cost=baseline,
            latency_ms=seconds * 1000,
            ttft_ms=result.ttft_ms,
            fallback_from=fallback_from,
            reason=decision.reason + (" (retried once)" if retried else ""),
        )
    )
    return Delegation(
        result.text, link, usage, seconds, decision, cost, baseline, fallback_from, plan.notes
    )


def _log_failure(
    deps: DelegateDeps,
    signals: Signals,
    decision: Decision | None,
    outcome: str,
    error_class: str | None,
    started: float,
    usage: Usage | None = None,
) -> None:
    deps.record(
        decision_row(
            decision,
            signals,
            source=SOURCE_MCP,
            store_prompts=deps.config.store_prompts,
            outcome=outcome,
            rule=None if decision else "delegate",
            usage=usage,
            latency_ms=(time.perf_counter() - started) * 1000,
            error_class=error_class,
        )
    )


def footer(delegation: Delegation, premium_model: str) -> str:
    """One line after the answer: who answered, tokens, time, and the estimated saving."""
    usage = delegation.usage
    via = f" (fallback from {delegation.fallback_from})" if delegation.fallback_from else ""
    saving = delegation.baseline - delegation.cost
    return (
        f"[{delegation.link.label}{via} | {usage.input_tokens:,} in / {usage.output_tokens:,} out "
        f"tokens | {delegation.seconds:.1f} s | saved ~${saving:.4f} vs {premium_model}]"
    )
