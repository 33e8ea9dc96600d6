"""Authentication and access control over real HTTP: two principals, static tokens and JWTs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from strongroom.server.app import build_app
from strongroom.server.guard.auth import token_digest
from strongroom.server.settings import load_settings
from strongroom.server.store.audit import AuditLog
from strongroom.server.store.catalog import Catalog
from strongroom.server.store.exposure import ExposureLedger
from tests.integration.guard_fixtures import ALICE_TOKEN, BOB_TOKEN, write_deployment
from tests.integration.mcp_helpers import error_text, structured
from tests.support import clean_env, free_port, serving_http, strongroom_cmd

pytestmark = pytest.mark.model

ISSUER = "https://idp.example.test"


class Issuer:
    """A test identity provider: an RSA key, its JWKS file, and a token factory."""

    def __init__(self, directory: Path) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update({"kid": "test-key", "use": "sig", "alg": "RS256"})
        self.jwks_file = directory / "jwks.json"
        self.jwks_file.write_text(json.dumps({"keys": [jwk]}))

    def token(self, audience: str, **overrides: Any) -> str:
        claims = {
            "iss": ISSUER,
            "aud": audience,
            "sub": "carol",
            "exp": int(time.time()) + 600,
            "groups": ["finance"],
        }
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": "test-key"})

    def public_pem(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def hs256_signed_with(secret: bytes, claims: dict[str, Any]) -> str:
    """The classic algorithm-confusion token: HMAC keyed with the issuer's public key."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = (
        b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "test-key"}).encode())
        + "."
        + b64(json.dumps(claims).encode())
    )
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64(signature)


CARL_TOKEN = "sr_carl_test_token_5555555555"  # staff, with a small character budget
CARL_CHARS = 3_000


class Server:
    def __init__(self, port: int, issuer: Issuer, catalog: Path) -> None:
        self.port = port
        self.issuer = issuer
        self.url = f"http://127.0.0.1:{port}/mcp"
        self.catalog = catalog


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, embedder) -> Iterator[Server]:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("guarded")
    port = free_port()
    issuer = Issuer(root)
    deployment = write_deployment(
        root,
        f"""
[guard.jwt]
issuer = "{ISSUER}"
audience = "http://127.0.0.1:{port}/mcp"
jwks_file = "jwks.json"
labels_claim = "groups"

[[guard.principals]]
name = "carl"
labels = ["staff"]
token_sha256 = ["{token_digest(CARL_TOKEN)}"]
limits = {{ hard_chars = {CARL_CHARS}, calls_per_minute = 1000 }}
""",
    )
    kb = build_app(load_settings(deployment.config), embedder=embedder).knowledge
    assert kb.sync().ok
    kb.close()
    log = root / "serve.log"
    with serving_http(deployment.config, port, log):
        yield Server(port, issuer, load_settings(deployment.config).catalog_path)
    text = log.read_text()
    assert ALICE_TOKEN not in text and BOB_TOKEN not in text, "a bearer token reached the log"


@asynccontextmanager
async def session(server: Server, token: str) -> AsyncIterator[Client]:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=120)
    async with http, Client(streamable_http_client(server.url, http_client=http)) as client:
        yield client


def post(server: Server, headers: dict[str, str]) -> httpx.Response:
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        },
    }
    return httpx.post(
        server.url,
        json=body,
        timeout=30,
        headers={"Accept": "application/json, text/event-stream", **headers},
    )


def test_no_or_wrong_token_gets_401_with_resource_metadata(server: Server) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-real-token"}, {"Authorization": "Basic abc"}):
        response = post(server, headers)
        assert response.status_code == 401, headers
        challenge = response.headers["www-authenticate"]
        assert challenge.startswith("Bearer") and "resource_metadata=" in challenge
    metadata_url = challenge.split('resource_metadata="')[1].split('"')[0]
    metadata = httpx.get(metadata_url, timeout=10).json()
    assert metadata["resource"] == server.url and ISSUER in metadata["authorization_servers"][0]


def test_foreign_origin_is_refused_even_with_a_token(server: Server) -> None:
    response = post(server, {"Authorization": f"Bearer {ALICE_TOKEN}", "Origin": "http://evil.example"})
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("token", "mine", "theirs"),
    [
        (ALICE_TOKEN, "handbook/refund-policy.md", "finance/q3-forecast.md"),
        (BOB_TOKEN, "finance/q3-forecast.md", "handbook/refund-policy.md"),
    ],
)
def test_each_principal_sees_only_their_documents(server: Server, token: str, mine: str, theirs: str) -> None:
    async def run() -> None:
        async with session(server, token) as client:
            other = theirs.split("/")[0]
            sources = {s["name"] for s in structured(await client.call_tool("list_sources", {}))["sources"]}
            assert mine.split("/")[0] in sources and other not in sources
            for query in ("Q3 revenue forecast gross margin", "restocking fee for opened tents", "payroll"):
                hits = structured(await client.call_tool("search", {"query": query, "k": 10}))["results"]
                assert hits and all(h["source"] != other for h in hits), query
            assert not (await client.call_tool("read_document", {"document_id": mine})).is_error
            hidden = await client.call_tool("read_document", {"document_id": theirs})
            missing = await client.call_tool("read_document", {"document_id": "finance/no-such.md"})
            assert hidden.is_error and missing.is_error
            # Not visible and not existing read the same (but for the id itself).
            assert error_text(hidden).replace(theirs, "X") == error_text(missing).replace(
                "finance/no-such.md", "X"
            )
            refused = await client.call_tool("search", {"query": "policy", "sources": [other]})
            assert refused.is_error and f"unknown source {other!r}" in error_text(refused)
            readable = await client.read_resource(f"strongroom://documents/{mine}")
            assert readable.contents
            with pytest.raises(Exception, match="no document with id"):
                await client.read_resource(f"strongroom://documents/{theirs}")

    anyio.run(run)


def test_jwt_principal_gets_labels_from_its_claim(server: Server) -> None:
    async def run() -> None:
        async with session(server, server.issuer.token(server.url)) as client:
            hits = structured(await client.call_tool("search", {"query": "refund policy tents", "k": 5}))[
                "results"
            ]
            sources = {h["source"] for h in hits}
            assert "finance" in sources and "handbook" not in sources

    anyio.run(run)


def test_bad_jwts_are_refused(server: Server) -> None:
    issuer = server.issuer
    unsigned = jwt.encode(
        {"iss": ISSUER, "aud": server.url, "sub": "carol", "exp": int(time.time()) + 600},
        key=None,
        algorithm="none",
    )
    confused = hs256_signed_with(
        issuer.public_pem(), {"iss": ISSUER, "aud": server.url, "sub": "carol", "exp": int(time.time()) + 600}
    )
    bad = {
        "wrong audience": issuer.token("http://other.example/mcp"),
        "wrong issuer": issuer.token(server.url, iss="https://evil.example"),
        "expired": issuer.token(server.url, exp=int(time.time()) - 3600),
        "no expiry": issuer.token(server.url, exp=None),
        "alg none": unsigned,
        "HS256 with the public key": confused,
        "foreign key": jwt.encode(
            {"iss": ISSUER, "aud": server.url, "sub": "x", "exp": int(time.time()) + 60},
            rsa.generate_private_key(public_exponent=65537, key_size=2048),
            algorithm="RS256",
            headers={"kid": "test-key"},
        ),
    }
    for reason, token in bad.items():
        assert post(server, {"Authorization": f"Bearer {token}"}).status_code == 401, reason
    assert post(server, {"Authorization": f"Bearer {issuer.token(server.url)}"}).status_code == 200


def test_refuses_to_serve_beyond_loopback_without_authentication(tmp_path: Path) -> None:
    (tmp_path / "strongroom.toml").write_text("[store]\npath = 'data'\n")
    out = subprocess.run(
        strongroom_cmd("serve", "--transport", "http", "--host", "0.0.0.0", "--port", str(free_port())),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
    )
    assert out.returncode != 0 and "without authentication" in out.stderr
    assert "Traceback" not in out.stderr


def _sources_seen(client_hits: list[dict[str, Any]]) -> set[str]:
    return {h["source"] for h in client_hits}


def test_a_jwt_never_borrows_a_declared_principal_or_a_wildcard(server: Server) -> None:
    """A subject named like a declared principal is not that principal; "*" in a claim is ignored."""

    async def sources(token: str) -> set[str]:
        async with session(server, token) as client:
            listed = structured(await client.call_tool("list_sources", {}))["sources"]
            hits = structured(await client.call_tool("search", {"query": "refund policy tents", "k": 10}))
            return {s["name"] for s in listed} | _sources_seen(hits["results"])

    async def run() -> None:
        assert await sources(server.issuer.token(server.url, sub="alice")) == {"finance"}
        assert await sources(server.issuer.token(server.url, sub="alice", groups=["*"])) == set()
        assert await sources(server.issuer.token(server.url, sub="dave", groups=None)) == set()

    anyio.run(run)


def test_rule_tools_do_not_exist_for_a_caller_who_may_not_see_their_records(server: Server) -> None:
    async def run() -> None:
        async with session(server, BOB_TOKEN) as client:  # finance only: orders are staff records
            names = {t.name for t in (await client.list_tools()).tools}
            assert "refund_eligibility" not in names and "check_answer" in names
            hidden = await client.call_tool("refund_eligibility", {"order_id": "4471"})
            missing = await client.call_tool("no_such_rules", {"order_id": "4471"})
            assert hidden.is_error and error_text(hidden) == "Unknown tool: refund_eligibility"
            assert error_text(missing) == "Unknown tool: no_such_rules"
            prompt = await client.get_prompt("answer_with_policy", {"question": "may I return it?"})
            text = " ".join(getattr(m.content, "text", "") for m in prompt.messages)
            assert "refund_eligibility" not in text and "No rule tools are configured" in text
        async with session(server, ALICE_TOKEN) as client:
            assert "refund_eligibility" in {t.name for t in (await client.list_tools()).tools}
            prompt = await client.get_prompt("answer_with_policy", {"question": "may I return it?"})
            assert "refund_eligibility" in " ".join(getattr(m.content, "text", "") for m in prompt.messages)
            decision = structured(await client.call_tool("refund_eligibility", {"order_id": "4471"}))
            assert decision["facts"]["order"]["product"]
            # The record the decision read counts against alice's budget.
            exposure = ExposureLedger(server.catalog).exposure("alice", time.time() - 3600, 5)
            assert exposure.per_source.get("orders", 0) >= 1

    anyio.run(run)
    audit = AuditLog(server.catalog)
    bob = audit.query(principal="bob", limit=5)
    assert [(r.action, r.outcome) for r in bob[:2]] == [
        ("no_such_rules", "rejected"),
        ("refund_eligibility", "rejected"),
    ]
    (alice,) = [r for r in audit.query(principal="alice", limit=5) if r.action == "refund_eligibility"][:1]
    assert "orders/4471" in alice.document_ids and alice.outcome == "ok"


def test_check_answer_never_reads_out_a_passage_the_caller_was_not_shown(server: Server) -> None:
    async def run() -> None:
        erin = server.issuer.token(server.url, sub="erin", groups=["staff"])  # a principal new to the server
        async with session(server, erin) as client:
            hits = structured(await client.call_tool("search", {"query": "return window for tents", "k": 1}))
            shown = hits["results"][0]
            prefix, index = shown["id"].rsplit("-", 1)
            guessed = [f"{prefix}-{i}" for i in range(12) if i != int(index)]
            chunks = Catalog(server.catalog).chunks(guessed)
            assert chunks, "the guessed ids exist"
            draft = "Tents can be returned within 45 days; opened tents carry a 50% restocking fee."
            result = structured(
                await client.call_tool("check_answer", {"draft": draft, "citations": list(chunks)})
            )
            assert sorted(result["not_retrieved"]) == sorted(chunks) and not result["passed"]
            told = json.dumps(result, ensure_ascii=False)
            for chunk in chunks.values():  # not one run of 30 characters of what was never shown
                runs = {chunk.text[i : i + 30] for i in range(0, max(1, len(chunk.text) - 30), 5)}
                assert not [r for r in runs if r in told]

    anyio.run(run)


def test_check_answer_judges_no_passage_the_caller_saw_only_in_part(server: Server) -> None:
    """A 40-character window of the refund policy: no verdict on the passage it cuts into, so a
    true and a false figure get the same answer and nothing of the unseen rest is learnt."""

    async def run() -> None:
        frank = server.issuer.token(server.url, sub="frank", groups=["staff"])
        async with session(server, frank) as client:
            window = structured(
                await client.call_tool(
                    "read_document", {"document_id": "handbook/refund-policy.md", "max_chars": 40}
                )
            )
            cut = window["chunk_ids"][0]
            answers = []
            for days in (30, 45):
                draft = f"Unused items can be returned within {days} days of delivery."
                result = structured(
                    await client.call_tool("check_answer", {"draft": draft, "citations": [cut]})
                )
                assert result["not_retrieved"] == [cut] and not result["passed"]
                assert [f["status"] for f in result["sentences"]] != ["supported"]
                result["sentences"] = [{**f, "text": ""} for f in result["sentences"]]  # the draft itself
                answers.append(json.dumps(result).replace(f" {days} ", " N "))
            assert answers[0] == answers[1]

    anyio.run(run)


def test_the_character_budget_counts_what_is_returned(server: Server) -> None:
    """Tiny reads first, full reads later: what is returned counts, not each passage's first sighting."""

    async def run() -> None:
        returned = 0
        refusals: list[str] = []
        async with session(server, CARL_TOKEN) as client:

            async def call(tool: str, arguments: dict[str, Any]) -> dict[str, Any] | None:
                nonlocal returned
                result = await client.call_tool(tool, arguments)
                if result.is_error:
                    refusals.append(error_text(result))
                    return None
                body = structured(result)
                returned += sum(len(h["text"]) for h in body.get("results", [])) + len(body.get("text", ""))
                return body

            documents: list[str] = []
            for query in ("refund policy", "warranty claims", "shipping"):
                found = await call("search", {"query": query, "k": 1, "sources": ["handbook"]})
                documents += [h["document_id"] for h in (found or {}).get("results", [])]
            for document_id in dict.fromkeys(documents):
                for offset in range(0, 6000, 300):
                    await call(
                        "read_document", {"document_id": document_id, "offset": offset, "max_chars": 5}
                    )
            for document_id in dict.fromkeys(documents):
                await call("read_document", {"document_id": document_id})
        assert refusals and all("characters" in r or "past the end" in r for r in refusals), refusals
        assert any("characters allowed in 24 h" in r for r in refusals), refusals
        assert returned <= CARL_CHARS

    anyio.run(run)


def test_calls_the_guard_never_saw_are_audited(server: Server) -> None:
    async def run() -> None:
        async with session(server, ALICE_TOKEN) as client:
            assert (await client.call_tool("search", {"query": "tents", "k": 999})).is_error
            assert (await client.call_tool("read_document", {})).is_error

    anyio.run(run)
    recent = AuditLog(server.catalog).query(principal="alice", limit=2)
    assert [(r.action, r.outcome) for r in recent] == [("read_document", "rejected"), ("search", "rejected")]
    assert AuditLog(server.catalog).verify().ok
