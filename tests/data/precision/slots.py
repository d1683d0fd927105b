"""Slot fillers for the generated precision questions (issue 30): each maker draws its values from a seeded
random.Random and computes every answer independently of the tools (ipaddress, Decimal, datetime, fractions,
statistics), returning the slot texts and the answers by key. The tools' own code is never imported here."""

from __future__ import annotations

import ipaddress
import random
import statistics as stats
from collections.abc import Callable
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction

Slots = tuple[dict[str, str], dict[str, str]]
MONTHS_EN = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
             "November", "December"]
MONTHS_DE = ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
             "November", "Dezember"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
        "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def words(n: int) -> str:
    """English words for 0 <= n < 1,000,000 ("three hundred and forty-two")."""
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("-" + ONES[n % 10] if n % 10 else "")
    if n < 1000:
        return ONES[n // 100] + " hundred" + (" and " + words(n % 100) if n % 100 else "")
    return words(n // 1000) + " thousand" + ((" and " if n % 1000 < 100 else " ") + words(n % 1000) if n % 1000 else "")


def approx(value: Fraction) -> str:
    """A value as the evaluation compares it: exact when it has at most 10 decimals, else its first 8
    significant digits (truncated: a longer printed expansion starts with them)."""
    for places in range(11):
        if (value * 10**places).denominator == 1:
            return _plain(Decimal(value.numerator) / Decimal(value.denominator))
    with localcontext() as ctx:
        ctx.prec = 40
        exact = Decimal(value.numerator) / Decimal(value.denominator)
    digits = 8 - exact.adjusted() - 1
    text = _plain(exact.quantize(Decimal(1).scaleb(-digits), rounding="ROUND_DOWN"))
    # a truncated value keeps its point ("1125328." of 1125328.08...): the evaluation then reads it as the
    # start of a longer expansion, not as an exact integer
    return text if "." in text or digits <= 0 else text + "."


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


def cents(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def money(value: Decimal) -> str:
    """1234.5 -> '1,234.50'."""
    return f"{value:,.2f}"


# --- subnets -----------------------------------------------------------------------------------------------------
def _network(rng: random.Random) -> ipaddress.IPv4Network:
    base = rng.choice([("10.0.0.0", 8), ("172.16.0.0", 12), ("192.168.0.0", 16)])
    prefix = rng.randint(max(base[1], 16), 30)
    offset = rng.randrange(0, 2 ** (32 - base[1]))
    address = ipaddress.IPv4Address(int(ipaddress.IPv4Address(base[0])) + offset)
    return ipaddress.IPv4Network(f"{address}/{prefix}", strict=False)


def net(rng: random.Random) -> Slots:
    n = _network(rng)
    host = ipaddress.IPv4Address(int(n.network_address) + rng.randrange(1, n.num_addresses))
    return ({"net": str(n), "hostnet": f"{host}/{n.prefixlen}"},
            {"broadcast": f"broadcast {n.broadcast_address}", "network": f"network address {n.network_address}",
             "first": f"hosts {n[1]} to", "last": f"to {n[-2]} (", "usable": f"{n.num_addresses - 2:,} usable",
             "mask": f"netmask {n.netmask}", "wildcard": f"wildcard {n.hostmask}"})


def prefix(rng: random.Random) -> Slots:
    p = rng.randint(8, 30)
    n = ipaddress.IPv4Network(f"0.0.0.0/{p}")
    return ({"p": str(p)}, {"mask": f"netmask {n.netmask}", "wildcard": f"wildcard {n.hostmask}",
                            "usable": f"{n.num_addresses - 2:,} usable", "addresses": f"{n.num_addresses:,} addresses"})


def mask(rng: random.Random) -> Slots:
    p = rng.randint(8, 30)
    return {"mask": str(ipaddress.IPv4Network(f"0.0.0.0/{p}").netmask)}, {"prefix": f"/{p}"}


def contains(rng: random.Random) -> Slots:
    n = _network(rng)
    if rng.random() < 0.5:
        ip = ipaddress.IPv4Address(int(n.network_address) + rng.randrange(n.num_addresses))
    else:
        ip = ipaddress.IPv4Address((int(n.broadcast_address) + rng.randrange(1, 4096)) % 2**32)
    verdict = "inside" if ip in n else "outside"
    return {"net": str(n), "ip": str(ip)}, {"contains": f"{ip} is {verdict}"}


# --- number bases and primes -------------------------------------------------------------------------------------
def base(rng: random.Random) -> Slots:
    n, b, small = rng.randint(2, 70000), rng.randint(2, 4095), rng.randint(2, 999)
    return ({"n": str(n), "hex": format(n, "x"), "HEX": format(n, "X"), "bin": format(b, "b"), "oct": format(n, "o"),
             "small": str(small), "small_words": words(small)},
            {"to_hex": format(n, "X"), "to_bin": format(n, "b"), "to_oct": format(n, "o"),
             "from_hex": str(n), "from_bin": str(b), "from_oct": str(n),
             "small_hex": format(small, "X"), "small_bin": format(small, "b"), "small_oct": format(small, "o")})


PRIMES = [p for p in range(2, 3000) if all(p % d for d in range(2, int(p**0.5) + 1))]


def composite(rng: random.Random) -> Slots:
    factors = sorted(rng.choice(PRIMES) for _ in range(rng.randint(2, 4)))
    n = 1
    for f in factors:
        n *= f
    return ({"n": str(n), "n_comma": f"{n:,}"},
            {"largest": str(factors[-1]), "smallest": str(factors[0])})


# --- money -------------------------------------------------------------------------------------------------------
def _rate(rng: random.Random) -> Decimal:
    return Decimal(rng.choice(["1.5", "2", "2.5", "3", "3.25", "3.5", "4", "4.5", "5", "5.5", "6", "7", "8"]))


def compound(rng: random.Random) -> Slots:
    principal, rate, years = Decimal(rng.randrange(500, 50001, 50)), _rate(rng), rng.randint(2, 30)
    k = rng.choice([1, 4, 12])
    with localcontext() as ctx:
        ctx.prec = 60
        total = principal * (1 + rate / 100 / k) ** (k * years)
    freq = {1: "annually", 4: "quarterly", 12: "monthly"}[k]
    freq_de = {1: "jährlich", 4: "vierteljährlich", 12: "monatlich"}[k]
    return ({"p": f"{principal:,}", "p_plain": str(principal), "r": str(rate), "y": str(years), "freq": freq,
             "freq_de": freq_de, "yearly": {1: "yearly", 4: "quarterly", 12: "monthly"}[k]},
            {"total": money(Decimal(cents(total))), "interest": money(Decimal(cents(total - principal)))})


def simple(rng: random.Random) -> Slots:
    principal, rate, years = Decimal(rng.randrange(200, 20001, 25)), _rate(rng), rng.randint(1, 15)
    interest = principal * rate / 100 * years
    return ({"p": f"{principal:,}", "r": str(rate), "y": str(years)},
            {"interest": money(Decimal(cents(interest))), "total": money(Decimal(cents(principal + interest)))})


def loan(rng: random.Random) -> Slots:
    principal, rate, years = Decimal(rng.randrange(1000, 400001, 500)), _rate(rng), rng.randint(1, 30)
    months = years * 12
    with localcontext() as ctx:
        ctx.prec = 60
        r = rate / 1200
        payment = principal * r / (1 - (1 + r) ** -months)
    return ({"p": f"{principal:,}", "p_plain": str(principal), "r": str(rate), "y": str(years), "m": str(months)},
            {"payment": money(Decimal(cents(payment)))})


def tip(rng: random.Random) -> Slots:
    bill = Decimal(rng.randrange(800, 40000)) / 100
    percent = Decimal(rng.choice([10, 12, 15, 18, 20, 22, 25]))
    return {"bill": str(bill), "pct": str(percent)}, {"tip": money(Decimal(cents(bill * percent / 100)))}


# --- dates -------------------------------------------------------------------------------------------------------
def _date(rng: random.Random) -> date:
    return date(1950, 1, 1) + timedelta(days=rng.randrange(0, 40000))


def _forms(d: date) -> dict[str, str]:
    return {"iso": d.isoformat(), "dmy": f"{d.day} {MONTHS_EN[d.month - 1]} {d.year}",
            "mdy": f"{MONTHS_EN[d.month - 1]} {d.day}, {d.year}", "de": f"{d.day}. {MONTHS_DE[d.month - 1]} {d.year}",
            "short": f"{MONTHS_EN[d.month - 1][:3]} {d.day} {d.year}"}


def two_dates(rng: random.Random) -> Slots:
    a = _date(rng)
    b = a + timedelta(days=rng.randint(2, 3000))
    slots = {f"a_{k}": v for k, v in _forms(a).items()} | {f"b_{k}": v for k, v in _forms(b).items()}
    return slots, {"days": f"{(b - a).days:,} days"}


def one_date(rng: random.Random) -> Slots:
    d = _date(rng)
    n = rng.randint(2, 400)
    w = rng.randint(2, 60)
    small = rng.randint(2, 99)
    return ({**_forms(d), "n": str(n), "w": str(w), "small_words": words(small)},
            {"weekday": WEEKDAYS[d.weekday()], "plus_n": (d + timedelta(days=n)).isoformat(),
             "minus_n": (d - timedelta(days=n)).isoformat(), "plus_w": (d + timedelta(weeks=w)).isoformat(),
             "plus_small": (d + timedelta(days=small)).isoformat()})


# --- units (factors from their definitions, not from pint) ---------------------------------------------------------
LINEAR: dict[str, tuple[Fraction, str]] = {  # unit key -> (its size in the base unit, the dimension)
    "km": (Fraction(1000), "length"), "m": (Fraction(1), "length"), "cm": (Fraction(1, 100), "length"),
    "mile": (Fraction(1609344, 1000), "length"), "ft": (Fraction(3048, 10000), "length"),
    "inch": (Fraction(254, 10000), "length"), "yard": (Fraction(9144, 10000), "length"),
    "kg": (Fraction(1), "mass"), "g": (Fraction(1, 1000), "mass"), "lb": (Fraction(45359237, 10**8), "mass"),
    "oz": (Fraction(45359237, 16 * 10**8), "mass"),
    "kmh": (Fraction(1000, 3600), "speed"), "ms": (Fraction(1), "speed"), "mph": (Fraction(1609344, 3600000), "speed"),
    "kwh": (Fraction(3600000), "energy"), "mj": (Fraction(10**6), "energy"), "kj": (Fraction(1000), "energy"),
    "j": (Fraction(1), "energy"),
    "l": (Fraction(1, 1000), "volume"), "ml": (Fraction(1, 10**6), "volume"), "m3": (Fraction(1), "volume"),
    "h": (Fraction(3600), "time"), "min": (Fraction(60), "time"), "s": (Fraction(1), "time"),
    "gib": (Fraction(2**30), "data"), "mib": (Fraction(2**20), "data"), "gb": (Fraction(10**9), "data"),
    "mb": (Fraction(10**6), "data"),
}
NAMES = {  # how the unit is written, per register: (terse, spelled out, German)
    "km": ("km", "kilometres", "Kilometer"), "m": ("m", "metres", "Meter"), "cm": ("cm", "centimetres", "Zentimeter"),
    "mile": ("mi", "miles", "Meilen"), "ft": ("ft", "feet", "Fuß"), "inch": ("in", "inches", "Zoll"),
    "yard": ("yd", "yards", "Yards"), "kg": ("kg", "kilograms", "Kilogramm"), "g": ("g", "grams", "Gramm"),
    "lb": ("lb", "pounds", "Pfund"), "oz": ("oz", "ounces", "Unzen"),
    "kmh": ("km/h", "kilometres per hour", "Kilometer pro Stunde"), "ms": ("m/s", "metres per second",
                                                                           "Meter pro Sekunde"),
    "mph": ("mph", "miles per hour", "Meilen pro Stunde"), "kwh": ("kWh", "kilowatt hours", "Kilowattstunden"),
    "mj": ("MJ", "megajoules", "Megajoule"), "kj": ("kJ", "kilojoules", "Kilojoule"), "j": ("J", "joules", "Joule"),
    "l": ("L", "litres", "Liter"), "ml": ("mL", "millilitres", "Milliliter"), "m3": ("m^3", "cubic metres",
                                                                                    "Kubikmeter"),
    "h": ("h", "hours", "Stunden"), "min": ("min", "minutes", "Minuten"), "s": ("s", "seconds", "Sekunden"),
    "gib": ("GiB", "gibibytes", "Gibibyte"), "mib": ("MiB", "mebibytes", "Mebibyte"), "gb": ("GB", "gigabytes",
                                                                                         "Gigabyte"),
    "mb": ("MB", "megabytes", "Megabyte"),
}


def _pair(rng: random.Random) -> tuple[str, str]:
    source = rng.choice(sorted(LINEAR))
    targets = [u for u in sorted(LINEAR) if u != source and LINEAR[u][1] == LINEAR[source][1]]
    return source, rng.choice(targets)


def units(rng: random.Random) -> Slots:
    source, target = _pair(rng)
    value = rng.choice([Fraction(rng.randint(1, 500)), Fraction(rng.randint(1, 9999), 10)])
    small = rng.randint(2, 99)
    result = value * LINEAR[source][0] / LINEAR[target][0]
    small_result = small * LINEAR[source][0] / LINEAR[target][0]
    shown = _plain(Decimal(value.numerator) / Decimal(value.denominator))
    return ({"v": shown, "v_de": shown.replace(".", ","), "f": NAMES[source][0], "t": NAMES[target][0],
             "f_long": NAMES[source][1], "t_long": NAMES[target][1], "f_de": NAMES[source][2],
             "t_de": NAMES[target][2], "small_words": words(small)},
            {"result": approx(result), "small_result": approx(small_result)})


def temperature(rng: random.Random) -> Slots:
    c = rng.randint(-40, 120)
    f = rng.randint(-40, 250)
    return ({"c": str(c), "f": str(f)}, {"c_to_f": approx(Fraction(c) * 9 / 5 + 32),
                                         "f_to_c": approx((Fraction(f) - 32) * 5 / 9)})


# --- statistics --------------------------------------------------------------------------------------------------
def numbers(rng: random.Random) -> Slots:
    values = [rng.randint(1, 120) for _ in range(rng.randint(4, 9))]
    mean = Fraction(sum(values), len(values))
    median = Fraction(stats.median(values)).limit_denominator(2)
    with localcontext() as ctx:
        ctx.prec = 40
        square = sum((Fraction(v) - mean) ** 2 for v in values)
        sample = (Decimal(square.numerator) / Decimal(square.denominator) / (len(values) - 1)).sqrt()
        population = (Decimal(square.numerator) / Decimal(square.denominator) / len(values)).sqrt()
    return ({"list": ", ".join(map(str, values)), "list_and": ", ".join(map(str, values[:-1])) + f" and {values[-1]}",
             "list_space": " ".join(map(str, values)), "list_de": "; ".join(map(str, values))},
            {"mean": approx(mean), "median": approx(median),
             "stdev": approx(Fraction(sample)), "pstdev": approx(Fraction(population))})


MAKERS: dict[str, Callable[[random.Random], Slots]] = {
    "net": net, "prefix": prefix, "mask": mask, "contains": contains, "base": base, "composite": composite,
    "compound": compound, "simple": simple, "loan": loan, "tip": tip, "two_dates": two_dates, "one_date": one_date,
    "units": units, "temperature": temperature, "numbers": numbers,
}
