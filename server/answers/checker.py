"""check_answer: is every sentence of a draft supported by what it cites, and is it allowed?

Each sentence is compared with the sentences of each cited passage (and the statements of
each cited rule decision) by embedding similarity, and with the passage as a whole by
content-word overlap. Numbers must match exactly: a sentence that says "45 days" is not
supported by a passage that says "30 days", however similar they read. Then the answer
policies of the rules file run over the whole draft.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from strongroom.server.answers.claims import Claim, found, negated, terms
from strongroom.server.answers.statements import Cited, Statement, Structure, conflicts, structure_of
from strongroom.server.answers.structure import clauses as clauses_of
from strongroom.server.answers.text import Span, content_words, numbers, split_sentences
from strongroom.server.errors import InvalidArgument
from strongroom.server.models import AnswerCheck, PolicyViolation, RuleDecision, SentenceFinding, Served
from strongroom.server.settings import AnswersSettings
from strongroom.server.store.catalog import DocumentHead
from strongroom.server.store.records import ChunkRecord

if TYPE_CHECKING:  # numpy loads with the first check, not on the MCP handshake path
    import numpy as np

Visible = Callable[[str], bool]  # may the caller see this source?
# Characters of each of these passages the caller was shown in the guard's window.
ShownTo = Callable[[Sequence[str]], Mapping[str, int]]
_MARKER = re.compile(r"\s*[\[【]([^\[\]【】\n]{3,400})[\]】]")
_REFERENCE = re.compile(r"\s*\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")  # [1], [2, 3]: positions in `citations`
_CACHE_SIZE = 4096
_NO_STRUCTURE = Structure()


class Embeds(Protocol):
    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


class Policies(Protocol):
    """The answer policies a draft must keep (the rules file's, compiled by the rules package)."""

    def check(self, text: str, sentence_of: list[tuple[int, int]] | None = None) -> list[PolicyViolation]: ...


class ChunkIndex(Protocol):
    """What the checker reads of the catalog: cited passages and their documents' heads (never
    a whole document's text)."""

    def chunks(self, ids: Sequence[str]) -> dict[str, ChunkRecord]: ...

    def document_heads(self, ids: Sequence[str]) -> Mapping[str, DocumentHead]: ...


@dataclass(frozen=True)
class Evidence:
    """A cited passage or rule decision, cut into statements."""

    id: str
    label: str
    units: tuple[str, ...]
    contexts: tuple[str, ...]  # what is embedded: the unit with its heading
    words: frozenset[str]
    unit_numbers: tuple[frozenset[str], ...]
    vocabulary: frozenset[str] = frozenset()  # the roots of every content word it states
    unit_terms: tuple[frozenset[str], ...] = ()  # the roots of each unit (with its heading)
    unit_negated: tuple[bool, ...] = ()
    structure: Structure = _NO_STRUCTURE  # statements and figures (passages only)

    @property
    def cited(self) -> Cited:
        return Cited(self.structure, self.unit_terms)

    def numbers_near(self, order: Sequence[int], radius: int = 1, top: int = 3) -> set[str]:
        near: set[str] = set()
        for i in order[:top]:
            for j in range(max(0, i - radius), min(len(self.units), i + radius + 1)):
                near |= self.unit_numbers[j]
        return near

    @property
    def all_numbers(self) -> set[str]:
        return set().union(*self.unit_numbers) if self.unit_numbers else set()


def passage_evidence(chunk: ChunkRecord, title: str) -> Evidence:
    heading = chunk.headings[-1] if chunk.headings else title
    units = [s.text for s in split_sentences(chunk.text)] or [chunk.text]
    contexts = [u if u.lstrip("#").strip() == heading else f"{heading}: {u}" for u in units]
    words = frozenset(content_words(" ".join([title, *chunk.headings, chunk.text])))
    return Evidence(
        id=chunk.id,
        label=f"{title} \u203a {heading}" if heading != title else title,
        units=tuple(units),
        contexts=tuple(contexts),
        words=words,
        unit_numbers=tuple(frozenset(numbers(u)) for u in units),
        structure=structure_of(units, negated(heading)),
        **_claims(" ".join([title, *chunk.headings, chunk.text]), contexts),
    )


def _claims(whole: str, contexts: Sequence[str]) -> dict[str, Any]:
    """What a passage or decision states, for judging claims against it."""
    return {
        "vocabulary": frozenset(terms(whole)),
        "unit_terms": tuple(frozenset(terms(c)) for c in contexts),
        "unit_negated": tuple(negated(c) for c in contexts),
    }


def decision_evidence(decision: RuleDecision) -> Evidence:
    units = [u for u in decision.evidence() if u.strip()]
    case = ", ".join(
        f"{name.replace('_', ' ')} {value}"
        for name, value in decision.facts.items()
        if name not in ("today", "now")
        and isinstance(value, str | int | float)
        and not isinstance(value, bool)
    )
    topic = decision.rule_set.replace("_", " ") + (f" for {case}" if case else "")
    contexts = [f"{topic}: {u}" for u in units]
    return Evidence(
        id=decision.decision_id,
        label=f"rule decision {decision.rule_set}",
        units=tuple(units),
        contexts=tuple(contexts),
        words=frozenset(content_words(" ".join([decision.rule_set.replace("_", " "), *units]))),
        unit_numbers=tuple(frozenset(numbers(u)) for u in units),
        **_claims(" ".join([topic, *units]), contexts),
    )


class AnswerChecker:
    """Checks drafts against their citations; keeps a small cache of passage embeddings."""

    def __init__(self, settings: AnswersSettings, embedder: Embeds, index: ChunkIndex) -> None:
        self.settings = settings
        self.embedder = embedder
        self.index = index
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def check(
        self,
        draft: str,
        citations: Sequence[str],
        *,
        policies: Policies,
        shown: ShownTo | None = None,
        decisions: Mapping[str, RuleDecision] | None = None,
        visible: Visible | None = None,
    ) -> AnswerCheck:
        """Check ``draft``.

        With ``shown``, a cited passage counts only if the caller was shown all of it in the
        guard's window (the check never reads or judges anything else). None (no guard: the
        CLI, benchmarks) trusts all.
        """
        s = self.settings
        if not draft.strip():
            raise InvalidArgument("draft must not be empty")
        if len(draft) > s.max_draft_chars:
            raise InvalidArgument(f"draft is too long ({len(draft)} characters; at most {s.max_draft_chars})")
        sentences = split_sentences(draft)
        given = [c.strip() for c in citations if c.strip()]
        inline = [_inline_ids(draft, span, given) for span in sentences]
        cited = list(dict.fromkeys(given + [i for ids in inline for i in ids]))
        if len(cited) > s.max_citations:
            raise InvalidArgument(f"too many citations ({len(cited)}; at most {s.max_citations})")

        evidence, unknown, not_retrieved, read = self._resolve(cited, decisions or {}, visible, shown)
        if not s.require_retrieved:
            not_retrieved = []

        findings = self._support(sentences, inline, evidence)
        violations = policies.check(draft, [(sp.start, sp.end) for sp in sentences])
        unsupported = [f for f in findings if f.status == "unsupported"]
        passed = not (unsupported or unknown or not_retrieved or violations)
        check = AnswerCheck(
            passed=passed,
            summary=_summary(passed, findings, unknown, not_retrieved, violations),
            sentences=findings,
            unknown_citations=unknown,
            not_retrieved=not_retrieved,
            violations=violations,
            fix=_fixes(findings, unknown, not_retrieved, violations, bool(cited)),
        )
        # Only passages the caller was shown whole are read, so reading costs no new characters.
        check._read = [Served(c.id, c.document_id, source, 0, len(c.text)) for c, source in read]
        return check

    # -- citations ----------------------------------------------------------------------------

    def _resolve(
        self,
        cited: Sequence[str],
        decisions: Mapping[str, RuleDecision],
        visible: Visible | None,
        shown_to: ShownTo | None,
    ) -> tuple[dict[str, Evidence], list[str], list[str], list[tuple[ChunkRecord, str]]]:
        """Evidence by id; unknown ids; passages not shown to the caller; passages read."""
        chunk_ids = [c for c in cited if c not in decisions]
        chunks = self.index.chunks(chunk_ids) if chunk_ids else {}
        shown = shown_to(list(chunks)) if shown_to is not None and chunks else None
        documents = list(dict.fromkeys(c.document_id for c in chunks.values()))
        heads = self.index.document_heads(documents) if documents else {}
        evidence: dict[str, Evidence] = {}
        unknown: list[str] = []
        not_shown: list[str] = []
        read: list[tuple[ChunkRecord, str]] = []
        for cid in cited:
            if cid in decisions:
                evidence[cid] = decision_evidence(decisions[cid])
                continue
            chunk = chunks.get(cid)
            if chunk is None:
                unknown.append(cid)
                continue
            doc = heads.get(chunk.document_id)
            if doc is None or (visible is not None and not visible(doc.source)):
                unknown.append(cid)  # the same answer as for an id that does not exist
                continue
            if shown is not None and shown.get(cid, 0) < len(chunk.text):
                # Never read out, and never judged: a verdict on a passage shown only in part
                # would tell what the rest of it says. The check must not serve what search would not.
                not_shown.append(cid)
                continue
            evidence[cid] = passage_evidence(chunk, doc.title)
            read.append((chunk, doc.source))
        return evidence, unknown, not_shown, read

    # -- support ------------------------------------------------------------------------------

    def _support(
        self, sentences: Sequence[Span], inline: Sequence[list[str]], evidence: Mapping[str, Evidence]
    ) -> list[SentenceFinding]:
        s = self.settings
        texts = [_strip_markers(span.text) for span in sentences]
        words = [set(content_words(t)) for t in texts]
        nums = [numbers(t) for t in texts]
        checkable = [len(w) >= s.min_content_words or bool(n) for w, n in zip(words, nums, strict=True)]
        # A sentence that joins claims ("30 days; a 15% fee") has each clause's numbers checked
        # against the cited statement closest to that clause.
        clauses = [
            _numeric_clauses(t) if c and n else [] for t, c, n in zip(texts, checkable, nums, strict=True)
        ]
        to_embed = [t for t, c in zip(texts, checkable, strict=True) if c] + [c for cs in clauses for c in cs]
        vectors = iter(self._embed(to_embed) if to_embed and evidence else [])
        unit_vectors = {eid: self._units(ev) for eid, ev in evidence.items()} if to_embed else {}
        sentence_vectors = {i: next(vectors) for i, c in enumerate(checkable) if c and evidence}
        clause_vectors = {i: [next(vectors) for _ in cs] for i, cs in enumerate(clauses) if cs and evidence}

        judge = _Judge(s, evidence, unit_vectors)
        findings: list[SentenceFinding] = []
        for i, text in enumerate(texts):
            if not checkable[i]:
                reason = "no factual content to check"
                findings.append(SentenceFinding(index=i, text=text, status="not_checked", reason=reason))
            elif not evidence:
                reason = "no valid citation to check it against"
                findings.append(SentenceFinding(index=i, text=text, status="unsupported", reason=reason))
            else:
                sentence = _Sentence(
                    i,
                    text,
                    words[i],
                    nums[i],
                    clauses[i],
                    inline[i],
                    sentence_vectors[i],
                    clause_vectors.get(i, []),
                )
                findings.append(judge.finding(sentence))
        return findings

    def _units(self, ev: Evidence) -> np.ndarray:
        with self._lock:
            cached = self._cache.get(ev.id)
            if cached is not None:
                self._cache.move_to_end(ev.id)
                return cached
        vectors = self._embed(ev.contexts)
        with self._lock:
            self._cache[ev.id] = vectors
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return vectors

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        return np.asarray(self.embedder.embed(list(texts)), dtype=np.float32)

    def warm(self, evidence: Iterable[Evidence]) -> None:
        """Embed passages ahead of time (benchmarks, tests)."""
        for ev in evidence:
            self._units(ev)


@dataclass(frozen=True)
class _Sentence:
    """A checkable sentence of a draft: what it states, the ids cited inline, its embeddings."""

    index: int
    text: str
    words: set[str]
    numbers: set[str]
    clauses: list[str]
    cited: list[str]
    vector: Any
    clause_vectors: list[Any]


class _Problems(NamedTuple):
    """What the claim check found wrong with a sentence, whichever citation it is measured against."""

    numbers: list[str]
    terms: list[str]
    conflicts: list[str]

    def __bool__(self) -> bool:
        return bool(self.numbers or self.terms or self.conflicts)


class _Measured(NamedTuple):
    """A sentence against one citation: the citation's units by similarity, the best similarity,
    and the share of the sentence's words found among all the citations."""

    cid: str
    ev: Evidence
    order: list[int]
    similarity: float
    overlap: float


@dataclass(frozen=True)
class _Judge:
    """Judges a draft's checkable sentences against its evidence (embedded once per check)."""

    s: AnswersSettings
    evidence: Mapping[str, Evidence]
    unit_vectors: Mapping[str, np.ndarray]

    def finding(self, sentence: _Sentence) -> SentenceFinding:
        """The best finding over the sentence's citations (all of them when it cites none inline)."""
        candidates = [c for c in sentence.cited if c in self.evidence] or list(self.evidence)
        measured = self._measure(sentence, candidates)
        # The claim: every term stated somewhere in what it cites, every number stated with
        # its subject, and no cited statement about the same thing saying the opposite.
        claim = Claim.of(sentence.text)
        exempt = self._case_figures(measured)
        missing_numbers = self._numbers_apart(sentence, candidates) | self._unbound(
            sentence, claim, candidates, exempt
        )
        vocabulary = set().union(*(self.evidence[c].vocabulary for c in candidates))
        passages = [self.evidence[c].cited for c in candidates if not c.startswith("decision:")]
        problems = _Problems(
            sorted(missing_numbers, key=_num_key),
            claim.missing_terms(vocabulary),
            conflicts(sentence.text, claim, passages, self.s.statement_coverage, exempt),
        )
        return self._best(sentence, claim, measured, problems)

    def _case_figures(self, measured: Sequence[_Measured]) -> set[str]:
        """The figures of the cited rule decisions on the sentence's subject (the case's own)."""
        close = [
            m for m in measured if m.cid.startswith("decision:") and m.similarity >= self.s.min_similarity
        ]
        return set().union(*(m.ev.all_numbers for m in close))

    def _measure(self, sentence: _Sentence, candidates: Sequence[str]) -> list[_Measured]:
        import numpy as np

        # Words may come from any of the sentence's citations (a sentence can join a decision
        # and a policy); the closest citation by meaning is the one that supports it.
        pooled = frozenset().union(*(self.evidence[c].words for c in candidates))
        overlap = len(sentence.words & pooled) / len(sentence.words) if sentence.words else 1.0
        measured = []
        for cid in candidates:
            sims = self.unit_vectors[cid] @ sentence.vector
            order = [int(j) for j in np.argsort(-sims)]
            measured.append(_Measured(cid, self.evidence[cid], order, float(sims[order[0]]), overlap))
        return measured

    def _numbers_apart(self, sentence: _Sentence, candidates: Sequence[str]) -> set[str]:
        """Numbers not in the cited statement closest to the clause that states them (not merely
        somewhere among the citations). A cited rule decision on the same subject may supply the
        case's own figures (its order number, amounts, dates), which no policy passage states."""
        import numpy as np

        parts = list(zip(sentence.clauses, sentence.clause_vectors, strict=True)) if sentence.clauses else []
        if not parts and sentence.numbers:
            parts = [(sentence.text, sentence.vector)]
        missing: set[str] = set()
        for clause, vector in parts:
            scored = [(float((self.unit_vectors[c] @ vector).max()), c) for c in candidates]
            closest = max(scored)[1]
            order = [int(j) for j in np.argsort(-(self.unit_vectors[closest] @ vector))]
            gap = numbers(clause) - _near(self.evidence[closest], order)
            for sim, c in scored:
                if gap and c.startswith("decision:") and sim >= self.s.min_similarity:
                    gap -= self.evidence[c].all_numbers
            missing |= gap
        return missing

    def _unbound(
        self, sentence: _Sentence, claim: Claim, candidates: Sequence[str], exempt: set[str]
    ) -> set[str]:
        """Numbers not stated about their subject: the whole sentence's, or its own clause's."""
        s = self.s
        statements = [
            st for c in candidates if not c.startswith("decision:") for st in _statements(self.evidence[c])
        ]
        unbound = set(claim.unbound_numbers(statements, s.statement_coverage, exempt))
        for part in sentence.clauses:
            unbound -= set(Claim.of(part).numbers) - set(
                Claim.of(part).unbound_numbers(statements, s.statement_coverage, exempt)
            )
        return unbound

    def _best(
        self, sentence: _Sentence, claim: Claim, measured: Sequence[_Measured], problems: _Problems
    ) -> SentenceFinding:
        s = self.s
        missing, missing_terms = problems.numbers, problems.terms
        best: tuple[float, SentenceFinding] | None = None
        for m in measured:
            opposite = _contradiction(claim, m.ev, m.order, s.statement_coverage)
            supported = m.similarity >= s.min_similarity and not (problems or opposite is not None)
            finding = SentenceFinding(
                index=sentence.index,
                text=sentence.text,
                status="supported" if supported else "unsupported",
                citation=m.cid,
                similarity=round(m.similarity, 3),
                overlap=round(m.overlap, 3),
                missing_numbers=missing,
                missing_terms=missing_terms,
                contradicts=opposite is not None,
                conflicts=problems.conflicts,
                reason=_reason(supported, m.ev, m.similarity, problems, opposite, m.order, s),
            )
            score = (1.0 if supported else 0.0) + m.similarity
            if best is None or score > best[0]:
                best = (score, finding)
        assert best is not None
        return best[1]


_CLAUSE = re.compile(r";|:\s|,\s+(?:and|but|so|while|because|which|whereas)\s+|\s+(?:and|but|so)\s+")


def _numeric_clauses(text: str) -> list[str]:
    """The clauses of a sentence that state numbers, when it has more than one clause."""
    parts = [p.strip() for p in _CLAUSE.split(text) if p.strip()]
    if len(parts) < 2:
        return []
    return [p for p in parts if numbers(p)]


def _statements(ev: Evidence) -> list[tuple[set[str], set[str]]]:
    """(terms, numbers) of each unit; a sentence of prose takes its neighbours' subject words too
    ("Card payments are refunded to the original card. The refund ... within 5 business days"),
    a table row does not (the next row is about another product)."""
    prose = [not u.lstrip().startswith("|") for u in ev.units]
    out = []
    for j, (words, nums) in enumerate(zip(ev.unit_terms, ev.unit_numbers, strict=True)):
        subject = set(words)
        for k in (j - 1, j + 1):
            if prose[j] and 0 <= k < len(ev.units) and prose[k]:
                subject |= ev.unit_terms[k]
        out.append((subject, set(nums)))
    return out


def _contradiction(claim: Claim, ev: Evidence, order: Sequence[int], least: float) -> int | None:
    """The cited statement about the same thing that says the opposite, if the closest one does."""
    if not ev.unit_terms:
        return None
    top = list(order[:3])
    j = max(top, key=lambda k: (claim.coverage(set(ev.unit_terms[k])), -top.index(k)))
    if claim.coverage(set(ev.unit_terms[j])) >= least and _polarity(claim, ev, j) != claim.negated:
        return j
    return None


def _polarity(claim: Claim, ev: Evidence, j: int) -> bool:
    """Is unit ``j`` negated where the claim touches it? Each clause of the claim is compared
    with the clauses of the unit it touches: the one sharing most of its terms, and any it
    states whole ("... and is not transferable"). A negation elsewhere in the unit ("... are
    collected at checkout, so nothing is due") denies nothing the claim says. A table row or a
    one-clause unit counts as a whole. The opposite of the claim's polarity if a pair differs."""
    clauses = [st for st in ev.structure.statements if st.unit == j and not st.whole]
    if not clauses:
        return ev.unit_negated[j]
    for part in clauses_of(claim.text):
        said = set(terms(part))
        if said and any(st.negated != negated(part) for st in _touched(said, clauses)):
            return not claim.negated
    return claim.negated


def _touched(said: set[str], clauses: Sequence[Statement]) -> list[Statement]:
    """The clauses a claim's clause is about: the one sharing most of its terms (if any), and
    every clause all of whose terms it states."""
    shared = [(sum(found(t, set(st.terms)) for t in said), st) for st in clauses]
    count, best = max(shared, key=lambda cs: cs[0])
    whole = [st for st in clauses if st.terms and all(found(t, said) for t in st.terms)]
    return ([best] if count else []) + whole


def _near(ev: Evidence, order: Sequence[int]) -> set[str]:
    """Numbers a statement may take from this evidence: around its closest units (a decision: all)."""
    return ev.all_numbers if ev.id.startswith("decision:") else ev.numbers_near(order)


def _inline_ids(draft: str, span: Span, citations: Sequence[str]) -> list[str]:
    """The ids a sentence cites inline: ``[chunk id]`` markers, and ``[1]``-style references to
    the n-th of ``citations`` (a reference to none is reported as an unknown citation)."""
    ids: list[str] = []
    end = min(len(draft), span.end + 200)
    for m in _MARKER.finditer(draft, span.start, end):
        if m.start() > span.end:
            break
        for part in re.split(r"[,;]\s*|\s+", m.group(1)):
            part = part.strip().strip("`'\"")
            if "#" in part or part.startswith("decision:"):
                ids.append(part)
    for m in _REFERENCE.finditer(draft, span.start, end):
        if m.start() > span.end:
            break
        for n in map(int, re.findall(r"\d+", m.group(1))):
            ids.append(citations[n - 1] if 1 <= n <= len(citations) else f"[{n}]")
    return ids


def _strip_markers(text: str) -> str:
    text = _REFERENCE.sub("", text)
    return _MARKER.sub(
        lambda m: "" if ("#" in m.group(1) or "decision:" in m.group(1)) else m.group(), text
    ).strip()


def _num_key(n: str) -> tuple[float, str]:
    try:
        return (float(n), n)
    except ValueError:
        return (0.0, n)


def _reason(
    supported: bool,
    ev: Evidence,
    similarity: float,
    problems: _Problems,
    opposite: int | None,
    order: Sequence[int],
    s: AnswersSettings,
) -> str:
    shown = opposite if opposite is not None else order[0]
    closest = ev.units[shown]
    closest = "“" + (closest if len(closest) <= 160 else closest[:157] + "...") + "”"
    if supported:
        return f"supported by {ev.label}: {closest}"
    if opposite is not None:
        return f"{ev.label} says the opposite: {closest}"
    if problems.numbers:
        stated = ", ".join(problems.numbers)
        there = sorted(ev.numbers_near(order), key=_num_key)
        says = f" (it says {', '.join(there)})" if there else ""
        return f"states {stated}, which {ev.label} does not state about this{says}: {closest}"
    if problems.conflicts:
        return f"{'; '.join(problems.conflicts)}; the closest statement is: {closest}"
    if problems.terms:
        said = ", ".join(f"“{w}”" for w in problems.terms)
        return f"nothing it cites says {said}; the closest statement is: {closest}"
    return f"no cited passage says this (similarity {similarity:.2f}); the closest is {ev.label}: {closest}"


def _summary(
    passed: bool,
    findings: Sequence[SentenceFinding],
    unknown: Sequence[str],
    not_retrieved: Sequence[str],
    violations: Sequence[PolicyViolation],
) -> str:
    checked = [f for f in findings if f.status != "not_checked"]
    supported = sum(f.status == "supported" for f in checked)
    if passed:
        return (
            f"passed: {supported} of {len(checked)} checked sentences are supported and no policy is broken."
        )
    parts = []
    if supported < len(checked):
        parts.append(f"{len(checked) - supported} of {len(checked)} sentences unsupported")
    if unknown:
        parts.append(f"{len(unknown)} unknown citation{'s' if len(unknown) > 1 else ''}")
    if not_retrieved:
        parts.append(f"{len(not_retrieved)} citation{'s' if len(not_retrieved) > 1 else ''} not retrieved")
    if violations:
        parts.append(f"{len(violations)} policy violation{'s' if len(violations) > 1 else ''}")
    return "failed: " + ", ".join(parts) + "."


def _fixes(
    findings: Sequence[SentenceFinding],
    unknown: Sequence[str],
    not_retrieved: Sequence[str],
    violations: Sequence[PolicyViolation],
    any_cited: bool,
) -> list[str]:
    fixes: list[str] = []
    unsupported = [f for f in findings if f.status == "unsupported"]
    if not any_cited and unsupported:
        fixes.append(
            "Cite the passages you used: pass their chunk ids (from search) and decision ids (from rule tools)."
        )
    fixes += [fix for fix in map(_sentence_fix, unsupported) if fix is not None]
    for cid in unknown:
        fixes.append(
            f"Citation {cid!r} does not exist: use chunk ids from search results or decision ids from rule tools."
        )
    for cid in not_retrieved:
        fixes.append(
            f"Citation {cid!r} was not shown to you whole recently: search or read all of it first, or drop it."
        )
    for v in violations:
        found = f" (found: {v.excerpt})" if v.excerpt else ""
        where = f"sentence {v.sentence + 1}: " if v.sentence is not None else ""
        fixes.append(f"{where}{v.message}{found}")
    return fixes


def _sentence_fix(f: SentenceFinding) -> str | None:
    """What to do about an unsupported sentence, by what is wrong with it first."""
    quote = f.text if len(f.text) <= 90 else f.text[:87] + "..."
    if f.missing_numbers:
        return (
            f"Sentence {f.index + 1} (“{quote}”): {', '.join(f.missing_numbers)} "
            f"{'is' if len(f.missing_numbers) == 1 else 'are'} not in the cited text; "
            "correct the figure to what the source says, or cite the passage that states it."
        )
    if f.contradicts:
        return (
            f"Sentence {f.index + 1} (“{quote}”): what you cite says the opposite; correct it to what the "
            "source says, or remove it."
        )
    if f.conflicts:
        return (
            f"Sentence {f.index + 1} (“{quote}”): {'; '.join(f.conflicts)}; say it as the source does, "
            "or remove it."
        )
    if f.missing_terms:
        said = ", ".join(f"“{w}”" for w in f.missing_terms)
        return (
            f"Sentence {f.index + 1} (“{quote}”): nothing you cite says {said}; say only what the source "
            "states, cite the passage that says it, or remove it."
        )
    if f.citation is not None:
        return (
            f"Sentence {f.index + 1} (“{quote}”): not supported by what you cite; rephrase it to match the "
            "source, cite the passage that says it, or remove it."
        )
    return None
