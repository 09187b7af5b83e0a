"""README's two opening commands are what users and CI run."""

from conftest import REPO


def opening_commands():
    text = (REPO / "README.md").read_text()
    block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_readme_opens_with_exactly_two_commands():
    commands = opening_commands()
    assert len(commands) == 2
    assert "reszoo train" in commands[0] and "pytest" in commands[1]


def test_ci_runs_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert opening_commands()[1] in ci
