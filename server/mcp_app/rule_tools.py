"""Rule-set tools, check_answer and the answer prompt, on top of the MCP server.

One tool per rule set of the rules file, with the rule set's typed parameters as its input
schema. When the rules file (or the index its citations point into) changes and compiles,
the tools are replaced and connected clients are told the tool list changed; a broken file
keeps the previous tools and logs its problems to stderr.

No ``from __future__ import annotations`` here: the SDK reads the tools' annotations at runtime.
"""

import contextlib
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Any, Protocol, TypeVar

import anyio
import anyio.to_thread
from mcp.server import MCPServer
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase
from mcp.server.session import ServerSession
from mcp.server.subscriptions import InMemorySubscriptionBus
from mcp.shared.subscriptions import ResourcesListChanged, ToolsListChanged
from mcp.types import ToolAnnotations
from pydantic import ConfigDict, Field

from strongroom.server.app import App
from strongroom.server.errors import InvalidArgument
from strongroom.server.guard.access import Access, Caller
from strongroom.server.models import AnswerCheck, RuleDecision

if TYPE_CHECKING:  # the rules engine (CEL, YAML) loads with the rules file, after the handshake over stdio
    from strongroom.server.rules.engine import CompiledRuleSet
    from strongroom.server.rules.service import Rules

log = logging.getLogger("strongroom.rules")

T = TypeVar("T")

READ_ONLY = ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)


#: What a handler is given: the App, which the server's lifespan yields, is its lifespan context.
AppContext = Context[App, Any]


def app_of(ctx: AppContext) -> App:
    """The App serving this request."""
    return ctx.request_context.lifespan_context


class Guarded(Protocol):
    """The app's single call path: run ``fn(access)`` in a worker thread through the guard."""

    def __call__(
        self, app: App, action: str, arguments: dict[str, Any], fn: Callable[[Access], T], /
    ) -> Awaitable[T]: ...


class ListChangedNotifier:
    """Tells connected clients that the tool (or resource) list changed, in both protocol eras.

    Clients on the 2026-07-28 protocol hear it on their ``subscriptions/listen`` stream (the
    server's subscription bus); handshake-era clients get ``notifications/tools/list_changed``
    (``notifications/resources/list_changed``) on their session, and are told at ``initialize``
    that the lists can change. As server middleware it sees every ``initialize`` and remembers
    the session.
    """

    def __init__(self, bus: InMemorySubscriptionBus, max_sessions: int = 1000) -> None:
        self.bus = bus
        # The initialize request's session object: its standalone channel is the connection's.
        self._sessions: deque[ServerSession] = deque(maxlen=max_sessions)

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        result = await call_next(ctx)
        if ctx.method == "initialize":
            self._sessions.append(ctx.session)
            capabilities = result.get("capabilities", {}) if isinstance(result, dict) else {}
            for kind in ("tools", "resources"):
                if isinstance(capabilities.get(kind), dict):
                    capabilities[kind]["listChanged"] = True
        return result

    async def tools_changed(self) -> None:
        await self._notify(ToolsListChanged(), ServerSession.send_tool_list_changed)

    async def resources_changed(self) -> None:
        """Documents were added or removed: the resource list changed."""
        await self._notify(ResourcesListChanged(), ServerSession.send_resource_list_changed)

    async def _notify(
        self, event: ToolsListChanged | ResourcesListChanged, send: Callable[[ServerSession], Awaitable[None]]
    ) -> None:
        await self.bus.publish(event)
        for session in list(self._sessions):
            try:
                await send(session)
            except Exception as exc:  # a closed connection: forget it
                log.debug("could not notify a session of a list change: %s", exc)
                with contextlib.suppress(ValueError):
                    self._sessions.remove(session)


class RawArguments(ArgModelBase):
    """Hands a rule tool its arguments untouched (the SDK's lax validation would turn ``"yes"``
    into true): the rule set validates them strictly against its declared schema."""

    model_config = ConfigDict(extra="allow")

    def model_dump_one_level(self) -> dict[str, Any]:
        return {"arguments": dict(self.model_extra or {})}


class RuleTools:
    """Business-rule tools, check_answer and the answer prompt for one server.

    Pass ``bus`` to the MCPServer, :meth:`install` the tools, run :meth:`watching` in the
    server lifespan, and feed every tool result to the App's ``memory.observe``. The rules file
    compiles on the first :meth:`load` (or use of :attr:`rules`), which raises RulesError if the
    file is broken; until it has, every request but ``initialize`` and ``ping`` waits for it.

    The handlers read the App from their Context; this object keeps the App's rules, because
    the tool list is made from them and follows them as they reload.
    """

    def __init__(self, app: App) -> None:
        self._app = app
        self.settings = app.settings
        self.bus = InMemorySubscriptionBus()
        self.notifier = ListChangedNotifier(self.bus)
        self._server: MCPServer[Any] | None = None
        self._guarded: Guarded | None = None
        self._caller: Callable[[], Caller] = lambda: Caller("local", "stdio")
        self._registered: dict[str, tuple[Any, ...]] = {}
        self._watching = False
        self._reload_lock = anyio.Lock()
        self._loaded: anyio.Event | None = None  # made in the server's event loop, on first use

    @property
    def rules(self) -> "Rules":
        """The App's rules, compiled on first use (RulesError if the file is broken)."""
        return self._app.rules

    @property
    def compiled(self) -> bool:
        return "rules" in self._app.__dict__  # App.rules is a cached_property

    async def load(self) -> None:
        """Compile the rules file in a worker thread (RulesError if it is broken), register its
        tools, and let the requests waiting for them through."""
        if not self.compiled:
            await anyio.to_thread.run_sync(lambda: self.rules)
        self._sync_tools()
        self._loaded_event().set()

    def _loaded_event(self) -> anyio.Event:
        if self._loaded is None:
            self._loaded = anyio.Event()
            if self.compiled:
                self._loaded.set()
        return self._loaded

    async def _after_load(self, ctx: ServerRequestContext[App, Any], call_next: CallNext) -> HandlerResult:
        """Middleware: a request that needs the tool list (or the rules) waits for :meth:`load`."""
        if ctx.method not in ("initialize", "ping") and not ctx.method.startswith("notifications/"):
            await self._loaded_event().wait()
        return await call_next(ctx)

    # -- registration -------------------------------------------------------------------------

    def install(self, server: MCPServer[Any], guarded: Guarded, caller: Callable[[], Caller]) -> None:
        """Register the rule tools, check_answer and the answer_with_policy prompt."""
        self._server = server
        self._guarded = guarded
        self._caller = caller
        server.middleware.append(self._after_load)
        server.middleware.append(self.notifier)
        server.middleware.append(self._hide_unreadable)
        self._sync_tools()
        settings = self.settings.answers

        @server.tool(name="check_answer", title="Check a draft answer", annotations=READ_ONLY)
        async def check_answer(
            ctx: AppContext,
            draft: Annotated[
                str, Field(description="The answer you intend to send, as plain text or Markdown.")
            ],
            citations: Annotated[
                list[str],
                Field(
                    description="Ids the draft relies on: chunk ids from search/read_document and "
                    "decision_id values from rule tools. Inline [id] markers in the draft count too, and "
                    "[1]-style references to positions in this list.",
                    max_length=settings.max_citations,
                ),
            ] = [],  # noqa: B006 - the SDK copies defaults; never mutated
        ) -> AnswerCheck:
            """Check a draft before sending it: every sentence must be supported by a passage or rule
            decision it cites (numbers must match), citations must exist and have been retrieved
            in this session, and the organisation's answer policies (forbidden statements, required
            statements, no personal data) must hold. Returns `passed` and a `fix` list; revise the
            draft and call again until it passes."""
            app, who = app_of(ctx), caller()
            decisions = app.memory.decisions(who)
            return await guarded(
                app,
                "check_answer",
                {"draft": draft, "citations": citations},
                lambda access: app.checker.check(
                    draft,
                    citations,
                    policies=app.rules.book.policies,
                    shown=lambda ids: app.guard.shown(who, ids),
                    decisions=decisions,
                    visible=app.knowledge.visible_sources(access).__contains__,
                ),
            )

        @server.prompt(name="answer_with_policy", title="Answer by the organisation's policies and rules")
        def answer_with_policy(ctx: AppContext, question: str) -> str:
            """Walks a model through search → rule tool → draft → check_answer → revise."""
            app = app_of(ctx)
            hidden = self.hidden_tools(app, self._caller())  # tools this caller cannot see, unnamed
            rule_sets = [rs for name, rs in app.rules.book.rule_sets.items() if name not in hidden]
            return answer_prompt(question, rule_sets)

    def _sync_tools(self) -> None:
        """Make the server's rule tools match the current rule book."""
        server = self._server
        if server is None or not self.compiled:
            return
        book = self.rules.book
        wanted = {name: rs.tool_definition() for name, rs in book.rule_sets.items()}
        for name in list(self._registered):
            if wanted.get(name) != self._registered[name]:
                server.remove_tool(name)
                del self._registered[name]
        for name, rule_set in book.rule_sets.items():
            if name not in self._registered:
                server.add_tool(
                    self._tool_function(rule_set),
                    name=name,
                    title=rule_set.title,
                    description=rule_set.tool_description(),
                    annotations=READ_ONLY,
                    structured_output=True,
                )
                tool = server._tool_manager.get_tool(name)  # no public way to set a tool's schema
                assert tool is not None
                tool.parameters = rule_set.input_schema()
                tool.fn_metadata.arg_model = RawArguments
                self._registered[name] = wanted[name]

    def _tool_function(self, rule_set: "CompiledRuleSet") -> Callable[..., Awaitable[RuleDecision]]:
        name = rule_set.name

        async def decide(ctx: AppContext, arguments: dict[str, Any]) -> RuleDecision:
            guarded = self._guarded
            assert guarded is not None
            try:
                valid = rule_set.check_arguments(arguments)  # strictly, before any lookup
            except InvalidArgument as exc:
                raise ToolError(str(exc)) from None
            app = app_of(ctx)
            return await guarded(
                app,
                name,
                valid,
                lambda access: app.rules.decide(
                    name, valid, app.knowledge.visible_sources(access).__contains__
                ),
            )

        decide.__name__ = name
        decide.__doc__ = rule_set.tool_description()
        return decide

    @property
    def tool_names(self) -> list[str]:
        return list(self._registered)

    # -- access -------------------------------------------------------------------------------

    def hidden_tools(self, app: App, caller: Caller) -> set[str]:
        """Rule-set tools that read a record source ``caller`` may not see: to that caller they
        do not exist, so their parameters, reasons, errors and not-found answers say nothing."""
        visible = app.knowledge.visible_sources(app.guard.principal(caller).access)
        return {
            name
            for name, rule_set in self.rules.book.rule_sets.items()
            if any(fact.source not in visible for fact in rule_set.facts)
        }

    async def _hide_unreadable(
        self, ctx: ServerRequestContext[App, Any], call_next: CallNext
    ) -> HandlerResult:
        if ctx.method not in ("tools/list", "tools/call"):
            return await call_next(ctx)
        hidden = self.hidden_tools(ctx.lifespan_context, self._caller())
        if ctx.method == "tools/call":
            params = dict(ctx.params or {})
            name = params.get("name")
            if not isinstance(name, str) or name not in hidden:
                return await call_next(ctx)
            # The SDK's own answer for a tool that does not exist, to the letter.
            absent = f"{name}\x00hidden"
            result = await call_next(replace(ctx, params={**params, "name": absent}))
            answer: HandlerResult = json.loads(json.dumps(result).replace(json.dumps(absent)[1:-1], name))
            return answer
        result = await call_next(ctx)
        if hidden and isinstance(result, dict) and isinstance(result.get("tools"), list):
            result["tools"] = [t for t in result["tools"] if t.get("name") not in hidden]
        return result

    # -- reloading ----------------------------------------------------------------------------

    @asynccontextmanager
    async def watching(self) -> AsyncIterator[None]:
        """Poll the rules file (and the index) while the server runs, if reloading is on."""
        settings = self.settings.rules
        if not settings.reload or settings.file is None or self._watching:
            yield
            return
        self._watching = True
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(self._watch, settings.reload_interval)
                try:
                    yield
                finally:
                    tasks.cancel_scope.cancel()
        finally:
            self._watching = False

    async def _watch(self, interval: float) -> None:
        await self._loaded_event().wait()
        while True:
            await anyio.sleep(interval)
            try:
                await self.reload()
            except Exception:  # never let a reload bug take the server down
                log.exception("reloading the rules failed")

    async def reload(self) -> bool:
        """Reload now if the file or index changed; True when the tool list changed."""
        async with self._reload_lock:
            outcome = await anyio.to_thread.run_sync(self.rules.reload_if_changed)
            if outcome is None:
                return False
            if outcome.error is not None:
                log.error(
                    "rules file %s has %d problem(s); keeping the previous rules:\n  %s",
                    self.rules.path,
                    len(outcome.error.problems),
                    "\n  ".join(str(p) for p in outcome.error.problems),
                )
                return False
            book = outcome.book
            log.info("rules reloaded: %d rule sets, %d rules", len(book.rule_sets), book.rule_count)
            if not outcome.tools_changed:
                return False
            self._sync_tools()
            await self.notifier.tools_changed()
            return True


def answer_prompt(question: str, rule_sets: "list[CompiledRuleSet]") -> str:
    """The answer-with-policy loop as instructions for a model."""
    if rule_sets:
        tools = "\n".join(
            f"   - `{rs.name}`: {rs.description.split('. ')[0].rstrip('.')}." for rs in rule_sets
        )
        decide = (
            "2. If the question asks for a decision about a specific case (an order, a claim, a "
            "charge), call the matching rule tool and use its `decision`, reasons and citations as "
            "given; do not decide it yourself (read the passages it cites with `read_document` "
            f"before citing them):\n{tools}\n"
        )
    else:
        decide = "2. (No rule tools are configured: answer from the documents alone.)\n"
    return (
        f"Answer this question by the organisation's own policies and rules: {question}\n\n"
        "1. Call `search` to find the policy passages that apply (and `read_document` for more "
        "context). Note the chunk `id` of each passage you use.\n"
        f"{decide}"
        "3. Draft a short answer that says only what those passages and decisions support. Keep "
        "every figure (days, amounts, percentages) exactly as the source states it.\n"
        "4. Call `check_answer` with the draft and the chunk ids and decision ids you relied on.\n"
        "5. If it does not pass, revise the draft following its `fix` list (correct or remove "
        "unsupported sentences, add what a policy requires, remove personal data) and call "
        "`check_answer` again. Repeat until `passed` is true, then send that draft.\n"
        "6. If the documents and rules do not answer the question, say so rather than guessing."
    )
