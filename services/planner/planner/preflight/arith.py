"""Arithmetic in words and symbols as one `calculate` expression. The question is rewritten phrase by phrase
("add 15 and 27", "increase 80 by 25%", "48 divided by 6, then times 7", "sieben mal acht") and must end
as nothing but numbers, operators and known functions: any word left over means it was not arithmetic."""

from __future__ import annotations

import re

from planner.preflight.lexicon import NOT_ENGLISH, NUM, Question, balanced, numbers_from_words, strip_request

I = re.IGNORECASE  # noqa: E741 - the regex flag, as in re.I
N = rf"(?:{NUM})"
P = rf"(?:{NUM})\s*%"  # a percentage, after "percent" became "%"
FUNCS = r"sqrt|cbrt|exp|ln|log10|log2|log|sin|cos|tan|asin|acos|atan|abs|round|floor|ceil|factorial"
PREFIXED = r"\b0x[0-9a-f]+\b|\b0b[01]+\b|\b0o[0-7]+\b"  # hexadecimal, binary, octal literals
EXPRESSION = re.compile(rf"^(?:[\d\s.+\-*/^%(),]|{PREFIXED}|\bof\b|\b(?:{FUNCS})\b|\bpi\b|\be\b)+$", I)

# words -> symbols, longest first; a few German, French and Spanish operators too
OPERATORS = [
    (r"\s*(?:\bpercent\b|\bper ?cent\b|\bprozent\b|\bpour ?cent\b|\bpor ?ciento\b)", "%"),
    (r"\bto the power of\b|\braised to(?: the power of)?\b|\bhoch\b", "^"),
    (r"\bmultiplied by\b|\btimes\b|\bmal\b|\bfois\b|\bmultipli[e\u00e9] par\b|\bpor\b|\bx\b|\u00d7", "*"),
    (r"\bdivided by\b|\bover\b|\bgeteilt durch\b|\bdurch\b|\bdivis[e\u00e9] par\b|\bdividido (?:por|entre)\b|"
     r"\u00f7", "/"),
    (r"\bplus\b|\bund\b(?=\s*\d)|\bm[a\u00e1]s\b", "+"),
    (r"\bminus\b|\bmoins\b|\bmenos\b", "-"),
    (r"\bmod(?:ulo)?\b", "%"),
    (r"\s*\bsquared\b", "^2"), (r"\s*\bcubed\b", "^3"),
]
PHRASES = [  # operand phrases, applied after the number words became digits
    (rf"\badd ({N}) (?:and|to) ({N})$", r"\1 + \2"), (rf"\bsubtract ({N}) from ({N})$", r"\2 - \1"),
    (rf"\bmultiply ({N}) (?:by|and) ({N})$", r"\1 * \2"), (rf"\bdivide ({N}) by ({N})$", r"\1 / \2"),
    (rf"^(?:the )?sum of ({N}) and ({N})$", r"\1 + \2"), (rf"^(?:the )?product of ({N}) and ({N})$", r"\1 * \2"),
    (rf"^(?:the )?difference between ({N}) and ({N})$", r"\1 - \2"),
    (rf"^(?:the )?quotient of ({N}) (?:and|by) ({N})$", r"\1 / \2"),
    (rf"^(?:the )?remainder (?:of|when) ({N}) (?:is )?divided by ({N})$", r"\1 % \2"),
    (rf"\bhalf of ({N})", r"(\1 / 2)"), (rf"\ba third of ({N})", r"(\1 / 3)"), (rf"\ba quarter of ({N})", r"(\1 / 4)"),
    (rf"\b(?:double|twice) ({N})", r"(2 * \1)"), (rf"\btriple ({N})", r"(3 * \1)"),
    (rf"^increase ({N}) by ({P})$", r"\1 * (1 + \2)"), (rf"^(?:decrease|reduce) ({N}) by ({P})$", r"\1 * (1 - \2)"),
    (rf"^({N}) (?:\+|plus) ({P})$", r"\1 * (1 + \2)"), (rf"^({N}) (?:-|minus) ({P})$", r"\1 * (1 - \2)"),
    (rf"\b(?:the )?(?:square root|sqrt) of ({N})", r"sqrt(\1)"), (rf"\b(?:the )?cube root of ({N})", r"cbrt(\1)"),
    (rf"\bsqrt ({N})", r"sqrt(\1)"),
    (rf"\b({N}) factorial\b", r"factorial(\1)"), (rf"\b(?:the )?factorial of ({N})", r"factorial(\1)"),
    (r"(?<![\w.])(\d+)!(?!=)", r"factorial(\1)"),
    (rf"({P}) (?:of|von|de)\s+({N})", r"\1 of \2"),
]
STEP = re.compile(r"\s*(?:,\s*|\s)(?:and )?then\s+|\s*,\s+(?=(?:plus|minus|times|divided by|multiplied by|add|"
                  r"subtract|\+|-|\*|/)\b)|^take\s+|\s+and (?=(?:add|subtract|multiply|divide)\b)", I)
FOLLOW = [(r"^(?:add|plus)\s+", "+ "), (r"^(?:subtract|minus|take away)\s+", "- "),
          (r"^(?:multiply(?: it)? by|times|multiplied by)\s+", "* "), (r"^(?:divide(?: it)? by|divided by)\s+", "/ ")]


REWRITES = [(re.compile(pattern, I), replacement) for pattern, replacement in (*OPERATORS, *PHRASES)]  # compiled once
FOLLOWS = [(re.compile(pattern, I), symbol) for pattern, symbol in FOLLOW]
# Every plain (ASCII) word the patterns above and EXPRESSION can consume. The patterns match words whole (\b on
# both sides), so a plain word outside this set survives every rewrite and fails EXPRESSION: the question is not
# arithmetic, known before the ~40 rewrites (~0.5 ms on a long question, issue 52). Change it with the patterns;
# tests/data/precision/fingerprint.py shows a word missing here.
CONSUMED = frozenset("""
    percent per cent prozent pour pourcent por ciento porciento to the power of raised hoch multiplied by times mal
    fois multiplie par x divided over geteilt durch divise dividido entre plus und mas minus moins menos mod modulo
    squared cubed add and subtract from multiply divide sum product difference between quotient remainder when is
    half a third quarter double twice triple increase decrease reduce square root sqrt cube factorial von de then
    take it away cbrt exp ln log sin cos tan asin acos atan abs round floor ceil pi e""".split())
PLAIN_WORD = re.compile(r"\b[a-zA-Z]+\b")  # a word with a digit (0x1f, 2e5) or a non-ASCII letter is not judged


def _rewrite(text: str) -> str:
    for pattern, replacement in REWRITES:
        text = pattern.sub(replacement, text)
    return " ".join(text.split())


def _steps(text: str) -> str | None:
    """Chained operations ("48 divided by 6, then times 7"): each step applies to all that came before."""
    parts = [p for p in STEP.split(text) if p and p.strip()]
    if len(parts) == 1:
        return _rewrite(parts[0])
    expression = _rewrite(parts[0])
    for part in parts[1:]:
        follow = part.strip()
        for pattern, symbol in FOLLOWS:
            follow = pattern.sub(symbol, follow)
        follow = _rewrite(follow)
        if not re.match(r"[-+*/^]\s*\S", follow):
            return None  # "then" without an operation: not a chain of arithmetic
        expression = f"({expression}) {follow}"
    return expression


def arithmetic_expression(text: str) -> str | None:
    """The calculate expression a question asks for, or None."""
    body = strip_request(text)
    body = re.sub(r"^(?:the (?:result|value) of|the answer to)\s+", "", body, flags=I)
    if re.search(r"\d{4}-\d{2}-\d{2}|\d+\.\d+\.\d+", body) or re.fullmatch(r"[\d\s]+(?:-[\d\s]+)+", body):
        return None  # a date, a version or an IP address, or a phone number, not a subtraction
    if re.search(r"(?<![\d.,])[1-9]\d{0,2}\.\d{3}(?![\d.,])", body) or \
            (NOT_ENGLISH.search(text) and re.search(r"\d,\d{3}(?!\d)", body)):
        return None  # "Was ergibt 1.250 minus 375": 1.25, or a German thousands point? (compose.py reads German)
    words = body if NOT_ENGLISH.search(text) else numbers_from_words(body)
    if words is None or any(w.lower() not in CONSUMED for w in PLAIN_WORD.findall(words)):
        return None
    expression = _steps(words)
    if expression is None:
        return None
    expression = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", expression)  # thousands separators
    if re.search(r"\d\s+\.?\d", expression):
        return None  # "2 3 times 4", "zwei drei mal vier": two numbers side by side, no operation between them
    if re.search(r"/\s*[\d.]+\s*\(", expression):
        return None  # "6 / 2(1+2)": is 2(1+2) one divisor? people disagree, so no exact answer
    if not EXPRESSION.fullmatch(expression) or not balanced(expression) or not re.search(r"\d", expression):
        return None
    operations = re.sub(rf"(?:{NUM})\s*%(?=\s*of\b|\s*$|\s*\))", "p", expression)  # percentages are numbers
    if not re.search(rf"[+\-*/^%]|\b(?:{FUNCS})\b|\bof\b", operations.strip().lstrip("+-"), I):
        return None  # a bare number (or "5 percent") is not a calculation
    if re.search(r"\bof\b", expression) and not re.search(rf"%\s*of\s+(?:{NUM})", expression):
        return None  # "of" only in "P% of X"
    if re.search(rf"(?<!\(1 )[+\-]\s*{P}(?!\s*of)", expression) or "," in expression:
        return None  # "250 + 10%": add 10 % of what? ambiguous; a comma left over is a list, not arithmetic
    return expression


def arithmetic(q: Question) -> tuple[str, dict[str, str]] | None:
    if q.quoted:
        return None
    expression = arithmetic_expression(q.text)
    return ("calculate", {"expression": expression}) if expression else None
