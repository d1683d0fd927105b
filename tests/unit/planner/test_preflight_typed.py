"""Issue 30: subnet, number-base, money and prime-factor questions read by their typed values. Each question
kind is answered exactly with zero tokens in several registers; the value is checked against an independent
computation (ipaddress, Decimal, int/format, trial division), never against a literal copied from a tool.
Questions about the topics and ambiguous ones (two candidate values, an unclosed quote) go to the planner."""

from __future__ import annotations

import ipaddress
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest

from mcp_service.tools import IMPLEMENTATIONS
from moe_core.contracts.tools import select_tools
from planner.preflight import recognise
from planner.tool_catalogue import ToolCatalogue

pytestmark = pytest.mark.unit
ALL = ToolCatalogue(select_tools())
NET = ipaddress.ip_network


def answer(question: str, tool: str) -> dict[str, Any]:
    task = recognise(question, ALL)
    assert task is not None, f"not claimed: {question!r}"
    assert task.tool == tool and task.args is not None
    return IMPLEMENTATIONS[tool](task.args).result


def cents(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def factors(n: int) -> list[int]:
    out, p = [], 2
    while p * p <= n:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    return out + ([n] if n > 1 else [])


SUBNET = [  # (question, result field, the value by ipaddress)
    ("broadcast address of 10.1.4.0/22", "broadcast", str(NET("10.1.4.0/22").broadcast_address)),
    ("hi, could you tell me the broadcast for the network 192.168.64.0/18?", "broadcast",
     str(NET("192.168.64.0/18").broadcast_address)),
    ("Broadcast-Adresse von 10.0.0.0/24", "broadcast", str(NET("10.0.0.0/24").broadcast_address)),
    ("network address of 172.16.77.9/20", "network_address", str(NET("172.16.77.9/20", strict=False)[0])),
    ("what's the network id for 10.9.8.7/12?", "network_address", str(NET("10.9.8.7/12", strict=False)[0])),
    ("Netzadresse von 192.168.5.130/25", "network_address", str(NET("192.168.5.130/25", strict=False)[0])),
    ("first usable host in 10.20.30.0/23", "first_host", str(NET("10.20.30.0/23")[1])),
    ("what is the first host address of the subnet 172.31.0.0/16?", "first_host", str(NET("172.31.0.0/16")[1])),
    ("Erste nutzbare Adresse im Netz 192.168.8.0/21", "first_host", str(NET("192.168.8.0/21")[1])),
    ("last usable host of 10.0.0.0/9", "last_host", str(NET("10.0.0.0/9")[-2])),
    ("so what's the last address I can use in 192.168.0.0/24", "last_host", None),  # "I can use": unknown words
    ("letzte nutzbare Adresse von 172.16.32.0/19", "last_host", str(NET("172.16.32.0/19")[-2])),
    ("how many usable hosts does a /26 have", "usable_hosts", str(NET("0.0.0.0/26").num_addresses - 2)),
    ("usable hosts in a /27?", "usable_hosts", str(NET("0.0.0.0/27").num_addresses - 2)),
    ("Wie viele nutzbare Hosts hat ein /28?", "usable_hosts", str(NET("0.0.0.0/28").num_addresses - 2)),
    ("What is the mask of a /20?", "netmask", str(NET("0.0.0.0/20").netmask)),
    ("subnet mask for a /twenty-one", "netmask", None),  # a prefix in words: not a typed prefix
    ("Netzmaske von einem /17", "netmask", str(NET("0.0.0.0/17").netmask)),
    ("netmask of 10.0.0.0/13", "netmask", str(NET("10.0.0.0/13").netmask)),
    ("wildcard mask of a /21", "hostmask", str(NET("0.0.0.0/21").hostmask)),
    ("hey, what's the wildcard for 10.10.0.0/18?", "hostmask", str(NET("10.10.0.0/18").hostmask)),
    ("Wildcard-Maske von 192.168.0.0/30", "hostmask", str(NET("192.168.0.0/30").hostmask)),
    ("which prefix length is the netmask 255.255.255.192?", "prefix_length",
     NET("0.0.0.0/255.255.255.192").prefixlen),
    ("255.255.240.0 in CIDR notation", "prefix_length", NET("0.0.0.0/255.255.240.0").prefixlen),
    ("Präfixlänge der Netzmaske 255.255.128.0", "prefix_length", NET("0.0.0.0/255.255.128.0").prefixlen),
]


@pytest.mark.parametrize(("question", "field", "expected"), SUBNET)
def test_subnet_facts_by_typed_values(question: str, field: str, expected: object) -> None:
    if expected is None:
        assert recognise(question, ALL) is None
        return
    assert answer(question, "subnet_calc")[field] == expected


@pytest.mark.parametrize(("question", "address", "network"), [
    ("is 10.0.5.1 inside 10.0.0.0/22", "10.0.5.1", "10.0.0.0/22"),
    ("does the subnet 192.168.0.0/23 contain 192.168.1.200?", "192.168.1.200", "192.168.0.0/23"),
    ("liegt 172.16.40.1 in 172.16.32.0/20", "172.16.40.1", "172.16.32.0/20"),
])
def test_contains(question: str, address: str, network: str) -> None:
    inside = ipaddress.ip_address(address) in NET(network)
    assert answer(question, "subnet_calc")["contains"] == {"address": address, "inside": inside}


@pytest.mark.parametrize(("question", "value", "base"), [
    ("What's the hexadecimal representation of 255?", 255, 16), ("binary representation of 200", 200, 2),
    ("4095 in hex", 4095, 16), ("show 77 as binary", 77, 2), ("the octal form of five hundred", 500, 8),
    ("what is 1023 expressed in binary", 1023, 2), ("convert 0b1011 to hex", 11, 16),
    ("the base 36 notation of 1295", 1295, 36), ("convert ff from hex to decimal", 255, 10),
])
def test_number_bases(question: str, value: int, base: int) -> None:
    shown = answer(question, "number_base")["in_bases"][str(base)]
    assert int(shown, base) == value


def test_money() -> None:
    rate = Decimal("0.05")
    assert answer("If I invest $2,000 at 5% compounded yearly for 3 years, how much do I end up with?",
                  "decimal_finance")["result"] == cents(2000 * (1 + rate) ** 3)
    assert answer("compound interest yearly on 750 dollars at 4.5 percent for 6 years", "decimal_finance")[
        "result"] == cents(750 * Decimal("1.045") ** 6)
    quarterly = Decimal("0.02") / 4  # after "compound interest" (a held-apart template found it read yearly)
    assert answer("2% compound interest compounded quarterly on $24,300 over 29 years", "decimal_finance")[
        "result"] == cents(24300 * (1 + quarterly) ** (4 * 29))
    monthly = Decimal("0.03") / 12
    assert answer("I put 5000 euros in an account at 3% compounded monthly for 10 years, what will the balance be",
                  "decimal_finance")["result"] == cents(5000 * (1 + monthly) ** 120)
    for question, principal, percent, years in [("simple interest on 1500 euros at 4 percent over 2 years", 1500, 4, 2),
                                                ("deposit $800 at 2.5% simple interest for 4 years", 800, "2.5", 4),
                                                ("simple interest on $300 at 10% for 3 years", 300, 10, 3)]:
        interest = Decimal(principal) * Decimal(percent) / 100 * years
        assert Decimal(answer(question, "decimal_finance")["interest"]) == interest
    for question, principal, percent, months in [
            ("I borrow 10,000 dollars at 7% for 5 years, what is my monthly payment?", 10000, 7, 60),
            ("how much do I pay each month on a 250,000 dollar mortgage at 4% for 25 years?", 250000, 4, 300),
            ("monthly payment on a $5,000 loan at 6% over 18 months", 5000, 6, 18)]:
        r = Decimal(percent) / 1200
        assert answer(question, "decimal_finance")["result"] == cents(principal * r / (1 - (1 + r) ** -months))
    for question, bill, percent in [("What's an 18% tip on a $64.50 bill?", "64.50", 18),
                                    ("15 percent tip on 80 dollars", "80", 15),
                                    ("what should I leave as a 22% gratuity on a $135 check?", "135", 22),
                                    ("what's 7.5% of \u20ac1,240", "1240", "7.5")]:
        assert answer(question, "decimal_finance")["result"] == cents(Decimal(bill) * Decimal(percent) / 100)


@pytest.mark.parametrize(("question", "n", "pick"), [
    ("the largest prime factor of 13195", 13195, max), ("greatest prime factor of 600851475143", 600851475143, max),
    ("biggest prime factor of six hundred and ninety", 690, max), ("What is the smallest prime factor of 91?", 91, min),
    ("lowest prime divisor of 221", 221, min), ("the smallest prime that divides 1147", 1147, min),
])
def test_largest_and_smallest_prime_factor(question: str, n: int, pick: Any) -> None:
    flat = [int(p) for p in answer(question, "prime_factorize")["flat"]]
    assert pick(flat) == pick(factors(n))


@pytest.mark.parametrize("question", [
    "why do subnets exist?", "Is compound interest fair?", "how much should I tip in Germany?",
    "what is the largest prime factor anyone has found?", "How do subnet masks work?",
    "should I invest $1000 at 5% for 3 years?", "is 10.0.0.0/24 a good subnet for my office?",
    "what is the total bill with a 20% tip on $50?", "the 20% tip per person on $90",
    "save 100 dollars a month at 5% compounded monthly for 10 years",
    "deposit $1000 monthly at 5% compounded monthly for 10 years",
    "a yearly rate of 5% compounded monthly on $1000 for 3 years",
    "how many /26 subnets fit in 10.0.0.0/24", "the netmask of a /64 in IPv6", "largest prime factor of 1",
])
def test_topic_questions_reach_a_model(question: str) -> None:
    assert recognise(question, ALL) is None


@pytest.mark.parametrize("question", [
    "broadcast address of 10.0.0.0/24 or 10.0.1.0/24?",  # two networks
    "broadcast address of a /24",  # the network is not bound
    "invest $1000 at 5% for 3 years, how much do I end up with?",  # simple or compound?
    "compound interest on $1000 or $2000 at 5% for 3 years",  # two amounts
    "monthly payment on a $5,000 loan at 6% or 7% over 18 months",  # two rates
    "a loan of $5,000 at 6% over 2 years, what is my payment?",  # a payment per what?
    "1000 at 1% per month compounded monthly for 2 years",  # a monthly rate
    "convert ten from hex to decimal",  # not a hex numeral
    "prefix length of the netmask 255.0.255.0",  # not a mask
    'the 18% tip on "$50 bill',  # a quote not closed
])
def test_ambiguous_or_unbound_go_to_the_planner(question: str) -> None:
    assert recognise(question, ALL) is None
