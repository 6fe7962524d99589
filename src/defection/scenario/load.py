"""Loading scenario files, and pointing a scenario at a checked posterior file."""

from __future__ import annotations

from pathlib import Path

from defection.scenario.build import default_scenario, scenario_from_dict
from defection.scenario.errors import _MISSING, Problem, ScenarioError
from defection.scenario.files import InputFileError, read_toml
from defection.scenario.library import library_names, library_path
from defection.scenario.schema import Scenario


def load_scenario(path: str | Path | None = None, *, posterior: bool = True) -> Scenario:
    """Load and validate a scenario TOML file, or a shipped scenario by name (`defection scenarios list`; a file of
    that name wins); ``None`` gives the default scenario. With ``posterior=False`` a posterior the file names
    (`simulation.posterior`) is ignored: not read, and cleared from the scenario."""
    if path is None:
        return default_scenario()
    p = Path(path)
    if not p.exists():
        shipped = library_path(str(path))
        if shipped is None:
            why = "file not found, and not a shipped scenario (" + ", ".join(library_names()) + ")"
            raise ScenarioError(str(p), [Problem("(file)", _MISSING, why)])
        p = shipped
    try:
        data = read_toml(p)
    except InputFileError as e:
        raise ScenarioError(str(p), [e.problem]) from None
    sc = scenario_from_dict(data, str(p))
    if not posterior and sc.simulation.posterior:
        sc = sc.model_copy(deep=True)
        sc.simulation.posterior = ""
    elif sc.simulation.posterior:
        sc = with_posterior(sc, sc.simulation.posterior, str(p), base=p.parent)
    return sc


def with_posterior(
    sc: Scenario, posterior: str | Path, source: str = "<command line>", base: Path | None = None
) -> Scenario:
    """The scenario with `simulation.posterior` set to a checked, absolute path of a posterior file (a relative
    path is taken from `base`, the scenario file's folder)."""
    # lazy: numpy; a scenario without a posterior loads without it (`defection check` and `--help` start faster)
    from defection.scenario.posterior import Posterior, PosteriorError

    path = ((base or Path.cwd()) / posterior).resolve()
    try:
        Posterior.load(path)
    except PosteriorError as e:
        why = "; ".join(q.message if q.path == "(file)" and q.value is _MISSING else str(q) for q in e.problems)
        raise ScenarioError(source, [Problem("simulation.posterior", str(posterior), f"{why} ({path})")]) from None
    sc = sc.model_copy(deep=True)
    sc.simulation.posterior = str(path)
    return sc
