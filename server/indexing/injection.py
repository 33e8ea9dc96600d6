"""Flagging passages that read like instructions to a model (prompt injection).

A small, precise pattern set: phrases that address the model that reads a passage rather
than the person a document was written for. A flag is a hint for clients (treat the passage
as quoted data, never as instructions); it does not remove or rewrite anything, and text
that avoids these phrases is not flagged.
"""

from __future__ import annotations

import re

PROMPT_INJECTION = "prompt_injection"

_EARLIER = r"(?:previous|prior|above|earlier|preceding|foregoing)"
_ORDERS = r"(?:instructions?|prompts?|directions|directives|rules|messages|context)"
_PATTERNS = [
    # "ignore (all) previous instructions", "disregard prior rules", "forget the above prompt"
    rf"\b(?:ignore|disregard|forget|override)\s+(?:(?:all|any|the|of|your|my)\s+){{0,3}}{_EARLIER}\s+{_ORDERS}",
    # "disregard the above", "ignore everything above"
    r"\b(?:ignore|disregard|forget)\s+(?:(?:all|everything|the)\s+){0,2}(?:above|before\s+this)\b",
    # "you are now DAN / an unrestricted assistant / in developer mode"
    r"\byou\s+are\s+now\s+(?:(?:a|an|the|in|my)\s+)?(?:\w+\s+){0,2}?"
    r"(?:dan|assistant|ai|chatbot|bot|model|jailbroken|unrestricted|unfiltered|developer\s+mode)\b",
    # "system prompt", "new instructions:"
    r"\bsystem\s+prompt\b",
    r"\bnew\s+instructions\s*:",
    # chat-template role markers and special tokens
    r"^[ \t]*#{1,6}[ \t]*(?:system|assistant|user)[ \t]*:?[ \t]*$",
    r"<\|(?:im_start|im_end|system|user|assistant|endoftext|begin_of_text|start_header_id|eot_id)\|>",
    r"\[/?INST\]|<</?SYS>>",
]
_INJECTION = re.compile("|".join(f"(?:{p})" for p in _PATTERNS), re.IGNORECASE | re.MULTILINE)


def injection_flags(text: str) -> list[str]:
    """``[PROMPT_INJECTION]`` if ``text`` contains an instruction aimed at a model, else ``[]``."""
    return [PROMPT_INJECTION] if _INJECTION.search(text) else []
