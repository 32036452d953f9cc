"""The default routing table, category by category, on prompts as people type them.

Every prompt goes through the same path as the CLI's `route` and the prompt hook:
`decide(signals_from_prompt(prompt), <default config>)`. Hits must land on the category's route;
near-misses (a keyword inside another word, or a keyword in another sense) must not, and the
tests say where they go instead.
"""

from __future__ import annotations

from functools import cache

import pytest

from hybrid_router.config.compile import routing_table
from hybrid_router.config.loading import default_config_path, load_config
from hybrid_router.config.schema import RouterConfig
from hybrid_router.core.complexity import assess_complexity
from hybrid_router.core.matching import tokenize
from hybrid_router.core.routing import Decision, decide, route_evidence
from hybrid_router.core.signals import signals_from_prompt


@cache
def default_config() -> RouterConfig:
    return load_config(default_config_path()).config


def route(prompt: str) -> Decision:
    return decide(signals_from_prompt(prompt), routing_table(default_config()))


def route_matches(route_name: str, prompt: str) -> bool:
    """Whether one named route's conditions hold for `prompt`, regardless of route order."""
    wanted = routing_table(default_config()).route(route_name)
    signals = signals_from_prompt(prompt)
    complexity = assess_complexity(signals.text)
    return route_evidence(wanted, signals, tokenize(signals.text), complexity) is not None


# --- file operations -------------------------------------------------------------------------

FILE_OPERATIONS = [
    "read src/app.py",
    "Read the README",
    "open hybrid_router/routing.py",
    "can you show me config.py?",
    "show me the contents of pyproject.toml",
    "print the contents of .env.example",
    "list the files in tests/",
    "List all python files under hybrid_router/",
    "find where decide() is defined",
    "Find all usages of load_config",
    "locate the Dockerfile",
    "where is the retry logic?",
    "Where's the config loaded?",
    "where are the tests for the store?",
    "grep for TODO in the repo",
    'search the codebase for "estimated_tokens"',
    "glob for *.yaml under deploy/",
    "which files import signals.py?",
    "look for calls to signals_from_prompt",
    "cat package.json",
    "show the directory tree of src",
    "how many lines in routing.py",
    "find the test for decide()",
    "show me docs/setup.md",
    'grep -rn "decide(" .',
]


@pytest.mark.parametrize("prompt", FILE_OPERATIONS)
def test_file_operations_go_to_the_fast_local_model(prompt: str) -> None:
    decision = route(prompt)
    assert decision.rule == "file-operations", decision.reason
    assert (decision.provider, decision.tier) == ("ollama", "fast")


FILE_OPERATIONS_NEAR_MISSES = [
    # a keyword inside another word
    ("I already added the handler, thanks", "default"),  # read in "already"
    ("is the worker thread-safe?", "default"),  # read in "thread"
    ("the event listener fires twice", "default"),  # list in "listener"
    ("register the blueprint in the Flask app", "default"),  # print in "blueprint"
    ("the showcase page looks off on mobile", "default"),  # show in "showcase"
    ("our findings so far are in the ticket", "default"),  # find in "findings"
    ("do some research on task queues", "default"),  # search in "research"
    # a keyword in another sense
    ("should we make this open source?", "default"),
    ("open a PR for this branch", "default"),
    ("use a list comprehension here", "default"),
    ("reverse a linked list in place", "default"),
    ("binary search over the sorted list", "default"),
    ("find out why the build fails", "default"),
    ("which port does it listen on?", "default"),
    ("file a bug about the crash", "code-generation"),  # reporting, not a file; "bug" is code work
    ("implement binary search", "code-generation"),
]


@pytest.mark.parametrize(("prompt", "expected"), FILE_OPERATIONS_NEAR_MISSES)
def test_file_operations_near_misses(prompt: str, expected: str) -> None:
    assert route(prompt).rule == expected


# --- code generation -------------------------------------------------------------------------

CODE_GENERATION = [
    "write a function that parses ISO dates",
    "Add a --verbose flag to the CLI",
    "implement retry with exponential backoff in client.py",
    "Refactor the Store class to use a context manager",
    "rename get_cfg to get_config everywhere",
    "write unit tests for complexity.py",
    "Can you add type hints to signals.py?",
    "add a docstring to decide()",
    "fix the syntax error on line 42",
    "there's a typo in the error message, fix it",
    "generate a pydantic model for this JSON",
    "Convert this callback code to async/await",
    "update the README with install instructions",
    "debug why test_store fails",
    "FIX THE FAILING TEST",
    "make the tests pass",
    "clean up the imports",
    "write tests in tests/unit for the parser",
    "update docs/usage.md with the new flag",
    "open config.py and add a timeout option",  # a file named, but the work is an edit
]


@pytest.mark.parametrize("prompt", CODE_GENERATION)
def test_code_work_goes_to_the_local_coder(prompt: str) -> None:
    decision = route(prompt)
    assert decision.rule == "code-generation", decision.reason
    assert (decision.provider, decision.tier) == ("ollama", "coder")


CODE_GENERATION_NEAR_MISSES = [
    ("the contest results page is slow", "default"),  # test in "contest"
    ("the attestation service times out", "default"),  # test in "attestation"
    ("what's the latest version of pydantic?", "web-search"),  # test in "latest"; needs the web
    ("which port does it listen on?", "default"),  # port, not "port to"
    ("give me write access to the bucket", "default"),  # a permission, not writing code
    ("see the changelog for 2.0", "default"),  # change in "changelog"
    ("list the files in tests/", "file-operations"),  # a folder name, not writing tests
    ("Read the README", "file-operations"),  # reading the docs, not writing them
    ("what is dependency injection?", "architecture"),
]


@pytest.mark.parametrize(("prompt", "expected"), CODE_GENERATION_NEAR_MISSES)
def test_code_generation_near_misses(prompt: str, expected: str) -> None:
    assert route(prompt).rule == expected


# --- architecture and understanding ----------------------------------------------------------

ARCHITECTURE = [
    "explain how the routing works",
    "How does the proxy pick a provider?",
    "give me an overview of this codebase",
    "walk me through the request lifecycle",
    "what does decide() do?",
    "Explain the data flow from hook to proxy",
    "I don't understand how tiers and fallbacks relate",
    "what are the trade-offs between sqlite and postgres here?",
    "EXPLAIN THIS MODULE",
    "describe the architecture of this repo",
    "give me the big picture of how the pieces fit together",
]


@pytest.mark.parametrize("prompt", ARCHITECTURE)
def test_understanding_questions_go_to_the_reasoning_model(prompt: str) -> None:
    decision = route(prompt)
    assert decision.rule == "architecture", decision.reason
    assert (decision.provider, decision.tier) == ("ollama", "reasoning")


ARCHITECTURE_NEAR_MISSES = [
    ("what CPU architecture is this binary built for?", "default"),  # hardware, not software design
    ("update the design system colors", "code-generation"),  # a UI kit, not a design question
    ("the graphic design of the landing page is off", "default"),
    ("show me the design doc", "file-operations"),  # reading a document
    ("sorry, my misunderstanding, carry on", "default"),  # understand inside a word
    ("explain the SQL injection in login.py", "security"),  # security comes first
]


@pytest.mark.parametrize(("prompt", "expected"), ARCHITECTURE_NEAR_MISSES)
def test_architecture_near_misses(prompt: str, expected: str) -> None:
    assert route(prompt).rule == expected


# --- security --------------------------------------------------------------------------------

SECURITY = [
    "do a security review of the auth module",
    "Is this endpoint vulnerable to SQL injection?",
    "check for XSS in the templates",
    "are there any hardcoded secrets or API keys in the repo?",
    "write a threat model for the proxy",
    "is there an auth bypass in the login flow?",
    "check whether the session handling is broken",
    "harden the nginx config",
    "Audit the dependencies for known CVEs",
    "can an attacker read other users' files (IDOR)?",
    "could this be exploited via path traversal?",
    "is this safe against path traversal?",
    "check requirements.txt for known CVEs",
    "add rate limiting to stop brute force login attempts",
    "is the upload handler safe from directory traversal?",
    "check for open redirects in the login handler",
    "we're leaking tokens in the logs",
    "is it safe to log the bearer token?",
]


@pytest.mark.parametrize("prompt", SECURITY)
def test_security_work_goes_to_anthropic(prompt: str) -> None:
    decision = route(prompt)
    assert decision.rule == "security", decision.reason
    assert (decision.provider, decision.model) == ("anthropic", "claude-sonnet-5")


SECURITY_NEAR_MISSES = [
    ("the author field is null in the API response", "default"),  # auth in "author"
    ("the authoring tool crashes on save", "default"),
    ("set up dependency injection for the services", "default"),  # a design pattern
    ("fix the memory leak in the worker", "code-generation"),  # a leak, but not of secrets
    ("add an audit log entry when a user is deleted", "code-generation"),  # a feature
    ("secret santa app: write the pairing logic", "code-generation"),
    ("add a securities ticker widget", "code-generation"),  # finance, not security
]


@pytest.mark.parametrize(("prompt", "expected"), SECURITY_NEAR_MISSES)
def test_security_near_misses(prompt: str, expected: str) -> None:
    assert route(prompt).rule == expected


# --- critical --------------------------------------------------------------------------------

CRITICAL = [
    "prod is down, the API returns 502 everywhere",
    "We have an outage: checkout fails for all users",
    "URGENT: payments are failing in production",
    "the migration corrupted data in the orders table, how do we recover?",
    "we're losing data when the queue restarts",
    "this is a critical bug, customers are affected",
    "write the postmortem for yesterday's incident",
    "Should we drop the legacy table? This is irreversible",
    "hotfix needed for the login crash on prod",
    "site is down for everyone",
    "production deploy broke the checkout page",
    "the database is corrupted after the failover",
    "sev1: latency spike on the API",
]


@pytest.mark.parametrize("prompt", CRITICAL)
def test_production_critical_work_goes_to_anthropic(prompt: str) -> None:
    decision = route(prompt)
    assert decision.rule == "critical", decision.reason
    assert decision.provider == "anthropic"


CRITICAL_NEAR_MISSES = [
    ("protect the critical section with a mutex", "default"),  # concurrency term
    ("what's on the critical path of the build?", "default"),  # scheduling term
    ("mark these lint warnings as non-critical", "code-generation"),
    ("this is not critical, do it later", "default"),
    ("critical CSS isn't inlined on the landing page", "default"),  # a front-end technique
    ("remove the incidental complexity in parse_config", "default"),  # incident inside a word
    ("the production of the weekly report takes ages", "default"),  # production, not prod
    ("my local dev server is down", "default"),  # not a production site
]


@pytest.mark.parametrize(("prompt", "expected"), CRITICAL_NEAR_MISSES)
def test_critical_near_misses(prompt: str, expected: str) -> None:
    assert route(prompt).rule == expected


# --- web search and fetch --------------------------------------------------------------------

WEB_SEARCH = [
    "search the web for the latest FastAPI release",
    "fetch https://docs.python.org/3/library/re.html and summarize it",
    "look up online what the Ollama default port is",
    'Google it: "httpx ReadTimeout retry"',
    "can you browse the pydantic docs site and check the v2 migration guide?",
    "read https://example.com/api-spec.json",
    "check the online docs for sqlite-utils upsert",
    "search online for known issues with pytest-timeout on windows",
    "look it up on the internet",
    "is there a newer version of click?",
    "search github for similar projects",
]


@pytest.mark.parametrize("prompt", WEB_SEARCH)
def test_web_access_goes_to_anthropic(prompt: str) -> None:
    decision = route(prompt)
    assert decision.rule == "web-search", decision.reason
    assert decision.provider == "anthropic"


WEB_SEARCH_NEAR_MISSES = [
    ("git fetch and rebase on main", "default"),  # git, not the web
    ("fetch origin and compare the branches", "architecture"),
    ("use the fetch API to call /users", "default"),  # the browser API in our own code
    ("search the codebase for fetch calls", "file-operations"),  # local search
    ("do some research on the queue options", "default"),  # search inside "research"
    ("the homepage url in pyproject.toml is wrong", "default"),  # a URL mentioned, not fetched
    ("implement binary search", "code-generation"),
]


@pytest.mark.parametrize(("prompt", "expected"), WEB_SEARCH_NEAR_MISSES)
def test_web_search_near_misses(prompt: str, expected: str) -> None:
    assert route(prompt).rule == expected


# --- order, default route, evidence, complexity ----------------------------------------------

FIRST_MATCH_WINS = [
    # (prompt, winner, another route that also matches on its own)
    ("write a test for the SQL injection fix in login.py", "security", "code-generation"),
    ("add input sanitization to the upload handler", "security", "code-generation"),
    ("read the incident report from last night", "critical", "file-operations"),
    ("fetch https://example.com/openapi.json and write a client", "web-search", "code-generation"),
    ("open config.py and add a timeout option", "code-generation", "file-operations"),
    ("explain this function and then refactor it", "code-generation", "architecture"),
    ("where is the JWT verified?", "security", "file-operations"),
]


@pytest.mark.parametrize(("prompt", "winner", "loser"), FIRST_MATCH_WINS)
def test_first_matching_route_in_file_order_wins(prompt: str, winner: str, loser: str) -> None:
    assert route_matches(loser, prompt)  # both routes apply ...
    assert route(prompt).rule == winner  # ... and the earlier one in the table decides


@pytest.mark.parametrize("prompt", ["say hi", "thanks!", "good morning", "ok, sounds good"])
def test_chit_chat_takes_the_default_route_to_the_coder_tier(prompt: str) -> None:
    decision = route(prompt)
    assert decision.rule == "default"
    assert decision.reason == "no route matched"
    assert decision.matched == ()
    assert decision.tier == "coder"
    assert (decision.provider, decision.tier) == ("ollama", "coder")


@pytest.mark.parametrize(
    ("prompt", "matched"),
    [
        # the longer phrase wins over the word inside it, and each keyword appears once
        ("Is this endpoint vulnerable to SQL injection?", ("vulnerable", "sql injection")),
        ("show me the contents of pyproject.toml", ("show", "contents of")),
        ("this is a critical bug, customers are affected", ("critical", "customers are affected")),
        ("fix the test, then fix the other test", ("fix", "test")),
        ("fetch https://docs.python.org/3/ and summarize it", ("fetch https://",)),
        ("Where's the config loaded?", ("where's",)),
    ],
)
def test_decision_lists_the_matched_keywords(prompt: str, matched: tuple[str, ...]) -> None:
    decision = route(prompt)
    assert decision.matched == matched
    assert all(f'"{term}"' in decision.reason for term in matched)


LONG_FIND = (
    "Find every place across the entire codebase where we open a database connection. Then "
    "list the module each one lives in, and note whether the connection is closed in a finally "
    "block or a context manager. After that, locate the callers of each of those functions in "
    "the api, worker and cli packages, and group them by package. Also find the places where a "
    "connection is passed between threads, and finally show me a table with the file, the "
    "function, the line and whether it is closed on every path, sorted by package and then by "
    "file name so I can go through them one by one."
)


def test_long_multi_step_find_is_too_much_for_the_file_operations_model() -> None:
    decision = route(LONG_FIND)
    assert decision.complexity == "high"
    assert decision.rule == "default"
    # The first sentence alone is a plain lookup and does go to the fast model.
    short = route(LONG_FIND.split(". ")[0] + ".")
    assert (short.rule, short.complexity) == ("file-operations", "low")


def test_medium_complexity_lookups_still_go_to_file_operations() -> None:
    prompt = (
        "find where the retry loop lives in the client package, then show me every caller of it "
        "with the file and line, and also list the tests that exercise it"
    )
    decision = route(prompt)
    assert decision.complexity == "medium"
    assert decision.rule == "file-operations"
