"""The rtnetlink client's message building and parsing (no kernel needed), the JSON reader a bridge
start uses instead of ``json``, and the network tags' hash (unchanged when hashlib was dropped)."""

from __future__ import annotations

import errno
import hashlib
import json
import struct
import subprocess
import sys

import pytest

from rustainer.backend.network import ipam, rtnl
from rustainer.backend.util.jsonfile import dumps, loads


def test_attributes_are_padded_and_parsed_back() -> None:
    one = rtnl.attr(rtnl.IFLA_IFNAME, rtnl.string("eth0"))
    assert one == struct.pack("=HH", 9, 3) + b"eth0\0" + bytes(3)  # length excludes the padding
    inner = rtnl.nested(rtnl.IFLA_LINKINFO, rtnl.attr(rtnl.IFLA_INFO_KIND, b"veth"))
    assert struct.unpack_from("=HH", inner) == (4 + 8, rtnl.IFLA_LINKINFO | rtnl.NLA_F_NESTED)
    parsed = rtnl.parse_attrs(one + inner + rtnl.attr(rtnl.IFLA_MASTER, rtnl.u32(7)))
    assert parsed[rtnl.IFLA_IFNAME] == b"eth0\0"
    assert rtnl.parse_attrs(parsed[rtnl.IFLA_LINKINFO]) == {rtnl.IFLA_INFO_KIND: b"veth"}  # nesting flag stripped
    assert struct.unpack("=I", parsed[rtnl.IFLA_MASTER]) == (7,)
    assert rtnl.parse_attrs(one[:6]) == {}  # a truncated attribute is not read past the data
    assert rtnl.parse_attrs(struct.pack("=HH", 2, 1) + one) == {}  # nor one with an impossible length


def test_errors_and_acks_are_read_from_nlmsgerr() -> None:
    header = struct.pack("=IHHII", 32, rtnl.RTM_NEWLINK, 5, 1, 0)
    assert rtnl.error_from_ack(struct.pack("=i", 0) + header, 0) == (0, "")
    message = rtnl.attr(rtnl.NLMSGERR_ATTR_MSG, b"Unknown device type\0")
    assert rtnl.error_from_ack(struct.pack("=i", -errno.EOPNOTSUPP) + header + message, rtnl.NLM_F_ACK_TLVS) == (
        errno.EOPNOTSUPP, "Unknown device type")
    assert rtnl.error_from_ack(struct.pack("=i", -errno.EEXIST) + header, 0) == (errno.EEXIST, "")
    err = rtnl.failure("create bridge rtn-x", errno.EOPNOTSUPP, "Unknown device type")
    assert str(err) == "cannot create bridge rtn-x: Operation not supported (Unknown device type)"
    assert err.errno == errno.EOPNOTSUPP and err.exit_code == 125


@pytest.mark.parametrize("text", [
    '{"a": [1, 2.5, null, true, false, "x\\u00e9\\n"], "b": {}}', " [] ", '\n{"k": -1e5}\n',
    dumps({"name": "bridge", "leases": {"10.0.0.2": {"id": "c" * 64, "name": "é\t\"q\""}}, "cursor": 3}),
])
def test_loads_reads_what_json_reads(text: str) -> None:
    assert loads(text) == json.loads(text)


@pytest.mark.parametrize("text", ["", "{", "{} x", "[1,]", "nul", '{"a": 1,}', "\"unterminated"])
def test_loads_refuses_what_json_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        json.loads(text)
    with pytest.raises(ValueError):
        loads(text)


def test_loads_and_the_tags_need_neither_json_nor_hashlib() -> None:
    code = ("import sys; from rustainer.backend.util.jsonfile import loads; from rustainer.backend.network import ipam;"
            "loads('{\"a\": [1]}'); ipam.tag('/r', 'n');"
            "print(sorted(m for m in ('json', 're', 'hashlib', '_hashlib') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


def test_tags_are_the_first_six_hex_digits_of_sha1() -> None:
    # bridges and tables made before (names derive from these tags) keep their names
    assert ipam.tag("/var/lib/rustainer", "bridge") == hashlib.sha1(b"/var/lib/rustainer\0bridge").hexdigest()[:6]
