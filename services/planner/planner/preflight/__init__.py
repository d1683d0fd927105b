"""The planner's precision preflight: questions a precision tool answers exactly, with no model call.

What others use: `recognise` (a question -> one tool task, or None), `match` (the bare (tool, arguments) pair),
`normalise` and `RULES` (the strict grammars, in order), and from the shared vocabulary `take_quotes` and
`WORD_RUN`. The grammars are this package's other modules: `core` chains them; `lexicon` is the vocabulary
they share; `german` the German readings; the typed readers (`netfacts`, `money`, `dates_typed`,
`stats_typed`) and the intent path (`intent`, `intent_bind`) answer what no strict grammar claims."""

from planner.preflight.core import RULES, match, normalise, recognise
from planner.preflight.lexicon import WORD_RUN, Question, take_quotes

__all__ = ["RULES", "WORD_RUN", "Question", "match", "normalise", "recognise", "take_quotes"]
