"""Model profiles (settings-templates/profiles/): complete, honest about their figures, sized to
hold Claude Code's requests; hardware detection with stand-in `nvidia-smi` / `sysctl` and a fake
/proc/meminfo; `hybrid-router profiles` and `init --profile / --memory-gb / --force`; a rendered
profile config that `config check` accepts and that keeps a real-CLI-shaped request local."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from claude_code_bodies import claude_code_body
from click.testing import CliRunner, Result
from fakes.fake_ollama import FakeModel, FakeOllama

from hybrid_router.cli import cli, hardware
from hybrid_router.config.compile import routing_table
from hybrid_router.config.loading import default_config_path, parse_config
from hybrid_router.config.profiles import (
    REQUIRED_TIERS,
    Profile,
    ProfileError,
    format_json,
    largest_fitting,
    load_profile_file,
    load_profiles,
    profile_for_memory,
    profiles_dir,
    render_config,
)
from hybrid_router.core import home
from hybrid_router.core.routing import decide
from hybrid_router.core.signals import signals_from_request

NAMES = ("8gb", "16gb", "32gb", "64gb", "seed")
CLAUDE_CODE_REQUEST = 20_000  # tokens of system prompt and tools before the user types
ANSWER_ROOM = 4096  # the proxy's outputReserveTokens
MIN_LOCAL_WINDOW = 24 * 1024


@pytest.fixture(scope="module")
def profiles() -> dict[str, Profile]:
    return load_profiles()


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def default_data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(default_config_path().read_text())
    return data


# --- the data ------------------------------------------------------------------------------------


def test_every_profile_loads_with_all_tiers(profiles: dict[str, Profile]) -> None:
    assert sorted(profiles) == sorted(NAMES)
    # selectable ones first, smallest need first; seed (by name only) last
    assert list(profiles) == ["8gb", "16gb", "32gb", "64gb", "seed"]
    for profile in profiles.values():
        assert list(profile.spec.tiers)[: len(REQUIRED_TIERS)] == list(REQUIRED_TIERS)
        assert profile.spec.tiers["premium"].provider == "anthropic"


def test_every_local_model_has_its_figures_and_their_sources(
    profiles: dict[str, Profile],
) -> None:
    for profile in profiles.values():
        local = profile.local_tiers()
        assert {tier.model for tier in local.values()} == set(profile.spec.models)
        for model, facts in profile.spec.models.items():
            assert facts.download_gb > 0 and facts.memory_gb > facts.download_gb, model
            for source in (
                facts.download_source,
                facts.tools_source,
                facts.max_context_source,
                facts.kv_cache.source,
                facts.memory_source,
            ):
                assert len(source) > 20, (profile.name, model, source)
            assert facts.memory_source.startswith("computed:")
        assert profile.spec.memory.assumption and profile.spec.memory.overhead_source


def test_the_same_model_has_the_same_facts_in_every_profile(
    profiles: dict[str, Profile],
) -> None:
    seen: dict[str, tuple[Any, ...]] = {}
    for profile in profiles.values():
        for model, facts in profile.spec.models.items():
            key = (
                facts.download_gb,
                facts.download_source,
                facts.tools,
                facts.max_context_tokens,
                facts.kv_cache,
            )
            assert seen.setdefault(model, key) == key, model


def test_current_profiles_hold_a_claude_code_request_with_tools(
    profiles: dict[str, Profile],
) -> None:
    for name in ("8gb", "16gb", "32gb", "64gb"):
        profile = profiles[name]
        assert profile.spec.memory_gb is not None
        assert profile.required_gb <= profile.spec.memory_gb
        for tier_name, tier in profile.local_tiers().items():
            assert tier.context_window >= MIN_LOCAL_WINDOW, (name, tier_name)
            assert profile.spec.models[tier.model].tools, (name, tier.model)
            # the free cloud fallback states its window (free cloud before premium on size)
            assert any(fb.context_window for fb in tier.fallbacks), (name, tier_name)
    # the fast tier takes Claude Code's background and Explore requests, which carry tools
    assert all(profiles[n].spec.tiers["fast"].context_window >= 64 * 1024 for n in NAMES[:4])


def test_the_8gb_profile_holds_one_claude_code_request_in_every_local_window(
    profiles: dict[str, Profile],
) -> None:
    small = profiles["8gb"]
    for tier in small.local_tiers().values():
        assert tier.context_window >= CLAUDE_CODE_REQUEST + ANSWER_ROOM
    # ... and gets the largest window that fits 8 GB: one more step of 8K would not
    facts = small.spec.models["qwen3.5:4b"]
    overhead = small.spec.memory.overhead_gb_per_model
    bigger = facts.download_gb + facts.kv_gb(facts.window + 8192) + overhead
    assert small.required_gb <= 8 < bigger


def test_profiles_with_more_memory_get_more(profiles: dict[str, Profile]) -> None:
    sizes = [profiles[n].required_gb for n in NAMES[:4]]
    assert sizes == sorted(sizes)
    assert profiles["32gb"].largest_local_window() >= 64 * 1024
    assert len(profiles["64gb"].spec.memory.loaded_together) == 2  # both stay loaded


def _without_profile(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key != "profile"}


def test_the_embedded_default_is_one_profiles_rendering(profiles: dict[str, Profile]) -> None:
    """Today the seed's (the file records no profile). Making another profile the default is
    writing its rendering, with its name, to settings-templates/router-config.json."""
    default = default_data()
    matches = [
        name
        for name, profile in profiles.items()
        if _without_profile(render_config(profile)) == _without_profile(default)
    ]
    assert matches == [default.get("profile", "seed")]
    assert not profiles["seed"].auto_select


def test_a_profile_renders_the_same_whichever_profile_the_default_came_from(
    profiles: dict[str, Profile],
) -> None:
    for base in profiles.values():
        as_default = render_config(base)
        for profile in profiles.values():
            assert render_config(profile, as_default) == render_config(profile), (base, profile)


def test_a_rendered_profile_is_the_default_with_the_profiles_tiers(
    profiles: dict[str, Profile],
) -> None:
    rendered = render_config(profiles["16gb"])
    assert next(iter(rendered)) == "profile" and rendered["profile"] == "16gb"
    assert rendered["tiers"] == json.loads(profiles["16gb"].path.read_text())["tiers"]
    # size is left to the context-window rule (and its free-cloud step): no large-context route
    assert "large-context" not in [r["name"] for r in rendered["routes"]]
    default = default_data()
    assert [r["name"] for r in rendered["routes"]] == [
        r["name"] for r in default["routes"] if r["name"] != "large-context"
    ]
    assert rendered["providers"] == default["providers"]
    seed_routes = [r["name"] for r in render_config(profiles["seed"])["routes"]]
    assert seed_routes.index("large-context") == seed_routes.index("code-generation") - 1
    config = parse_config(rendered, "16gb")
    assert config.profile == "16gb"


def test_format_json_round_trips_and_keeps_lines_short() -> None:
    data = default_data()
    text = format_json(data)
    assert json.loads(text) == data
    long = [line for line in text.splitlines() if len(line) > 100 and '": "' not in line]
    assert long == []  # only long strings (descriptions) may pass the width


def test_selection_by_memory(profiles: dict[str, Profile]) -> None:
    assert largest_fitting(profiles, 7.5) is None
    assert largest_fitting(profiles, 8)
    assert profile_for_memory(profiles, 8).name == "8gb"
    assert profile_for_memory(profiles, 12).name == "16gb"
    assert profile_for_memory(profiles, 31).name == "32gb"
    assert profile_for_memory(profiles, 1000).name == "64gb"  # seed is never picked by size
    with pytest.raises(ProfileError, match=r"4 GB holds no profile: the smallest, 8gb, needs 7\.9"):
        profile_for_memory(profiles, 4)


# --- the loader names the file and the field -----------------------------------------------------


def _broken(tmp_path: Path, name: str, change: Any) -> Path:
    data = json.loads((profiles_dir() / f"{name}.json").read_text())
    change(data)
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["models"]["qwen3.5:9b"].update(memoryGb=9.0),
            r"models\.qwen3\.5:9b\.memoryGb says 9\.0 but 6\.6 GB weights \+ 4\.29 GB",
        ),
        (
            lambda d: d["tiers"]["coder"].update(contextWindow=65536),
            r"tiers\.coder\.contextWindow is 65536 but models\.qwen3\.5:9b\.window is 131072",
        ),
        (
            lambda d: d["models"]["qwen3.5:9b"]["kvCache"].update(bytesPerToken=1000),
            r"kvCache\.bytesPerToken says 1000 but 2 x 8 layers x 4 KV heads",
        ),
        (
            lambda d: d["memory"].update(requiredGb=3.0),
            r"memory\.requiredGb says 3\.0 but the models loaded together need 11\.39",
        ),
        (lambda d: d["tiers"].pop("reasoning"), r"tiers is missing reasoning"),
        (
            lambda d: d["models"]["qwen3.5:9b"].update(downloadGb="big"),
            r"models\.qwen3\.5:9b\.downloadGb expected: input should be a valid number",
        ),
        (lambda d: d.update(name="other"), r"name expected '16gb'"),
        (lambda d: d["models"]["qwen3.5:9b"].pop("toolsSource"), r"toolsSource is required"),
    ],
)
def test_a_wrong_figure_is_an_error_naming_file_and_field(
    tmp_path: Path, change: Any, message: str
) -> None:
    path = _broken(tmp_path, "16gb", change)
    with pytest.raises(ProfileError, match=message) as caught:
        load_profile_file(path)
    assert str(caught.value).startswith(f"{path}: ")


def test_a_profile_over_its_memory_class_is_refused(tmp_path: Path) -> None:
    path = _broken(tmp_path, "16gb", lambda d: d.update(memoryGb=8))
    with pytest.raises(ProfileError, match=r"memory\.requiredGb 11\.39 GB does not fit"):
        load_profile_file(path)


# --- detection with stand-in executables ---------------------------------------------------------


def _executable(directory: Path, name: str, script: str) -> None:
    path = directory / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """An empty PATH of stand-ins and a fake /proc/meminfo of 16 GiB."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       16777216 kB\nMemFree:         1000000 kB\n")
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setattr(hardware, "MEMINFO", str(meminfo))
    return {"bin": bin_dir, "meminfo": meminfo}


def _nvidia(machine: dict[str, Path], *mib: int) -> None:
    lines = "".join(f"echo 'NVIDIA GeForce RTX 4090, {m}'\n" for m in mib)
    _executable(machine["bin"], "nvidia-smi", lines)


def test_nvidia_vram_picks_the_largest_profile_it_holds(
    machine: dict[str, Path], profiles: dict[str, Profile]
) -> None:
    _nvidia(machine, 24564)
    found = hardware.detect(system="Linux")
    assert found.gpu_gb == pytest.approx(24564 * 2**20 / 1e9)
    choice = hardware.choose(found, profiles)
    assert (choice.profile.name, choice.memory_kind, choice.fits) == ("16gb", "gpu", True)
    assert choice.line.startswith("memory: NVIDIA GeForce RTX 4090: 25.8 GB VRAM")
    assert "profile 16gb (needs 11.4 GB; 32gb would need 29.2 GB)" in choice.line
    _nvidia(machine, 24564, 24564)  # Ollama spreads over both
    assert hardware.choose(hardware.detect(system="Linux"), profiles).profile.name == "64gb"


def test_a_gpu_too_small_for_any_profile_falls_back_to_ram(
    machine: dict[str, Path], profiles: dict[str, Profile]
) -> None:
    _nvidia(machine, 4096)
    choice = hardware.choose(hardware.detect(system="Linux"), profiles)
    assert (choice.profile.name, choice.memory_kind) == ("16gb", "ram")
    assert "4.3 GB VRAM (nvidia-smi) holds no profile; RAM 17.2 GB (/proc/meminfo)" in choice.line
    assert "12.9 GB for CPU inference after 4.3 GB kept for the system" in choice.line


def test_a_broken_nvidia_smi_means_no_gpu(
    machine: dict[str, Path], profiles: dict[str, Profile]
) -> None:
    _executable(machine["bin"], "nvidia-smi", "echo 'NVIDIA-SMI has failed' >&2\nexit 9\n")
    found = hardware.detect(system="Linux")
    assert found.nvidia == () and found.gpu_gb is None
    choice = hardware.choose(found, profiles)
    assert choice.line.startswith("memory: no NVIDIA or Apple GPU found; RAM 17.2 GB")


def test_too_little_ram_picks_the_smallest_and_says_it_does_not_fit(
    machine: dict[str, Path], profiles: dict[str, Profile]
) -> None:
    machine["meminfo"].write_text("MemTotal:        8000000 kB\n")
    choice = hardware.choose(hardware.detect(system="Linux"), profiles)
    assert (choice.profile.name, choice.fits) == ("8gb", False)
    assert "no profile fits; chose the smallest, 8gb, which needs 7.9 GB" in choice.line


def _sysctl(machine: dict[str, Path], memsize: int, wired_mb: int = 0) -> None:
    _executable(
        machine["bin"],
        "sysctl",
        'case "$2" in\n'
        f"  hw.memsize) echo {memsize} ;;\n"
        f"  iogpu.wired_limit_mb) echo {wired_mb} ;;\n"
        "  *) exit 1 ;;\n"
        "esac\n",
    )


@pytest.mark.parametrize(
    ("gib", "wired_mb", "gpu_gb", "profile"),
    [
        (16, 0, 16 * 2**30 * 2 / 3 / 1e9, "16gb"),  # 11.45 GB: 2/3 of 16 GiB
        (32, 0, 32 * 2**30 * 2 / 3 / 1e9, "16gb"),  # 22.9 GB: not enough for 32gb
        (64, 0, 64 * 2**30 * 3 / 4 / 1e9, "64gb"),  # 51.5 GB: 3/4 above 36 GiB
        (32, 30000, 30000 * 2**20 / 1e9, "32gb"),  # the user raised iogpu.wired_limit_mb
    ],
)
def test_apple_unified_memory_counts_the_gpus_share(
    machine: dict[str, Path],
    profiles: dict[str, Profile],
    gib: int,
    wired_mb: int,
    gpu_gb: float,
    profile: str,
) -> None:
    _sysctl(machine, gib * 2**30, wired_mb)
    found = hardware.detect(system="Darwin", machine="arm64")
    assert found.ram_gb == pytest.approx(gib * 2**30 / 1e9)
    assert found.apple_gpu_gb == pytest.approx(gpu_gb)
    choice = hardware.choose(found, profiles)
    assert (choice.profile.name, choice.memory_kind) == (profile, "gpu")
    assert choice.line.startswith(
        f"memory: Apple silicon: {gpu_gb:.1f} GB of {found.ram_gb:.1f} GB unified memory"
    )


def test_linux_never_asks_sysctl_for_apple_memory(machine: dict[str, Path]) -> None:
    _sysctl(machine, 64 * 2**30)
    found = hardware.detect(system="Linux", machine="x86_64")
    assert found.apple_gpu_gb is None and found.ram_source == "/proc/meminfo"


# --- the CLI -------------------------------------------------------------------------------------


def test_profiles_json_shape(machine: dict[str, Path], router_home: Path) -> None:
    _nvidia(machine, 32607)
    data = json.loads(run("profiles", "--json").output)
    assert [p["name"] for p in data["profiles"]] == list(NAMES)
    first = data["profiles"][0]
    assert set(first) >= {
        "name",
        "description",
        "memoryGb",
        "requiredGb",
        "autoSelect",
        "loadedTogether",
        "tiers",
        "models",
    }
    assert first["tiers"]["fast"] == {
        "provider": "ollama",
        "model": "qwen3.5:4b",
        "contextWindow": 122880,
    }
    facts = first["models"]["qwen3.5:4b"]
    assert {"downloadGb", "downloadSource", "tools", "toolsSource", "memoryGb", "memorySource"} <= (
        set(facts)
    )
    assert data["configProfile"] == "16gb"  # the embedded default
    assert data["detected"]["profile"] == "32gb" and data["detected"]["memoryKind"] == "gpu"
    run("init", "--profile", "8gb")
    assert json.loads(run("profiles", "--json").output)["configProfile"] == "8gb"


def test_profiles_text(machine: dict[str, Path], router_home: Path) -> None:
    out = run("profiles").output
    assert "64gb: for 64 GB, needs 50.1 GB (loaded at once: qwen3-coder:30b + gpt-oss:20b)" in out
    assert "  fast, coder: ollama qwen3-coder:30b, window 131,072" in out
    # the embedded default is the 16gb profile, and this machine holds it
    assert (
        "16gb: for 16 GB, needs 11.4 GB (loaded at once: qwen3.5:9b)  (your config; this machine)"
        in out
    )
    assert out.rstrip().splitlines()[-1].startswith("memory: no NVIDIA or Apple GPU found")


def test_init_profile_writes_the_profiles_config(
    machine: dict[str, Path], router_home: Path
) -> None:
    result = run("init", "--profile", "32gb")
    assert result.exit_code == 0, result.output
    config_file = router_home / "router-config.json"
    assert result.output.splitlines() == [
        "profile 32gb: chosen with --profile",
        f"wrote {config_file} (profile 32gb, needs 29.2 GB)",
    ]
    data = json.loads(config_file.read_text())
    assert data["profile"] == "32gb"
    assert data["tiers"]["coder"]["model"] == "qwen3-coder:30b"
    check = run("config", "check")
    assert check.exit_code == 0 and check.output.startswith(f"ok: {config_file}: 6 routes")


def test_init_memory_gb_picks_the_largest_that_fits(router_home: Path) -> None:
    result = run("init", "--memory-gb", "20")
    assert result.exit_code == 0, result.output
    assert "profile 16gb: the largest that fits 20 GB (needs 11.4 GB)" in result.output
    assert json.loads((router_home / "router-config.json").read_text())["profile"] == "16gb"


def test_init_bad_input_is_a_clear_error(router_home: Path) -> None:
    unknown = CliRunner().invoke(cli, ["init", "--profile", "huge"])
    assert unknown.exit_code == 1
    assert "Error: unknown profile 'huge' (known: 8gb, 16gb, 32gb, 64gb, seed)" in unknown.output
    small = CliRunner().invoke(cli, ["init", "--memory-gb", "6"])
    assert small.exit_code == 1
    assert "Error: 6 GB holds no profile: the smallest, 8gb, needs 7.9 GB" in small.output
    both = CliRunner().invoke(cli, ["init", "--profile", "8gb", "--memory-gb", "9"])
    assert both.exit_code == 2 and "not both" in both.output
    negative = CliRunner().invoke(cli, ["init", "--memory-gb", "-1"])
    assert negative.exit_code == 2
    assert not (router_home / "router-config.json").exists()


def test_init_keeps_a_users_config_and_force_replaces_it_after_a_backup(
    router_home: Path,
) -> None:
    router_home.mkdir(parents=True)
    config_file = router_home / "router-config.json"
    mine = default_data()
    mine["outputReserveTokens"] = 1234
    config_file.write_text(json.dumps(mine))
    kept = CliRunner().invoke(cli, ["init", "--profile", "16gb"])
    assert kept.exit_code == 1 and "already exists (use --force" in kept.output
    assert run("init", "--if-missing").output == f"kept existing config: {config_file}\n"
    forced = run("init", "--profile", "16gb", "--force")
    assert forced.exit_code == 0, forced.output
    backups = list(router_home.glob("router-config.json.hybrid-router-backup-*"))
    assert len(backups) == 1
    assert json.loads(backups[0].read_text())["outputReserveTokens"] == 1234
    assert f"backed up {config_file} to {backups[0]}" in forced.output
    data = json.loads(config_file.read_text())
    assert (data["profile"], data["outputReserveTokens"]) == ("16gb", 4096)


def test_plain_init_detects_the_machine_and_says_why(
    machine: dict[str, Path], router_home: Path
) -> None:
    _nvidia(machine, 8192)
    result = run("init")
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    assert first == (
        "memory: NVIDIA GeForce RTX 4090: 8.6 GB VRAM (nvidia-smi) -> profile 8gb "
        "(needs 7.9 GB; 16gb would need 11.4 GB)"
    )
    assert json.loads((router_home / "router-config.json").read_text())["profile"] == "8gb"


def test_a_profile_file_on_its_own_passes_config_check(tmp_path: Path) -> None:
    for name in NAMES:
        path = tmp_path / f"{name}.json"
        path.write_text(format_json(render_config(load_profiles()[name])))
        result = run("config", "check", str(path))
        assert result.exit_code == 0, result.output


# --- routing with a profile ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["8gb", "16gb", "32gb", "64gb"])
def test_a_claude_code_request_for_code_stays_local(
    profiles: dict[str, Profile], name: str
) -> None:
    config = parse_config(render_config(profiles[name]), name)
    body = claude_code_body("write a function that parses ISO 8601 dates, with tests")
    signals = signals_from_request(body)
    assert signals.estimated_tokens >= CLAUDE_CODE_REQUEST  # a real-CLI-shaped request
    decision = decide(signals, routing_table(config))
    assert (decision.rule, decision.provider, decision.tier) == (
        "code-generation",
        "ollama",
        "coder",
    )
    assert decision.model == profiles[name].spec.tiers["coder"].model


def test_with_the_seed_the_same_request_escalates(profiles: dict[str, Profile]) -> None:
    config = parse_config(render_config(profiles["seed"]), "seed")
    body = claude_code_body("write a function that parses ISO 8601 dates, with tests")
    decision = decide(signals_from_request(body), routing_table(config))
    assert decision.rule == "context-window" and decision.tier != "coder"


# --- doctor against the profile ------------------------------------------------------------------


def test_doctor_warns_when_the_profile_does_not_fit_or_a_model_is_missing(
    machine: dict[str, Path], router_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run("init", "--profile", "64gb")  # needs 50.1 GB; the fake machine has 16 GiB of RAM
    with FakeOllama(models=[FakeModel("gpt-oss:20b", capabilities=["completion", "tools"])]) as o:
        monkeypatch.setenv("OLLAMA_HOST", o.url)
        result = CliRunner().invoke(cli, ["doctor", "--no-tools"])
        as_json = json.loads(CliRunner().invoke(cli, ["doctor", "--no-tools", "--json"]).output)
    out = result.output
    assert "Profile: 64gb, needs 50.1 GB (loaded at once: qwen3-coder:30b + gpt-oss:20b)" in out
    assert (
        "  warning: profile 64gb needs 50.1 GB but this machine has 12.9 GB of RAM for CPU "
        "inference (17.2 GB, 4.3 GB kept for the system): `hybrid-router init --profile 16gb "
        "--force` switches to one that fits (a backup is kept)"
    ) in out
    assert (
        "  warning: tier fast's model qwen3-coder:30b is not installed (19 GB download): "
        "`hybrid-router setup --pull` or `ollama pull qwen3-coder:30b`"
    ) in out
    assert "(used by fast, coder); `hybrid-router setup --pull` pulls every missing" in out
    profile = as_json["profile"]
    assert (profile["name"], profile["fits"]) == ("64gb", False)
    assert [m["tier"] for m in profile["missing"]] == ["fast", "coder"]


def test_doctor_without_a_profile_says_so(
    machine: dict[str, Path], router_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")
    data = json.loads((Path(home.templates_path()) / "router-config.json").read_text())
    data.pop("profile")  # a config written by hand, or before profiles
    router_home.mkdir(parents=True, exist_ok=True)
    (router_home / "router-config.json").write_text(json.dumps(data))
    out = CliRunner().invoke(cli, ["doctor", "--no-tools"]).output
    assert "Profile: none recorded in the config (hand-made tiers)." in out


def test_the_stand_in_executables_are_found_only_on_the_test_path(
    machine: dict[str, Path],
) -> None:
    assert os.environ["PATH"] == str(machine["bin"])
    assert hardware.nvidia_gpus(os.environ) == ()
