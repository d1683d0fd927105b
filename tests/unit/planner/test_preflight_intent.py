"""Issue 30, round 2: the preflight's intent path (planner/preflight/intent.py). Which tool from signals (typed
values, cue words), which arguments from the typed readers; answered only when one tool clearly leads, no
refusal or conflicting signal is there and every argument is bound from a typed value of the text. Each
question here is one the strict grammars do NOT claim (checked), so the intent path is what is tested; the
values are checked against independent computations (ipaddress, format, trial division, Decimal)."""

from __future__ import annotations

import ipaddress
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest

from mcp_service.tools import IMPLEMENTATIONS
from moe_core.contracts.tools import select_tools
from planner.preflight import RULES, normalise, recognise
from planner.preflight.intent import calibrated, score
from planner.tool_catalogue import ToolCatalogue

pytestmark = pytest.mark.unit
ALL = ToolCatalogue(select_tools())


def strict(question: str) -> bool:
    q = normalise(question)
    return any(rule(q) is not None for rule in RULES)


def answer(question: str, tool: str) -> dict[str, Any]:
    assert not strict(question), f"the strict grammars claim {question!r}: not a test of the intent path"
    task = recognise(question, ALL)
    assert task is not None, f"not claimed: {question!r}"
    assert task.tool == tool and task.args is not None
    return IMPLEMENTATIONS[tool](task.args).result


def handed_over(question: str) -> bool:
    return recognise(question, ALL) is None


@pytest.mark.parametrize(("question", "net"), [
    ("So for 192.168.10.0/26 which one is the broadcast address?", "192.168.10.0/26"),
    ("Our office LAN is 10.20.30.0/24, broadcast address there?", "10.20.30.0/24"),
    ("my lab network 172.16.5.0/27 - which IP ends up as broadcast?", "172.16.5.0/27"),
])
def test_the_broadcast_address_of_a_subnet_in_three_phrasings(question: str, net: str) -> None:
    assert answer(question, "subnet_calc")["broadcast"] == str(ipaddress.ip_network(net).broadcast_address)


@pytest.mark.parametrize(("question", "prefix"), [
    ("usable hosts in a /27 block, anyone?", 27),
    ("tell me straight away the usable hosts of a /26 subnet, I am in a hurry", 26),
    ("in a /26 subnet, usable host count is what exactly", 26),
])
def test_usable_hosts_of_a_bare_prefix(question: str, prefix: int) -> None:
    result = answer(question, "subnet_calc")
    assert int(result["usable_hosts"]) == ipaddress.ip_network(f"0.0.0.0/{prefix}").num_addresses - 2


@pytest.mark.parametrize(("question", "value", "base"), [
    ("I'd like the hexadecimal representation of 255 for a colour code", 255, 16),
    ("the binary representation of 200 for my homework", 200, 2),
    ("Show 200 as a binary representation", 200, 2),
    ("what's the decimal value of hex ab12?", 0xAB12, 10),
])
def test_number_bases_from_a_numeral_and_one_base_word(question: str, value: int, base: int) -> None:
    digits = {16: format(value, "X"), 2: format(value, "b"), 10: str(value)}[base]
    result = answer(question, "number_base")
    assert result["in_bases"][str(base)].upper() == digits


@pytest.mark.parametrize(("question", "n"), [
    ("I want to find the largest prime factor of 13195 for Project Euler", 13195),
    ("Project Euler asks for the largest prime factor of 600851475143 - can you get it?", 600851475143),
    ("for my puzzle: the largest prime factor of 13195, and quickly", 13195),
])
def test_the_largest_prime_factor(question: str, n: int) -> None:
    largest, p, rest = 1, 2, n
    while p * p <= rest:
        while rest % p == 0:
            largest, rest = p, rest // p
        p += 1
    largest = max(largest, rest) if rest > 1 else largest
    assert max(int(f) for f in answer(question, "prime_factorize")["flat"]) == largest


def test_compound_interest_bound_from_amount_rate_duration_and_frequency() -> None:
    result = answer("Putting $2,500 away at 4% compounded monthly for 10 years - what's the final balance?",
                    "decimal_finance")
    total = Decimal(2500) * (1 + Decimal("0.04") / 12) ** 120
    assert str(result["result"]) == str(total.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def test_the_leader_needs_a_typed_value_a_cue_and_a_margin() -> None:
    assert score("So for 192.168.10.0/26 which one is the broadcast address").family == "subnet"
    assert score("broadcast address please").family is None  # cue words without a typed value
    two = score("what's the median of 3, 4, 5 in hex")  # a list (statistics) and a numeral with a base word
    least = calibrated()
    assert two.family is None and two.scores["statistics"] >= least["statistics"][0] and \
        two.scores["bases"] >= least["bases"][0]
    assert abs(two.scores["statistics"] - two.scores["bases"]) < min(least["statistics"][1], least["bases"][1])


@pytest.mark.parametrize("question", [
    "Is 10.0.0.0/24 safe to use at home, what's its broadcast",  # advice
    "Should I invest $1,000 at 5% compounded yearly for 3 years?",  # advice
    "Is 13195 a lucky number, and what is its largest prime factor",  # numerology
    "what happened on the day 2020-03-11, and how many days until 2020-12-31",  # history
    "I do not want 255 in hex",  # negation
])
def test_refusal_signals_hand_over(question: str) -> None:
    assert handed_over(question)


@pytest.mark.parametrize("question", [
    "Factorize 1000 in binary",  # a prime word and a base word: which tool?
    "what is the total bill with a 20% tip on $50?",  # the total, not the tip
    "what's 5 km plus 3 km in miles",  # a computation the binder would drop
    "the 3rd largest prime factor of 30030",  # an ordinal
    "How many days until 2030-01-01 from 2025-06-01 counting both ends?",  # inclusive count, reversed range
    "30 degrees Celsius in Fahrenheit and Kelvin",  # two targets
    "The median of 3, 5, 7 is what, doubled?",  # a computation on the tool's result
])
def test_conflicting_signals_and_changing_words_hand_over(question: str) -> None:
    assert handed_over(question)


@pytest.mark.parametrize("question", [
    "I'd like the decimal value of hex ab12 and hex ff",  # two numerals
    "which of 10.0.0.0/24 and 10.1.0.0/24 has the higher broadcast address",  # two networks
    "what is 1010 in binary in decimal for my class",  # two base words with a plain numeral: which way?
    "Putting $2,500 or $3,000 away at 4% compounded monthly for 10 years, final balance",  # two amounts
])
def test_two_candidates_for_an_argument_go_to_the_planner(question: str) -> None:
    assert handed_over(question)


def test_every_bound_argument_comes_from_a_typed_value_of_the_text() -> None:
    for question in ("So for 192.168.10.0/26 which one is the broadcast address?",
                     "Project Euler asks for the largest prime factor of 600851475143 - can you get it?",
                     "the binary representation of 200 for my homework"):
        task = recognise(question, ALL)
        assert task is not None and task.args is not None
        bound = [str(v) for k, v in task.args.items() if k not in {"to_base", "from_base"}]
        assert all(value in question.replace(",", "") for value in bound), (question, task.args)
