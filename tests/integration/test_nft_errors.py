"""nftables' refusals are shown as one clean line: nft's error text and the statement it refused."""

from __future__ import annotations

import shutil

import pytest

from rustainer.backend.errors import NetworkError, RustainerError
from rustainer.backend.network import nat

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(shutil.which("nft") is None, reason="nft (nftables) is not installed")]


@pytest.mark.parametrize(("script", "error", "statement"), [
    # a real refusal from the kernel: a set in a table that does not exist
    ("add element inet rustainer_no_such_table_x natted { 10.0.0.1 }\n", "No such file or directory",
     "add element inet rustainer_no_such_table_x natted { 10.0.0.1 }"),
    # and one from nft's parser
    ("add table inet rustainer_never_made_x\nthis is not nft\n", "syntax error", "this is not nft"),
])
def test_a_refused_rule_is_one_clean_line(script: str, error: str, statement: str) -> None:
    with pytest.raises(NetworkError) as caught:
        nat._nft(script)
    message = str(caught.value)
    assert isinstance(caught.value, RustainerError)
    assert "\n" not in message and "['" not in message and "^" not in message, message
    assert message.startswith("nftables refused the network's rules: "), message
    assert error in message and statement in message, message
    assert nat.list_table("rustainer_never_made_x") is None  # the transaction made nothing
