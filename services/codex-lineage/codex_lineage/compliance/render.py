"""The compliance report for people: Markdown and HTML (the JSON report is the machine-readable one)."""

from __future__ import annotations

import html
import json
from typing import Any

MARK = {"pass": "PASS", "fail": "FAIL", "not_applicable": "N/A"}


def _evidence(evidence: dict[str, Any]) -> str:
    return json.dumps(evidence, sort_keys=True, default=str)


def markdown(report: dict[str, Any]) -> str:
    s = report["summary"]
    out = [f"# Compliance report ({report['generated_at']})", "",
           f"{s['pass']} pass, {s['fail']} fail, {s['not_applicable']} not applicable.", ""]
    if report.get("rules_error"):
        out += [f"> The rule files were changed and could not be read (the previous rules were used): "
                f"{report['rules_error']}", ""]
    for fw in report["frameworks"]:
        out += [f"## {fw['title']} (`{fw['framework']}`, version {fw['version']})", "",
                f"Rules: `{fw['source']}` ({fw['digest']})", "",
                "| rule | reference | status | finding |", "|---|---|---|---|"]
        for rule in fw["rules"]:
            finding = rule["summary"].replace("|", "\\|")
            out.append(f"| {rule['id']}: {rule['title']} | {rule['ref']} | **{MARK[rule['status']]}** | {finding} |")
        out.append("")
        for rule in fw["rules"]:
            out += [f"### {rule['id']} — {MARK[rule['status']]}", "", rule["requirement"] or rule["title"], "",
                    f"Check `{rule['check']}`; evidence:", "", "```json", _evidence(rule["evidence"]), "```", ""]
    return "\n".join(out)


def to_html(report: dict[str, Any]) -> str:
    s, e = report["summary"], html.escape
    rows = []
    for fw in report["frameworks"]:
        rows.append(f"<h2>{e(fw['title'])} <small>({e(fw['framework'])} v{fw['version']}, {e(fw['digest'])})</small>"
                    "</h2><table><tr><th>rule</th><th>reference</th><th>status</th><th>finding</th>"
                    "<th>evidence</th></tr>")
        for rule in fw["rules"]:
            rows.append(f"<tr class=\"{e(rule['status'])}\"><td>{e(rule['id'])}: {e(rule['title'])}</td>"
                        f"<td>{e(rule['ref'])}</td><td>{MARK[rule['status']]}</td><td>{e(rule['summary'])}</td>"
                        f"<td><pre>{e(_evidence(rule['evidence']))}</pre></td></tr>")
        rows.append("</table>")
    warning = (f"<p class=\"fail\">Rule files not reloaded: {e(report['rules_error'])}</p>"
               if report.get("rules_error") else "")
    return ("<!doctype html><html><head><meta charset=\"utf-8\"><title>Compliance report</title><style>"
            "body{font-family:sans-serif}td,th{border:1px solid #ccc;padding:4px;vertical-align:top}"
            "pre{white-space:pre-wrap;max-width:40em;margin:0}.pass{background:#e6f4ea}.fail{background:#fce8e6}"
            ".not_applicable{background:#f1f3f4}</style></head><body>"
            f"<h1>Compliance report</h1><p>{e(report['generated_at'])}: {s['pass']} pass, {s['fail']} fail, "
            f"{s['not_applicable']} not applicable.</p>{warning}{''.join(rows)}</body></html>")
