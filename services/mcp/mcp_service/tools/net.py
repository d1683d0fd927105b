"""subnet_calc: IPv4 and IPv6 networks with the standard library's ipaddress."""

from __future__ import annotations

import ipaddress
from typing import Any

from mcp_service.tools.base import ToolOutput, wrong

MAX_SUBNETS = 256


def _interface(text: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    clean = text.strip()
    if " " in clean:  # "192.168.1.7 255.255.255.0"
        address, mask = clean.split(None, 1)
        clean = f"{address}/{mask.strip()}"
    try:
        return ipaddress.ip_interface(clean)
    except ValueError as exc:
        raise wrong(f"not an IP network: {text[:64]!r} ({exc})") from None


def subnet_calc(args: dict[str, Any]) -> ToolOutput:
    iface = _interface(args["network"])
    net = iface.network
    v4 = net.version == 4
    total = net.num_addresses
    if v4 and net.prefixlen < 31:
        first, last, usable = net.network_address + 1, net.broadcast_address - 1, total - 2
    else:  # /31 and /32 (RFC 3021) and IPv6 (no broadcast): every address is usable
        first, last, usable = net.network_address, net[-1], total
    result: dict[str, Any] = {
        "version": net.version, "input": args["network"], "address": str(iface.ip), "network": str(net),
        "network_address": str(net.network_address), "prefix_length": net.prefixlen, "netmask": str(net.netmask),
        "hostmask": str(net.hostmask), "broadcast": str(net.broadcast_address) if v4 else None,
        "first_host": str(first), "last_host": str(last), "addresses": str(total), "usable_hosts": str(usable),
        "private": net.is_private, "global": net.is_global,
    }
    text = f"{net}: network address {net.network_address}, netmask {net.netmask}, wildcard {net.hostmask}, "
    text += f"broadcast {net.broadcast_address}, " if v4 else ""
    text += f"hosts {first} to {last} ({usable:,} usable of {total:,} addresses)"
    if "contains" in args:
        try:
            address = ipaddress.ip_address(args["contains"].strip())
        except ValueError as exc:
            raise wrong(f"not an IP address: {args['contains'][:64]!r} ({exc})") from None
        inside = address.version == net.version and address in net
        result["contains"] = {"address": str(address), "inside": inside}
        text += f"; {address} is {'inside' if inside else 'outside'} it"
    if "new_prefix" in args:
        result["subnets"] = _split(net, args["new_prefix"])
        text += f"; {len(result['subnets'])} subnets of /{args['new_prefix']}"
    return ToolOutput(text + ".", result)


def _split(net: ipaddress.IPv4Network | ipaddress.IPv6Network, prefix: int) -> list[str]:
    if not net.prefixlen <= prefix <= net.max_prefixlen:
        raise wrong(f"new_prefix must be between {net.prefixlen} and {net.max_prefixlen}")
    if 2 ** (prefix - net.prefixlen) > MAX_SUBNETS:
        raise wrong(f"that would make more than {MAX_SUBNETS} subnets")
    return [str(s) for s in net.subnets(new_prefix=prefix)]
