import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built once for this module's tests (a build takes seconds)."""
    wheels = tmp_path_factory.mktemp("wheels")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "-q",
            "-w",
            str(wheels),
            str(ROOT),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    (built,) = wheels.glob("claude_hybrid_router-*.whl")
    return built


def test_wheel_carries_the_settings_templates(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "hybrid_router/settings_templates/router-config.json" in names
    assert "hybrid_router/cli/__init__.py" in names
    entry_points = (
        zipfile.ZipFile(wheel)
        .read(next(n for n in names if n.endswith("entry_points.txt")))
        .decode()
    )
    assert "hybrid-router = hybrid_router.entry:main" in entry_points


def test_install_works_from_the_installed_wheel_not_only_the_checkout(wheel, tmp_path):
    """`hybrid-router install` takes everything from settings-templates/ inside the wheel."""
    import json
    import os

    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--disable-pip-version-check",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    program = (
        "import sys\n"
        f"sys.path.insert(0, {str(target)!r})\n"
        "import hybrid_router.config as config\n"
        f"assert str(config.templates_dir()).startswith({str(target)!r}), config.templates_dir()\n"
        "from hybrid_router.entry import main\n"
        "sys.argv = ['hybrid-router', 'install', '--scope', 'user', '--no-statusline']\n"
        "main()\n"
    )
    home = tmp_path / "home"
    env = {
        **os.environ,
        "HOME": str(home),
        "CLAUDE_CONFIG_DIR": str(home / ".claude"),
        "HYBRID_ROUTER_HOME": str(tmp_path / "router-home"),
    }
    done = subprocess.run(
        [sys.executable, "-c", program],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    settings = json.loads((home / ".claude" / "settings.json").read_text())
    assert "UserPromptSubmit" in settings["hooks"]
    assert (home / ".claude" / "commands" / "route-stats.md").read_text().startswith("---")
    assert (
        "hybrid-router" in json.loads((home / ".claude" / ".claude.json").read_text())["mcpServers"]
    )
