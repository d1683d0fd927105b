"""TUNING phrasing templates (issue 30): what the preflight is tuned against. No template text here may appear in
templates_heldout.py (tests/unit/planner/test_preflight_generated.py checks it). Format as in templates_heldout.py."""

from __future__ import annotations

from tests.data.precision.templates_heldout import Template

TEMPLATES: list[Template] = [
    # --- subnets ---
    ("subnet_calc", "net", "broadcast", "terse", "broadcast address for {net}"),
    ("subnet_calc", "net", "broadcast", "chatty", "hey, what's the broadcast of {net}?"),
    ("subnet_calc", "net", "network", "terse", "network address of {hostnet}"),
    ("subnet_calc", "net", "first", "terse", "first host in {net}"),
    ("subnet_calc", "net", "last", "chatty", "what's the last usable host address of {net}?"),
    ("subnet_calc", "net", "usable", "chatty", "how many usable addresses does {net} have?"),
    ("subnet_calc", "net", "wildcard", "terse", "wildcard mask of {net}"),
    ("subnet_calc", "prefix", "wildcard", "terse", "wildcard for a /{p}"),
    ("subnet_calc", "prefix", "usable", "terse", "usable hosts in a /{p}"),
    ("subnet_calc", "mask", "prefix", "chatty", "what's the CIDR prefix for the mask {mask}?"),
    ("subnet_calc", "contains", "contains", "terse", "is {ip} in {net}"),
    ("subnet_calc", "net", "first", "other-language", "Erste Hostadresse im Netz {net}"),
    # --- number bases ---
    ("number_base", "base", "to_hex", "terse", "convert {n} to hexadecimal"),
    ("number_base", "base", "to_bin", "terse", "{n} in binary"),
    ("number_base", "base", "to_oct", "chatty", "what is {n} written in octal?"),
    ("number_base", "base", "from_hex", "terse", "0x{HEX} to decimal"),
    ("number_base", "base", "from_bin", "chatty", "what's 0b{bin} in decimal?"),
    ("number_base", "base", "small_hex", "words", "the hexadecimal representation of {small_words}"),
    ("number_base", "base", "to_bin", "other-language", "{n} in Binär"),
    # --- prime factors ---
    ("prime_factorize", "composite", "largest", "chatty", "what's the biggest prime factor of {n_comma}?"),
    ("prime_factorize", "composite", "smallest", "terse", "smallest prime factor of {n}"),
    ("prime_factorize", "composite", "largest", "terse", "factorize {n}"),
    ("prime_factorize", "composite", "largest", "other-language", "Primfaktoren von {n}"),
    # --- money ---
    ("decimal_finance", "compound", "total", "terse",
     "compound interest on ${p} at {r}% compounded {freq} for {y} years"),
    ("decimal_finance", "compound", "total", "chatty",
     "if I invest ${p} at {r}% compounded {yearly} for {y} years, how much do I end up with?"),
    ("decimal_finance", "simple", "interest", "chatty",
     "what's the simple interest on {p} dollars at {r} percent over {y} years?"),
    ("decimal_finance", "loan", "payment", "terse", "monthly payment on a ${p} mortgage at {r}% for {y} years"),
    ("decimal_finance", "tip", "tip", "chatty", "what's a {pct}% tip on a ${bill} check?"),
    ("decimal_finance", "compound", "total", "other-language",
     "{p_plain} Euro mit {r}% Zinseszins {freq_de} über {y} Jahre"),
    # --- dates ---
    ("date_diff", "two_dates", "days", "terse", "how many days between {a_dmy} and {b_dmy}"),
    ("date_diff", "two_dates", "days", "chatty", "how many days are there between {a_iso} and {b_iso}?"),
    ("date_diff", "two_dates", "days", "other-language", "Tage zwischen {a_de} und {b_de}"),
    ("day_of_week", "one_date", "weekday", "terse", "what day of the week is {iso}"),
    ("day_of_week", "one_date", "weekday", "chatty", "which weekday was {dmy}?"),
    ("day_of_week", "one_date", "weekday", "other-language", "Wochentag am {de}"),
    ("date_add", "one_date", "plus_n", "terse", "{n} days after {iso}"),
    ("date_add", "one_date", "minus_n", "terse", "{n} days before {mdy}"),
    ("date_add", "one_date", "plus_w", "chatty", "what's the date {w} weeks after {dmy}?"),
    ("date_add", "one_date", "plus_n", "other-language", "{de} plus {n} Tage"),
    # --- units ---
    ("unit_convert", "units", "result", "terse", "convert {v} {f} to {t}"),
    ("unit_convert", "units", "result", "chatty", "how many {t_long} are in {v} {f_long}?"),
    ("unit_convert", "units", "small_result", "words", "convert {small_words} {f_long} to {t_long}"),
    ("unit_convert", "units", "result", "other-language", "{v_de} {f_de} in {t_de}"),
    ("unit_convert", "temperature", "f_to_c", "terse", "{f} °F to °C"),
    ("unit_convert", "temperature", "c_to_f", "chatty", "what is {c} degrees Celsius in Fahrenheit?"),
    # --- statistics ---
    ("statistics_calc", "numbers", "mean", "terse", "average of {list}"),
    ("statistics_calc", "numbers", "median", "terse", "median of {list}"),
    ("statistics_calc", "numbers", "stdev", "chatty", "what's the standard deviation of {list}?"),
    ("statistics_calc", "numbers", "pstdev", "terse", "population standard deviation of {list}"),
    ("statistics_calc", "numbers", "mean", "other-language", "Durchschnitt von {list_de}"),
    # --- round 2 (after round 1): the kinds of the first held-apart part's misses, phrased anew ---
    ("subnet_calc", "net", "broadcast", "terse", "bcast addr for {net}"),
    ("subnet_calc", "prefix", "usable", "chatty", "how many hosts can I fit on a /{p} subnet?"),
    ("subnet_calc", "contains", "contains", "chatty", "just checking - is {ip} inside {net}?"),
    ("number_base", "base", "to_hex", "chatty", "how does {n} look in hex?"),
    ("prime_factorize", "composite", "largest", "chatty", "what is the biggest prime that goes into {n}?"),
    ("decimal_finance", "compound", "total", "chatty",
     "if I put ${p} in the bank at {r}% compounded {freq} for {y} years, what do I get?"),
    # --- distractors ---
    (None, "net", "", "terse", "is {net} a good subnet for my office"),
    (None, "mask", "", "chatty", "Who decided that {mask} should be a netmask?"),
    (None, "base", "", "terse", "why is {n} in binary so long"),
    (None, "composite", "", "chatty", "My locker number is {n}, is that unlucky?"),
    (None, "loan", "", "chatty", "Is a ${p} loan at {r}% a good idea for a car?"),
    (None, "two_dates", "", "terse", "was {a_iso} to {b_iso} a good period for stocks"),
    (None, "one_date", "", "chatty", "What was the weather like on {dmy}?"),
    (None, "units", "", "terse", "is {v} {f_long} a lot"),
    (None, "numbers", "", "chatty", "Do the numbers {list} have any meaning in numerology?"),
]
