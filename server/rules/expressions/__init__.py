"""The CEL layer: rule expressions compiled, what they read, and values typed for CEL.

The operator writing rules should not meet CEL's quirks (see ``../shared/notes/cel.md``), so
everything that enters an expression goes through :func:`to_cel` and every expression through
:func:`compile_expression`. By job:

- :mod:`.lexer`: CEL tokens and CEL's reserved words;
- :mod:`.reads`: the variables, field paths and functions an expression refers to;
- :mod:`.compiling`: compiling with CEL, its syntax errors made readable;
- :mod:`.loading`: importing CEL without its command-line tool;
- :mod:`.templates`: reasons with ``{expression}`` placeholders;
- :mod:`.values`: Python values into CEL and results back to JSON and text;
- :mod:`.helpers`: the date and ``coalesce`` functions CEL lacks, and the reserved names;
- :mod:`.scope`: the variables and functions of one evaluation.
"""

from strongroom.server.rules.expressions.compiling import Expression, ExpressionError, compile_expression
from strongroom.server.rules.expressions.helpers import (
    ENGINE_NAMES,
    HELPER_NAMES,
    RESERVED_NAMES,
    HelperError,
    functions_for,
    library,
    parse_date,
)
from strongroom.server.rules.expressions.lexer import CEL_RESERVED, MACROS, NAMESPACES, Token, tokens
from strongroom.server.rules.expressions.reads import Reads, analyse
from strongroom.server.rules.expressions.scope import Scope
from strongroom.server.rules.expressions.templates import Template, compile_template
from strongroom.server.rules.expressions.values import (
    cel_type,
    date_timestamp,
    display,
    fact_json,
    floating,
    to_cel,
    to_json,
)

__all__ = [
    "CEL_RESERVED",
    "ENGINE_NAMES",
    "HELPER_NAMES",
    "MACROS",
    "NAMESPACES",
    "RESERVED_NAMES",
    "Expression",
    "ExpressionError",
    "HelperError",
    "Reads",
    "Scope",
    "Template",
    "Token",
    "analyse",
    "cel_type",
    "compile_expression",
    "compile_template",
    "date_timestamp",
    "display",
    "fact_json",
    "floating",
    "functions_for",
    "library",
    "parse_date",
    "to_cel",
    "to_json",
    "tokens",
]
