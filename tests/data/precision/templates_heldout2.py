"""HELD-APART phrasing templates, second round (issue 30): written after the first tuning round and BEFORE the
second, never tuned against. The first round's held-apart templates (templates_heldout.py) were looked at
after round 1 and their misses' kinds guided round 2's tuning templates, so from round 2 on this file is
the clean held-apart part. No template text here may appear in the other template files."""

from __future__ import annotations

from tests.data.precision.templates_heldout import Template

TEMPLATES: list[Template] = [
    # --- subnets ---
    ("subnet_calc", "net", "broadcast", "chatty", "for the subnet {net}, which address is the broadcast?"),
    ("subnet_calc", "net", "last", "terse", "{net} last host"),
    ("subnet_calc", "net", "mask", "chatty", "what netmask goes with {net}?"),
    ("subnet_calc", "net", "usable", "terse", "{net} usable hosts"),
    ("subnet_calc", "prefix", "wildcard", "chatty", "What's the wildcard mask that goes with a /{p}?"),
    ("subnet_calc", "mask", "prefix", "terse", "{mask} as a prefix length"),
    ("subnet_calc", "contains", "contains", "terse", "does {net} include {ip}?"),
    ("subnet_calc", "net", "network", "other-language", "Netzadresse für {hostnet}"),
    # --- bases ---
    ("number_base", "base", "to_hex", "chatty", "can you convert {n} into hex for me?"),
    ("number_base", "base", "from_hex", "chatty", "what's the decimal value of hex {hex}?"),
    ("number_base", "base", "to_oct", "terse", "{n} to octal"),
    ("number_base", "base", "small_bin", "words", "{small_words} in binary"),
    ("number_base", "base", "from_bin", "other-language", "{bin} von binär in dezimal"),
    # --- primes ---
    ("prime_factorize", "composite", "largest", "chatty", "Could you factor {n} into primes?"),
    ("prime_factorize", "composite", "largest", "terse", "prime factors of {n_comma}"),
    ("prime_factorize", "composite", "smallest", "terse", "lowest prime factor of {n}"),
    # --- money ---
    ("decimal_finance", "compound", "total", "terse",
     "{r}% compound interest compounded {freq} on ${p} over {y} years"),
    ("decimal_finance", "simple", "total", "chatty",
     "How much will ${p} be worth after {y} years at {r}% simple interest?"),
    ("decimal_finance", "loan", "payment", "terse", "${p} loan, {r}%, {y} years, monthly payment?"),
    ("decimal_finance", "tip", "tip", "chatty", "I want to leave a {pct}% tip on ${bill}, how much is that?"),
    ("decimal_finance", "loan", "payment", "other-language",
     "Monatliche Rate für ein Darlehen über {p_plain} Euro zu {r}% bei {y} Jahren Laufzeit"),
    # --- dates ---
    ("date_diff", "two_dates", "days", "chatty", "how many days lie between {a_mdy} and {b_mdy}?"),
    ("date_diff", "two_dates", "days", "terse", "{a_iso} to {b_iso}: how many days"),
    ("date_diff", "two_dates", "days", "other-language", "Anzahl der Tage vom {a_de} bis zum {b_de}"),
    ("day_of_week", "one_date", "weekday", "chatty", "do you know what weekday {dmy} was?"),
    ("day_of_week", "one_date", "weekday", "terse", "day of the week for {mdy}"),
    ("day_of_week", "one_date", "weekday", "other-language", "Auf welchen Wochentag fällt der {de}?"),
    ("date_add", "one_date", "plus_n", "chatty", "What date will it be {n} days after {mdy}?"),
    ("date_add", "one_date", "minus_n", "terse", "{iso} minus {n} days"),
    ("date_add", "one_date", "plus_w", "other-language", "{w} Wochen nach dem {de}"),
    # --- units ---
    ("unit_convert", "units", "result", "chatty", "Can you convert {v} {f_long} to {t_long}?"),
    ("unit_convert", "units", "result", "terse", "{v} {f_long} = ? {t_long}"),
    ("unit_convert", "units", "result", "terse", "{v}{f} in {t}"),
    ("unit_convert", "units", "small_result", "words", "how many {t_long} are in {small_words} {f_long}"),
    ("unit_convert", "units", "result", "other-language", "Rechne {v_de} {f_de} in {t_de} um"),
    ("unit_convert", "temperature", "c_to_f", "other-language", "{c} Grad Celsius in Fahrenheit"),
    # --- statistics ---
    ("statistics_calc", "numbers", "mean", "terse", "arithmetic mean: {list}"),
    ("statistics_calc", "numbers", "median", "chatty", "I have these values {list}, what's the median?"),
    ("statistics_calc", "numbers", "pstdev", "chatty", "what is the population standard deviation of {list_and}?"),
    ("statistics_calc", "numbers", "median", "other-language", "Median der Zahlen {list_de}"),
    # --- distractors ---
    (None, "net", "", "chatty", "My ISP gave me {net}, should I complain about its size?"),
    (None, "base", "", "terse", "history of hexadecimal notation like 0x{HEX}"),
    (None, "composite", "", "chatty", "Is {n} the number of stars in the sky?"),
    (None, "tip", "", "terse", "do waiters in Paris expect {pct}% on ${bill}"),
    (None, "one_date", "", "chatty", "Which football team won on {dmy}?"),
    (None, "two_dates", "", "other-language", "Was geschah zwischen dem {a_de} und dem {b_de}?"),
    (None, "units", "", "chatty", "Would {v} {f_long} fit in my car?"),
    (None, "numbers", "", "terse", "are {list} my winning numbers"),
]
