"""API keys and access tokens are stored as a keyed HMAC-SHA256 of the plaintext: the digest
must stay the same from one version to the next, or every stored key stops matching."""

from __future__ import annotations

import hashlib
import hmac

from tradewire.adapters.security import SecretBox

SERVER_SECRET = b"k" * 32


def test_a_keys_hash_is_hmac_sha256_under_the_servers_key_derived_from_its_secret() -> None:
    # Computed once, by the definition: HMAC-SHA256 keyed with sha256("tradewire-api-key:" +
    # the server's secret), in lowercase hex. A key stored by any earlier version matches.
    assert (SecretBox(SERVER_SECRET).hash_api_key("tw_0123abcd_secret-part")
            == "996f2e7a6b3698b030a0b1b547ba69358e17da4cc47297488ba609ff1bf71b98")


def test_a_keys_hash_matches_the_hmac_module_for_any_key() -> None:
    box = SecretBox(SERVER_SECRET)
    derived = hashlib.sha256(b"tradewire-api-key:" + SERVER_SECRET).digest()
    for key in ("", "tw_x", "tw_0123abcd_" + "é" * 40, "a" * 500):
        assert box.hash_api_key(key) == hmac.new(derived, key.encode(), hashlib.sha256).hexdigest()
    assert SecretBox(b"j" * 32).hash_api_key("tw_x") != box.hash_api_key("tw_x")
