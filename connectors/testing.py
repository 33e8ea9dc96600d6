"""A contract test kit for connector authors: the checks every Strongroom connector must pass.

Subclass :class:`ConnectorContract` in a pytest module, name the class ``Test...``, set
``connector_class`` and return a small working configuration from ``config()``; pytest then runs
every ``test_*`` check below against your connector::

    from pathlib import Path
    from strongroom.connectors.testing import ConnectorContract, collect
    from strongroom_notes import NotesConnector

    class TestNotesContract(ConnectorContract):
        connector_class = NotesConnector

        def config(self, tmp_path: Path) -> dict:           # any pytest fixtures, by parameter name
            (tmp_path / "notes.json").write_text('[{"id": 1, "title": "Hi", "body": "Hello."}]')
            return {"path": "notes.json"}                   # relative to base_dir (tmp_path)

        def broken_config(self, tmp_path: Path) -> dict:    # optional: a source that cannot be read
            return {"path": "missing.json"}

``config()``, ``broken_config()`` and ``base_dir()`` are plain methods whose parameters are
pytest fixtures (``tmp_path``, ``monkeypatch``, a server fixture of your own...); a method may
also be a ``@pytest.fixture`` of the same name. Options are validated exactly as Strongroom
validates a ``[[sources]]`` table, relative paths resolved against ``base_dir()`` (default:
``tmp_path``). :func:`collect` runs a connector and returns its documents, for your own tests.
This module needs pytest (a test dependency of your plug-in); Strongroom never imports it.

The contract: at least one document; ids unique within a run and stable across runs (same ids,
same text); every document has a title and text; a second run given the first run's ``state``
accounts for every document (yielded again, or reported with ``unchanged()``/``skip()``), and
the state is JSON; with ``partial``, ``documents_in()`` accounts for its scope and nothing
outside it, and a whole run given its state still accounts for every document; ``Config``
subclasses :class:`strongroom.connectors.Config` and rejects unknown keys by name;
``SecretStr`` settings never show in ``repr``/``str``/JSON, and settings named like secrets are
``SecretStr``; ``name`` is an identifier; a source that cannot be read raises
:class:`ConnectorError` and nothing else; importing the connector loads none of chromadb,
sentence_transformers or mcp.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib.metadata
import inspect
import json
import os
import subprocess
import sys
from collections.abc import Coroutine, Mapping, Sequence
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any, ClassVar, TypeVar, get_args, get_origin

import pytest
from pydantic import SecretBytes, SecretStr, ValidationError

from strongroom.connectors.api import Config, Connector, ConnectorError, Document, in_scope
from strongroom.connectors.registry import GROUP, configure, is_secret

__all__ = ["SECRET", "ConnectorContract", "acollect", "collect", "secret_settings"]

#: The value the contract puts into every SecretStr setting, to look for it where it must not be.
SECRET = "s3cr3t-contract-canary-7f3a9c"

#: Setting names that look like secrets (by suffix); such settings must be typed SecretStr.
SECRET_SUFFIXES = ("password", "passwd", "secret", "token", "api_key", "apikey", "private_key", "credentials")

T = TypeVar("T")


async def acollect(connector: Connector) -> list[Document]:
    """Every document a connector yields in one run (in an async test)."""
    return [document async for document in connector.documents()]


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        in_loop = False
    else:
        in_loop = True
    if not in_loop:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # called from inside an event loop
        return pool.submit(asyncio.run, coro).result()


async def _documents_in(connector: Connector, scopes: Sequence[str]) -> list[Document]:
    return [document async for document in connector.documents_in(scopes)]


def collect(connector: Connector) -> list[Document]:
    """Run a connector once and return the documents it yields, in order.

    Exceptions propagate (a ConnectorError for an unreadable source); ``connector.skipped``,
    ``connector.kept`` and ``connector.state`` hold what the run recorded.
    """
    return _run(acollect(connector))


def secret_settings(config: type[Config]) -> list[str]:
    """The names of a Config model's fields typed SecretStr / SecretBytes (optional ones included)."""
    return [name for name, info in config.model_fields.items() if is_secret(info.annotation)]


def _canary(annotation: Any) -> Any:
    """A value for a secret-typed setting that holds SECRET: a string, or a list/dict of them."""
    if isinstance(annotation, type) and issubclass(annotation, SecretStr | SecretBytes):
        return SECRET
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (list, set, frozenset, tuple, Sequence, AbstractSet) and args:
        inner = _canary(args[0])
        return None if inner is None else [inner]
    if origin in (dict, Mapping) and len(args) == 2:
        inner = _canary(args[1])
        return None if inner is None else {"X-Contract-Canary": inner}
    return next((c for c in map(_canary, args) if c is not None), None)  # unions, Annotated


def _secret_values(value: Any) -> list[str]:
    """The secret strings held by a setting's value (a secret, or containers of secrets)."""
    if isinstance(value, SecretStr | SecretBytes):
        secret = value.get_secret_value()
        return [secret.decode(errors="replace") if isinstance(secret, bytes) else secret]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _secret_values(item)]
    if isinstance(value, list | tuple | set | frozenset):
        return [text for item in value for text in _secret_values(item)]
    return []


def _is_fixture(member: Any) -> bool:
    return hasattr(member, "_fixture_function") or hasattr(member, "_pytestfixturefunction")


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class ConnectorContract:
    """Base class of a connector's contract tests; see the module docstring for an example.

    Set ``connector_class`` and implement ``config()``. Optional: ``broken_config()`` (options
    that validate but name a source that cannot be read: a missing path, an unreachable server),
    ``base_dir()``, ``forbidden_imports`` and ``not_secret_settings`` (names that look like
    secrets but are not, e.g. ``"max_tokens"`` would not need it, ``"reset_token"`` might).
    """

    connector_class: ClassVar[type[Connector]]
    forbidden_imports: ClassVar[frozenset[str]] = frozenset({"chromadb", "sentence_transformers", "mcp"})
    not_secret_settings: ClassVar[frozenset[str]] = frozenset()

    # -- what a connector author provides ---------------------------------------------------------

    def config(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Options of a working source (the keys of its ``[[sources]]`` table, minus name/connector)."""
        raise NotImplementedError(f"{type(self).__name__} must define config() returning a valid config")

    def broken_config(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        """Valid options for a source that cannot be read; None skips the failure check."""
        return None

    def base_dir(self, tmp_path: Path) -> Path | None:
        """The folder relative paths in the options are resolved against (the config file's)."""
        return tmp_path

    # -- helpers --------------------------------------------------------------------------------

    def make_connector(self, options: dict[str, Any], base_dir: Path | None) -> Connector:
        """Validate options as Strongroom does for a source and instantiate the connector."""
        return configure(self.connector_class, options, base_dir)

    def _provide(self, request: pytest.FixtureRequest, name: str) -> Any:
        member = getattr(self, name)
        if _is_fixture(member):
            return request.getfixturevalue(name)
        parameters = inspect.signature(member).parameters.values()
        kwargs = {
            p.name: request.getfixturevalue(p.name)
            for p in parameters
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        }
        return member(**kwargs)

    @pytest.fixture
    def contract_base_dir(self, request: pytest.FixtureRequest) -> Path | None:
        base = self._provide(request, "base_dir")
        return None if base is None else Path(base)

    @pytest.fixture
    def contract_config(self, request: pytest.FixtureRequest) -> dict[str, Any]:
        options = self._provide(request, "config")
        assert isinstance(options, dict), f"config() must return a dict, not {type(options).__name__}"
        return dict(options)

    @pytest.fixture
    def contract_connector(
        self, contract_config: dict[str, Any], contract_base_dir: Path | None
    ) -> Connector:
        return self.make_connector(contract_config, contract_base_dir)

    # -- the class itself -----------------------------------------------------------------------

    def test_name_and_config_class(self) -> None:
        cls = self.connector_class
        assert isinstance(cls, type) and issubclass(cls, Connector), f"{cls!r} is not a Connector subclass"
        assert not inspect.isabstract(cls), f"{cls.__name__} does not implement {cls.__abstractmethods__}"
        name = getattr(cls, "name", None)
        assert isinstance(name, str) and name.isascii() and name.isidentifier(), (
            f"{cls.__name__}.name must be a non-empty identifier, got {name!r}"
        )
        config = getattr(cls, "Config", None)
        assert isinstance(config, type) and issubclass(config, Config), (
            f"{cls.__name__}.Config must subclass strongroom.connectors.Config, got {config!r}"
        )
        assert isinstance(cls.description, str) and cls.description.strip(), (
            f"{cls.__name__}.description is empty (`strongroom connectors` shows it)"
        )

    def test_every_setting_is_described(self) -> None:
        undescribed = [
            name for name, info in self.connector_class.Config.model_fields.items() if not info.description
        ]
        assert not undescribed, f"settings without a Field(description=...): {undescribed}"

    def test_registered_entry_point_loads_this_class(self) -> None:
        name = self.connector_class.name
        registered = [ep for ep in importlib.metadata.entry_points(group=GROUP) if ep.name == name]
        if not registered:
            pytest.skip(f"no {GROUP!r} entry point named {name!r} installed (pip install -e . to check it)")
        assert registered[0].load() is self.connector_class, (
            f"entry point {name!r} = {registered[0].value!r} is not {self.connector_class.__qualname__}"
        )

    # -- documents ------------------------------------------------------------------------------

    def test_yields_documents(self, contract_connector: Connector) -> None:
        documents = collect(contract_connector)
        assert documents, "config() should name a source with at least one document"
        wrong = [type(d).__name__ for d in documents if not isinstance(d, Document)]
        assert not wrong, f"documents() must yield strongroom.connectors.Document, got {wrong}"

    def test_documents_have_title_and_text(self, contract_connector: Connector) -> None:
        for document in collect(contract_connector):
            assert document.title.strip(), f"document {document.id!r} has no title"
            assert document.text.strip(), f"document {document.id!r} has no text (use skip() instead)"

    def test_ids_are_unique_within_a_run(self, contract_connector: Connector) -> None:
        ids = [document.id for document in collect(contract_connector)]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        assert not duplicates, f"ids yielded more than once in one run: {duplicates}"

    def test_ids_and_text_are_stable_across_runs(
        self, contract_config: dict[str, Any], contract_base_dir: Path | None
    ) -> None:
        first = {d.id: d for d in collect(self.make_connector(contract_config, contract_base_dir))}
        second = {d.id: d for d in collect(self.make_connector(contract_config, contract_base_dir))}
        assert set(first) == set(second), (
            f"ids differ between two runs: only first {sorted(set(first) - set(second))}, "
            f"only second {sorted(set(second) - set(first))}"
        )
        changed = [i for i in first if (first[i].text, first[i].title) != (second[i].text, second[i].title)]
        assert not changed, f"same id, different title or text between two runs: {changed}"

    def test_state_round_trips_and_a_second_run_accounts_for_every_document(
        self, contract_config: dict[str, Any], contract_base_dir: Path | None
    ) -> None:
        first = self.make_connector(contract_config, contract_base_dir)
        ids = {d.id for d in collect(first)}
        try:
            saved = json.dumps(first.state)
        except (TypeError, ValueError) as exc:
            pytest.fail(f"connector.state must be JSON-serialisable (Strongroom stores it as JSON): {exc}")
        second = self.make_connector(contract_config, contract_base_dir)
        second.state = json.loads(saved)
        yielded = {d.id for d in collect(second)}
        accounted = yielded | second.kept | {s.id for s in second.skipped}
        missing = sorted(ids - accounted)
        assert not missing, (
            "given the first run's state, the second run neither yielded nor called unchanged() for "
            f"{missing}: Strongroom would delete them from the index"
        )

    def test_a_partial_run_covers_its_scope_and_keeps_the_rest_of_the_state(
        self, contract_config: dict[str, Any], contract_base_dir: Path | None
    ) -> None:
        if not self.connector_class.partial:
            pytest.skip("partial is False: every run covers the whole source")
        first = self.make_connector(contract_config, contract_base_dir)
        ids = sorted(d.id for d in collect(first))
        second = self.make_connector(contract_config, contract_base_dir)
        second.state = json.loads(json.dumps(first.state))
        scope = ids[:1]
        yielded = {d.id for d in _run(_documents_in(second, scope))}
        accounted = yielded | second.kept | {s.id for s in second.skipped}
        assert set(scope) <= accounted, f"documents_in({scope}) neither yielded nor kept {scope}"
        outside = sorted(i for i in accounted if not in_scope(i, set(scope)))
        assert not outside, f"documents_in({scope}) reported items out of its scope: {outside}"
        json.dumps(second.state)
        third = self.make_connector(contract_config, contract_base_dir)
        third.state = second.state
        again = {d.id for d in collect(third)} | third.kept | {s.id for s in third.skipped}
        assert set(ids) <= again, f"after a partial run, a whole run lost {sorted(set(ids) - again)}"

    def test_estimated_count_is_a_count_or_none(self, contract_connector: Connector) -> None:
        count = _run(contract_connector.estimated_count())
        assert count is None or (isinstance(count, int) and count >= 0), f"estimated_count() gave {count!r}"

    # -- configuration --------------------------------------------------------------------------

    def test_config_rejects_unknown_keys(
        self, contract_config: dict[str, Any], contract_base_dir: Path | None
    ) -> None:
        key = "contract_unknown_setting"
        options = {**contract_config, key: True}
        with pytest.raises(ValidationError) as info:
            self.connector_class.Config.model_validate(options, context={"base_dir": contract_base_dir})
        assert any(e["loc"] == (key,) and e["type"] == "extra_forbidden" for e in info.value.errors()), (
            f"the error does not name the unknown key {key!r}: {info.value}"
        )
        with pytest.raises(ConnectorError, match=f"{key}: unknown key"):
            self.make_connector(options, contract_base_dir)

    def test_secrets_never_show(
        self, contract_config: dict[str, Any], contract_base_dir: Path | None
    ) -> None:
        secrets = secret_settings(self.connector_class.Config)
        if not secrets:
            pytest.skip("no SecretStr settings")
        canaries = {
            name: _canary(self.connector_class.Config.model_fields[name].annotation) for name in secrets
        }
        options = {**contract_config, **{n: v for n, v in canaries.items() if v is not None}}
        connector = self.make_connector(options, contract_base_dir)
        config = connector.config
        for name in secrets:
            if canaries[name] is not None:
                assert SECRET in _secret_values(getattr(config, name)), (
                    f"{name} did not validate to a secret holding the value it was given"
                )
        renderings = {
            "repr(config)": repr(config),
            "str(config)": str(config),
            "config.model_dump_json()": config.model_dump_json(),
            "config.model_dump(mode='json')": json.dumps(config.model_dump(mode="json")),
            "repr(connector)": repr(connector),
        }
        leaked = [where for where, text in renderings.items() if SECRET in text]
        assert not leaked, f"a secret setting's value shows in {leaked}"

    def test_settings_named_like_secrets_are_secret(self) -> None:
        config = self.connector_class.Config
        plain = [
            name
            for name, info in config.model_fields.items()
            if name.lower().endswith(SECRET_SUFFIXES)
            and name not in self.not_secret_settings
            and not is_secret(info.annotation)
        ]
        assert not plain, (
            f"settings {plain} look like secrets but are not typed SecretStr (list them in "
            "not_secret_settings if they are not secrets)"
        )

    # -- failure --------------------------------------------------------------------------------

    def test_unreadable_source_raises_connector_error(
        self, request: pytest.FixtureRequest, contract_base_dir: Path | None
    ) -> None:
        options = self._provide(request, "broken_config")
        if options is None:
            pytest.skip("no broken_config() given")
        connector = self.make_connector(dict(options), contract_base_dir)
        try:
            collect(connector)
        except ConnectorError as exc:
            message = str(exc)
        except Exception as exc:
            pytest.fail(f"an unreadable source must raise ConnectorError, not {_describe(exc)}")
        else:
            pytest.fail("broken_config() names an unreadable source, but documents() raised nothing")
        assert message.strip(), "the ConnectorError should say what is wrong"
        for name in secret_settings(self.connector_class.Config):
            for text in _secret_values(getattr(connector.config, name)):
                assert len(text) < 4 or text not in message, f"the error message shows the secret {name}"
        try:
            count = _run(connector.estimated_count())
        except ConnectorError:
            return
        except Exception as exc:
            pytest.fail(f"estimated_count() on an unreadable source raised {_describe(exc)}")
        assert count is None or isinstance(count, int)

    # -- isolation ------------------------------------------------------------------------------

    def test_imports_no_index_model_or_protocol_code(self) -> None:
        module = self.connector_class.__module__
        if module == "__main__":
            pytest.skip("the connector is defined in __main__")
        forbidden = sorted(self.forbidden_imports)
        code = (
            "import importlib, sys\n"
            f"importlib.import_module({module!r})\n"
            f"print(','.join(m for m in {forbidden!r} if m in sys.modules))\n"
        )
        paths = [p for p in sys.path if p] + [os.environ.get("PYTHONPATH", "")]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
        )
        assert done.returncode == 0, f"importing {module} in a fresh interpreter failed:\n{done.stderr}"
        loaded = done.stdout.strip()
        assert not loaded, (
            f"importing {module} loads {loaded}: a connector only yields documents and must not "
            "import the vector store, the embedding model or MCP"
        )
